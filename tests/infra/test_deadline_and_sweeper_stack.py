"""The deployed gateway's time budget is the one in llmops.config.timeouts, and the reservation
sweeper runs every minute with access to the Quotas table only (issue 11, item 2)."""

from __future__ import annotations

from typing import Any

import pytest

from llmops.config import timeouts
from llmops.config.env import EnvVar
from llmops.observability.metrics import RESERVATION_SWEEPER_SERVICE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def synth(synthesized: Any) -> Any:
    return synthesized("dev")


def _function(synth: Any, service: str) -> dict[str, Any]:
    (function,) = (
        f
        for f in synth.resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME") == service
    )
    return function


def test_the_gateway_deadline_settings_come_from_one_place(synth: Any) -> None:
    props = _function(synth, "gateway")["Properties"]
    variables = props["Environment"]["Variables"]
    assert props["Timeout"] == timeouts.GATEWAY_TIMEOUT_S
    assert float(variables[EnvVar.PROVIDER_READ_TIMEOUT_S]) == timeouts.provider_read_timeout_s(props["Timeout"])
    assert float(variables[EnvVar.PROVIDER_CONNECT_TIMEOUT_S]) == timeouts.PROVIDER_CONNECT_TIMEOUT_S
    assert int(variables[EnvVar.PROVIDER_MAX_ATTEMPTS]) == timeouts.PROVIDER_MAX_ATTEMPTS
    assert float(variables[EnvVar.DEADLINE_MARGIN_S]) == timeouts.DEADLINE_MARGIN_S
    # A single-target alias's one call plus the margin fits in the function's timeout.
    assert (
        timeouts.provider_read_timeout_s(props["Timeout"])
        + timeouts.PROVIDER_CONNECT_TIMEOUT_S
        + timeouts.DEADLINE_MARGIN_S
        <= props["Timeout"]
    )


def test_the_sweeper_runs_every_minute_alone_and_sees_only_the_quotas_table(synth: Any) -> None:
    function = _function(synth, RESERVATION_SWEEPER_SERVICE)
    props = function["Properties"]
    assert props["Timeout"] == timeouts.SWEEPER_TIMEOUT_S
    assert props["ReservedConcurrentExecutions"] == 1
    tables = {k for k in props["Environment"]["Variables"] if k.endswith("_TABLE")}
    assert tables == {EnvVar.QUOTAS_TABLE.value}
    (function_id,) = (k for k, v in synth.resources("AWS::Lambda::Function").items() if v is function)
    rules = [
        r["Properties"]
        for r in synth.resources("AWS::Events::Rule").values()
        if any(t["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]} for t in r["Properties"].get("Targets", []))
    ]
    assert [r["ScheduleExpression"] for r in rules] == ["rate(1 minute)"]
    role_id = props["Role"]["Fn::GetAtt"][0]
    policies = [
        p["Properties"]
        for p in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"].get("Roles", [])
    ]
    resources = str([s.get("Resource") for p in policies for s in p["PolicyDocument"]["Statement"]])
    for other in ("Audit", "ApiKeys", "Usage", "Prompts", "Feedback", "Routes"):
        assert f"Tables{other}" not in resources
    assert "TablesQuotas" in resources
