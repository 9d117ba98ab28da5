"""The local stack runs the gateway handler with the Powertools settings CDK gives the deployed
function: the same variables and values, except the named workstation switches."""

from __future__ import annotations

from typing import Any

import pytest

from llmops.local.stack import LocalStackOptions, local_environment
from llmops.observability.powertools_env import PowertoolsVar

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cdk-synth")]

# What a workstation changes on purpose: no X-Ray daemon, no EMF on the terminal, quieter logs.
WORKSTATION_SWITCHES = {PowertoolsVar.TRACE_DISABLED, PowertoolsVar.METRICS_DISABLED, PowertoolsVar.LOG_LEVEL}


def _powertools(variables: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in variables.items() if k.startswith("POWERTOOLS_")}


def _gateway_function_env(template: dict[str, Any]) -> dict[str, str]:
    (variables,) = [
        resource["Properties"]["Environment"]["Variables"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Function"
        and resource["Properties"].get("Handler") == "handler.handler"
        and "LLMOPS_PROVIDER_READ_TIMEOUT_S" in resource["Properties"].get("Environment", {}).get("Variables", {})
    ]
    return dict(variables)


def test_the_local_stack_and_the_deployed_gateway_share_one_powertools_environment(synthesized: Any) -> None:
    deployed = _powertools(_gateway_function_env(synthesized("dev").template))
    local = _powertools(local_environment(LocalStackOptions(), "http://moto", "http://bedrock", "http://sagemaker"))

    assert deployed[PowertoolsVar.SERVICE_NAME] == "gateway"
    assert set(deployed) <= set(local)
    differing = {name for name in local if deployed.get(name) != local[name]}
    assert differing <= WORKSTATION_SWITCHES, {name: (deployed.get(name), local[name]) for name in differing}
