"""Alarms: each pages on-call (directly or through its composite), links a runbook that exists and
names its metrics, selects only catalogued metrics and never a tenant."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn

from infra.capabilities.alarms import CANARY_GATES, RUNBOOK_DIR, Alarms, AlarmSettings, RunbookId, settings_from_context
from infra.capabilities.alerting import Alerting
from infra.capabilities.python_function import METRICS_NAMESPACE
from infra.config import ConfigError, GatewayConfig, routes_document
from llmops.observability.metrics import FORBIDDEN_DIMENSIONS, NAMESPACE, metric_spec

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cdk-synth")]

_RUNBOOK = re.compile(r"Runbook: docs/runbooks/([a-z0-9-]+)\.md$")


@pytest.fixture(scope="module", params=["dev", "prod"])
def synth(request: pytest.FixtureRequest, synthesized: Any) -> Any:
    return synthesized(request.param)


def _alarms(synth: Any) -> dict[str, dict[str, Any]]:
    return {**synth.resources("AWS::CloudWatch::Alarm"), **synth.resources("AWS::CloudWatch::CompositeAlarm")}


def _topic_ref(synth: Any) -> dict[str, str]:
    return {"Ref": synth.template["Outputs"]["OnCallTopicArn"]["Value"]["Ref"]}


def _children(composite: dict[str, Any]) -> list[str]:
    parts = composite["Properties"]["AlarmRule"]["Fn::Join"][1]
    return [p["Fn::GetAtt"][0] for p in parts if isinstance(p, dict) and "Fn::GetAtt" in p]


def _metric_stats(alarm: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """(Namespace, MetricName, Dimensions) of every metric an alarm reads, as one dict each."""
    props = alarm["Properties"]
    if "MetricName" in props:
        yield {"Namespace": props["Namespace"], "MetricName": props["MetricName"], "Dimensions": props["Dimensions"]}
    for query in props.get("Metrics", []):
        if "MetricStat" in query:
            yield query["MetricStat"]["Metric"]


def _metric_names(resources: dict[str, dict[str, Any]], logical_id: str) -> set[str]:
    alarm = resources[logical_id]
    if alarm["Type"] == "AWS::CloudWatch::CompositeAlarm":
        return set().union(*(_metric_names(resources, child) for child in _children(alarm)))
    return {m["MetricName"] for m in _metric_stats(alarm)}


def test_every_alarm_links_a_runbook_that_exists_and_names_its_metrics(synth: Any) -> None:
    resources = _alarms(synth)
    assert len(resources) > 20
    for logical_id, alarm in resources.items():
        match = _RUNBOOK.search(alarm["Properties"]["AlarmDescription"])
        assert match, f"{logical_id} has no runbook link"
        runbook = RUNBOOK_DIR / f"{match.group(1)}.md"
        assert runbook.is_file(), runbook
        text = runbook.read_text(encoding="utf-8")
        for metric in _metric_names(resources, logical_id):
            assert metric in text, f"{runbook.name} does not name {metric} (alarm {logical_id})"
        assert alarm["Properties"]["AlarmName"].startswith(f"llmops-{synth.stage}-{match.group(1)}")


def test_every_runbook_id_has_a_runbook_with_the_required_sections() -> None:
    for runbook in RunbookId:
        text = (RUNBOOK_DIR / f"{runbook.value}.md").read_text(encoding="utf-8")
        for section in ("## Symptom", "## Likely causes", "## Diagnosis", "## Mitigation", "## Rollback"):
            assert section in text, (runbook, section)
        assert f"({runbook.value}.md)" in (RUNBOOK_DIR / "README.md").read_text(encoding="utf-8")


def test_every_alarm_pages_the_on_call_topic_itself_or_through_its_composite(synth: Any) -> None:
    resources = _alarms(synth)
    topic = _topic_ref(synth)
    paged_via_composite = {
        child
        for alarm in resources.values()
        if alarm["Type"] == "AWS::CloudWatch::CompositeAlarm" and topic in alarm["Properties"]["AlarmActions"]
        for child in _children(alarm)
    }
    for logical_id, alarm in resources.items():
        actions = alarm["Properties"].get("AlarmActions", [])
        assert topic in actions or logical_id in paged_via_composite, logical_id


def test_no_alarm_selects_a_tenant_or_other_unbounded_dimension(synth: Any) -> None:
    for logical_id, alarm in synth.resources("AWS::CloudWatch::Alarm").items():
        for metric in _metric_stats(alarm):
            names = {d["Name"].lower() for d in metric["Dimensions"]}
            assert not names & FORBIDDEN_DIMENSIONS, logical_id
            assert not any("tenant" in name for name in names), logical_id


def test_gateway_alarms_select_only_catalogued_metrics_and_dimension_sets(synth: Any) -> None:
    for logical_id, alarm in synth.resources("AWS::CloudWatch::Alarm").items():
        for metric in _metric_stats(alarm):
            if metric["Namespace"] != NAMESPACE:
                continue
            spec = metric_spec(metric["MetricName"])
            assert spec.has_dimensions({d["Name"] for d in metric["Dimensions"]}), logical_id


def _by_name(synth: Any) -> dict[str, dict[str, Any]]:
    return {a["Properties"]["AlarmName"]: a["Properties"] for a in _alarms(synth).values()}


def test_burn_rate_windows_use_the_error_budget_of_a_999_slo(synth: Any) -> None:
    alarms = _by_name(synth)
    expected = {"fast-burn-1h": (3600, 0.0144), "fast-burn-5m": (300, 0.0144)}
    expected |= {"slow-burn-6h": (21600, 0.006), "slow-burn-30m": (1800, 0.006)}
    for suffix, (period, threshold) in expected.items():
        props = alarms[f"llmops-{synth.stage}-availability-{suffix}"]
        assert props["Threshold"] == pytest.approx(threshold)
        assert {q["MetricStat"]["Period"] for q in props["Metrics"] if "MetricStat" in q} == {period}
    for speed in ("fast", "slow"):
        rule = alarms[f"llmops-{synth.stage}-availability-{speed}-burn"]["AlarmRule"]
        assert " AND " in "".join(p for p in rule["Fn::Join"][1] if isinstance(p, str))


def test_p99_latency_per_alias_and_canary_gates_per_target(synth: Any) -> None:
    names = set(_by_name(synth))
    doc = routes_document()
    for alias in doc["routes"]:
        assert f"llmops-{synth.stage}-latency-p99-{alias}" in names
    for target in doc["targets"]:
        for gate in CANARY_GATES:
            assert f"llmops-{synth.stage}-{gate.value}-{target}" in names


def test_ttft_p99_pages_per_alias_and_gates_the_canary_per_target(synth: Any) -> None:
    alarms = _by_name(synth)
    doc = routes_document()
    for alias in doc["routes"]:
        props = alarms[f"llmops-{synth.stage}-ttft-p99-{alias}"]
        assert props["MetricName"] == "gen_ai.server.time_to_first_token"
        assert props["ExtendedStatistic"] == "p99"
        assert {d["Name"]: d["Value"] for d in props["Dimensions"]} == {"service": "gateway", "alias": alias}
        assert props["Threshold"] == AlarmSettings().ttft_p99_s
        assert props["TreatMissingData"] == "notBreaching"  # an alias nobody streams never alarms
        assert props["AlarmActions"] == [_topic_ref(synth)]
    for target in doc["targets"]:
        props = alarms[f"llmops-{synth.stage}-canary-ttft-p99-{target}"]
        assert props["MetricName"] == "gen_ai.server.time_to_first_token"
        assert {d["Name"]: d["Value"] for d in props["Dimensions"]} == {"service": "gateway", "target": target}
        assert (props["Period"], props["EvaluationPeriods"], props["DatapointsToAlarm"]) == (60, 5, 3)
        assert "OKActions" not in props  # the canary rolls back by itself: on-call hears of ALARM only
    assert RunbookId.CANARY_TTFT_P99 in CANARY_GATES


def test_expired_reservations_page_when_gateway_invocations_keep_dying(synth: Any) -> None:
    props = _by_name(synth)[f"llmops-{synth.stage}-reservations-expired"]
    assert (props["Namespace"], props["MetricName"], props["Statistic"]) == (NAMESPACE, "ReservationsExpired", "Sum")
    assert props["Dimensions"] == [{"Name": "service", "Value": "reservation-sweeper"}]
    assert (props["Threshold"], props["Period"], props["EvaluationPeriods"]) == (0, 300, 3)
    assert props["AlarmActions"] == [_topic_ref(synth)]
    assert props["AlarmDescription"].endswith("Runbook: docs/runbooks/reservations-expired.md")


def test_work_failing_after_a_sent_answer_pages_at_once(synth: Any) -> None:
    props = _by_name(synth)[f"llmops-{synth.stage}-after-response-failures"]
    assert (props["Namespace"], props["MetricName"], props["Statistic"]) == (NAMESPACE, "AfterResponseFailures", "Sum")
    assert props["Dimensions"] == [{"Name": "service", "Value": "gateway"}]
    assert (props["Threshold"], props["Period"], props["EvaluationPeriods"]) == (0, 300, 1)
    assert props["TreatMissingData"] == "notBreaching"  # published only when something failed
    assert props["AlarmActions"] == [_topic_ref(synth)]
    assert props["AlarmDescription"].endswith("Runbook: docs/runbooks/after-response-failures.md")


def test_the_audit_dead_letter_queue_depth_pages(synth: Any) -> None:
    props = _by_name(synth)[f"llmops-{synth.stage}-dlq-depth-audit"]
    assert props["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert props["AlarmActions"] == [_topic_ref(synth)]


# --- the construct on its own (no full synth) --------------------------------------------------


def _bare_alarms(settings: AlarmSettings) -> tuple[cdk.Stack, Alarms]:
    stack = cdk.Stack(cdk.App(), "S")
    config = GatewayConfig()
    api = apigw.RestApi(stack, "Api")
    api.root.add_method("GET", apigw.MockIntegration())
    function = lambda_.Function(
        stack,
        "F",
        code=lambda_.Code.from_inline("def h(e, c): pass"),
        handler="index.h",
        runtime=lambda_.Runtime.PYTHON_3_12,
    )
    alarms = Alarms(
        stack,
        "Alarms",
        config=config,
        alerting=Alerting(stack, "Alerting", config=config),
        api=api,
        functions={"gateway": function},
        routes={"routes": {"chat": {}}, "targets": {"t1": {}}},
        settings=settings,
    )
    return stack, alarms


def test_cost_burn_threshold_follows_the_monthly_budget_and_runbook_base_url_is_configurable() -> None:
    settings = AlarmSettings(monthlyBudgetUsd=730, costBurnFactor=2, runbookBaseUrl="https://example.com/rb/")
    stack, _ = _bare_alarms(settings)
    template = assertions.Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": "llmops-dev-cost-burn",
            "MetricName": "CostUSD",
            "Period": 3600,
            "Threshold": 2.0,
            "AlarmDescription": assertions.Match.string_like_regexp(r"Runbook: https://example\.com/rb/cost-burn\.md$"),
        },
    )


def test_dlq_and_state_machine_alarms_are_ready_for_queues_and_machines_added_later() -> None:
    stack, alarms = _bare_alarms(AlarmSettings())
    machine = sfn.StateMachine(stack, "M", definition_body=sfn.DefinitionBody.from_chainable(sfn.Pass(stack, "P")))
    alarms.add_state_machine_failure_alarm(machine, name="canary")
    alarms.add_dlq_depth_alarm(sqs.Queue(stack, "Q", enforce_ssl=True), name="workflows")
    template = assertions.Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": "llmops-dev-state-machine-failures-canary",
            "AlarmActions": assertions.Match.any_value(),
            "AlarmDescription": assertions.Match.string_like_regexp("state-machine-failures.md$"),
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"AlarmName": "llmops-dev-dlq-depth-workflows", "MetricName": "ApproximateNumberOfMessagesVisible"},
    )
    assert alarms.gate_names("t1") == [f"llmops-dev-{gate.value}-t1" for gate in CANARY_GATES]


def test_bad_threshold_context_stops_the_synth_naming_the_key() -> None:
    with pytest.raises(ConfigError, match="availabilitySlo"):
        settings_from_context({"availabilitySlo": 2}.get)
    assert settings_from_context({"monthlyBudgetUsd": "500"}.get).monthly_budget_usd == 500


def test_functions_publish_into_the_catalogue_namespace() -> None:
    assert METRICS_NAMESPACE == NAMESPACE
