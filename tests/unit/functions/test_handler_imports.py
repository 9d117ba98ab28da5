"""Handlers stay thin: they import the application layer, never adapters, boto3 or tooling.

import-linter's contracts forbid what handlers must not import (pyproject.toml); this test is the
allowlist: any third-party or llmops import outside these prefixes fails it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

FUNCTIONS = Path(__file__).resolve().parents[3] / "functions"
HANDLERS = sorted(FUNCTIONS.glob("*/handler.py"))
ALLOWED_PREFIXES = (
    "aws_lambda_powertools",
    "llmops.application",
    "llmops.config",
    "llmops.domain",
    "llmops.observability",
)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_every_function_has_a_handler() -> None:
    assert {p.parent.name for p in HANDLERS} >= {"gateway", "authorizer"}


@pytest.mark.parametrize("handler", HANDLERS, ids=lambda p: p.parent.name)
def test_handler_imports_only_the_application_layer(handler: Path) -> None:
    for name in _imports(handler):
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top == "__future__":
            continue
        assert name.startswith(ALLOWED_PREFIXES), f"{handler.parent.name} imports {name}"


_COLD_IMPORT = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("gateway_handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
# Powertools imports the bare `botocore` package (cheap) to tag its user agent; sessions and clients
# are what cost.
heavy = {"boto3", "botocore.session", "botocore.client", "aws_xray_sdk", "aws_xray_sdk.core"}
print(json.dumps(sorted(heavy & set(sys.modules))))
"""


@pytest.mark.parametrize("tracing", ["true", "false"], ids=["tracing off", "tracing on"])
def test_the_gateway_cold_init_builds_no_aws_client_and_no_tracer(tracing: str) -> None:
    # A fresh interpreter, as Lambda starts one: botocore and the X-Ray SDK (a few hundred ms of
    # cold init together) load on the first invocation, never at import, whether tracing is on or not.
    import json
    import os
    import subprocess

    env = {
        **os.environ,
        "PYTHONPATH": str(FUNCTIONS.parent / "shared"),
        "LAMBDA_TASK_ROOT": str(FUNCTIONS / "gateway"),
        "POWERTOOLS_TRACE_DISABLED": tracing,
    }
    handler = FUNCTIONS / "gateway" / "handler.py"
    result = subprocess.run(
        [sys.executable, "-c", _COLD_IMPORT, str(handler)], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(result.stdout.splitlines()[-1]) == []
