"""Synthesizes the CDK app once per stage per test session and shares the result.

The synth runs the real app (cdk.json feature flags, cdk-nag plugin) with `bundleDependencies=false`
so it needs no network; the real uv-built layer is covered by test_layer_build.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Before anything imports aws_cdk: the jsii runtime reads it when it starts node.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from infra.app import build_app, cdk_json_context


@dataclass(frozen=True)
class Synthesized:
    stage: str
    outdir: Path
    template_path: Path
    template: dict[str, Any]
    validation_report: dict[str, Any]

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == resource_type}


def _synth(stage: str, outdir: Path) -> Synthesized:
    app = build_app({**cdk_json_context(), "stage": stage, "bundleDependencies": False}, outdir=str(outdir))
    assembly = app.synth()
    stack = assembly.get_stack_by_name(f"LlmopsGateway-{stage}")
    template_path = outdir / stack.template_file
    return Synthesized(
        stage=stage,
        outdir=outdir,
        template_path=template_path,
        template=json.loads(template_path.read_text()),
        validation_report=json.loads((outdir / "validation-report.json").read_text()),
    )


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Synthesized]:
    cache: dict[str, Synthesized] = {}

    def get(stage: str) -> Synthesized:
        if stage not in cache:
            cache[stage] = _synth(stage, tmp_path_factory.mktemp(f"cdk-{stage}"))
        return cache[stage]

    return get
