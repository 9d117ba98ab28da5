"""IAM for the service guard detectors: exactly the configured guardrails, Comprehend only when used,
and the whole app still synthesizes with no unacknowledged cdk-nag finding."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from infra.app import build_app, cdk_json_context
from infra.capabilities.guard_detectors import grant_guard_detectors
from infra.config import ConfigError, GatewayConfig, config_from_context

ARN = "arn:aws:bedrock:us-east-1:111122223333:guardrail/other1"


def _statements(config: GatewayConfig) -> list[dict[str, Any]]:
    stack = cdk.Stack(cdk.App(), "S", env=cdk.Environment(account="111122223333", region="eu-west-1"))
    role = iam.Role(stack, "R", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    grant_guard_detectors(role, config)
    policies = Template.from_stack(stack).find_resources("AWS::IAM::Policy")
    return [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]


def test_nothing_is_granted_by_default() -> None:
    assert _statements(GatewayConfig()) == []


def test_exactly_the_configured_guardrails_may_be_applied() -> None:
    config = config_from_context({"bedrockGuardrails": f"gr1abc,{ARN}"}.get)
    (statement,) = _statements(config)
    assert statement["Sid"] == "ApplyConfiguredGuardrails"
    assert statement["Action"] == "bedrock:ApplyGuardrail"
    own, other = statement["Resource"]
    assert own == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":bedrock:eu-west-1:111122223333:guardrail/gr1abc"]]
    }
    assert other == ARN


def test_comprehend_is_granted_only_when_a_policy_uses_it() -> None:
    (statement,) = _statements(config_from_context({"comprehendPiiDetection": "true"}.get))
    assert (statement["Sid"], statement["Action"], statement["Resource"]) == (
        "DetectPiiWithComprehend",
        "comprehend:DetectPiiEntities",
        "*",
    )


@pytest.mark.parametrize("bad", ["gr-*", "arn:aws:bedrock:us-east-1:111122223333:guardrail/*", "GR1", "gr1:3"])
def test_guardrail_wildcards_and_versions_are_refused_at_synth(bad: str) -> None:
    with pytest.raises(ConfigError, match="bedrockGuardrails"):
        config_from_context({"bedrockGuardrails": bad}.get)


def test_the_app_synthesizes_with_both_and_cdk_nag_has_nothing_unacknowledged(tmp_path: Path) -> None:
    context = {
        **cdk_json_context(),
        "stage": "dev",
        "bundleDependencies": False,
        "bedrockGuardrails": "gr1abc",
        "comprehendPiiDetection": "true",
    }
    assembly = build_app(context, outdir=str(tmp_path)).synth()
    template = json.loads((tmp_path / assembly.get_stack_by_name("LlmopsGateway-dev").template_file).read_text())
    statements = [
        s
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    sids = {s.get("Sid") for s in statements}
    assert {"ApplyConfiguredGuardrails", "DetectPiiWithComprehend"} <= sids
    # The gateway is told the same list, so it never calls a guardrail IAM would deny.
    granted = [
        r["Properties"]["Environment"]["Variables"].get("LLMOPS_GRANTED_GUARDRAILS")
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"].get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME") == "gateway"
    ]
    assert granted == ["gr1abc"]
    comprehend = [
        r["Properties"]["Environment"]["Variables"].get("LLMOPS_COMPREHEND_GRANTED")
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"].get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME") == "gateway"
    ]
    assert comprehend == ["true"]
    report = json.loads((tmp_path / "validation-report.json").read_text())
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert [v["ruleName"] for v in nag["violations"]] == []
