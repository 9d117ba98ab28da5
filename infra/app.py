"""CDK entry point: `npx cdk synth [-c stage=prod] [-c alarmEmail=...]` from the repository root.

cdk.json runs this file as a script, which puts infra/ itself on sys.path; the repository root and
shared/ are put there instead so `infra.*` and `llmops.*` import the same way as in the tests.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_REPO_ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)
for _path in (str(_REPO_ROOT / "shared"), str(_REPO_ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import aws_cdk as cdk  # noqa: E402

from infra.config import ConfigError, GatewayConfig, config_from_context  # noqa: E402
from infra.nag import add_nag_checks  # noqa: E402
from infra.stacks.gateway_stack import GatewayStack  # noqa: E402

__all__ = ["build_app", "cdk_json_context", "main"]

CDK_JSON = _REPO_ROOT / "cdk.json"


def cdk_json_context() -> dict[str, Any]:
    """The context block of cdk.json (feature flags and defaults), for apps built outside the CLI."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text(encoding="utf-8")).get("context", {})
    return context


def build_app(context: Mapping[str, Any] | None = None, *, outdir: str | None = None) -> cdk.App:
    """The app with its one stack and cdk-nag; `context` as `cdk -c` would give it."""
    app = cdk.App(context=dict(context or {}), outdir=outdir)
    config: GatewayConfig = config_from_context(app.node.try_get_context)
    GatewayStack(
        app,
        config.stack_name,
        config=config,
        env=cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")),
    )
    cdk.Tags.of(app).add("project", "llmops-gateway")
    cdk.Tags.of(app).add("stage", config.stage.value)
    add_nag_checks(app)
    return app


def main() -> None:
    try:
        app = build_app()
    except ConfigError as exc:
        sys.exit(str(exc))
    app.synth()


if __name__ == "__main__":
    main()
