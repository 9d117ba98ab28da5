"""The local alarm evaluator against moto: the catalogue's alarms created, a breach set in CloudWatch
and published as a "CloudWatch Alarm State Change" event that the retraining trigger's rule turns
into a retraining execution, as EventBridge does in AWS."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from llmops.adapters.dynamodb.route_source import load_route_document
from llmops.local.alarms import AlarmContext, LocalAlarms
from llmops.local.aws_emulation import MotoService
from llmops.local.event_bus import alarm_state_change_event
from llmops.local.metric_store import MetricKey, MetricStore, Sample
from llmops.local.workflows import OUTPUT_RETRAINING_ARN, provision_workflows
from llmops.observability.metrics import NAMESPACE

NOW = 1_800_000_000.0
ALIAS = "llama3-8b"


@pytest.fixture(scope="module")
def factory() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as env:
        env.delenv("MOTO_PORT", raising=False)
        moto = MotoService().start()
        env.setenv("MOTO_PORT", os.environ["MOTO_PORT"])
        clients: dict[str, Any] = {}

        def client(service: str) -> Any:
            if service not in clients:
                clients[service] = boto3.client(  # type: ignore[call-overload]
                    service,
                    region_name="us-east-1",
                    endpoint_url=moto.url,
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                )
            return clients[service]

        try:
            yield client
        finally:
            moto.stop()


def _ratings(store: MetricStore, start: float, seconds: int, per_second: int) -> None:
    key = MetricKey.of(NAMESPACE, "FeedbackNegative", {"service": "gateway", "alias": ALIAS})
    store.add(Sample(key, start + s + i / (per_second + 1), 1.0) for s in range(seconds) for i in range(per_second))


def test_a_feedback_breach_is_set_in_cloudwatch_and_starts_retraining(factory: Any) -> None:
    document = load_route_document()
    outputs = provision_workflows(factory, {}, document)
    store = MetricStore()
    alarms = LocalAlarms(
        factory,
        store,
        document,
        retraining_arn=outputs[OUTPUT_RETRAINING_ARN],
        context=AlarmContext({"retrainingMinHourlyRatings": 3}),
        period_s=1,
        clock=lambda: NOW,
    )
    created = alarms.provision()
    name = f"llmops-local-retraining-trigger-feedback-{ALIAS}"
    assert name in created and "llmops-local-canary-error-rate-sm-llama3-8b-candidate" in created
    assert {a["StateValue"] for a in factory("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]} == {
        "INSUFFICIENT_DATA"
    }

    _ratings(store, NOW - 4, seconds=4, per_second=4)  # 4 thumbs-down a second for the last 4 periods
    changes = {n: (old.value, new.value) for n, old, new in alarms.evaluate_once()}
    assert changes[name] == ("INSUFFICIENT_DATA", "ALARM")
    (alarm,) = factory("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert alarm["StateValue"] == "ALARM"
    assert "3 of the last 3 datapoints" in alarm["StateReason"]

    executions = factory("stepfunctions").list_executions(stateMachineArn=outputs[OUTPUT_RETRAINING_ARN])
    (run,) = executions["executions"]
    started = json.loads(factory("stepfunctions").describe_execution(executionArn=run["executionArn"])["input"])
    assert (started["trigger"], started["alias"], started["force"]) == ("feedback", ALIAS, True)
    assert (f"{name}-starts", outputs[OUTPUT_RETRAINING_ARN]) in alarms.bus.delivered


def test_the_state_change_event_has_cloudwatchs_shape() -> None:
    alarm = {
        "AlarmName": "a",
        "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:a",
        "AlarmDescription": "d",
        "MetricName": "Requests",
        "Namespace": "LLMOps",
        "Dimensions": [{"Name": "service", "Value": "gateway"}],
        "Period": 60,
        "Statistic": "Sum",
    }
    event = alarm_state_change_event(
        alarm,
        previous={"value": "OK", "reason": "", "timestamp": "t0"},
        state={"value": "ALARM", "reason": "r", "reasonData": "{}", "timestamp": "t1"},
        time_iso="2026-12-03T08:00:00.000+0000",
    )
    assert (event["source"], event["detail-type"]) == ("aws.cloudwatch", "CloudWatch Alarm State Change")
    assert (event["account"], event["region"], event["resources"]) == ("123456789012", "us-east-1", [alarm["AlarmArn"]])
    assert event["time"] == "2026-12-03T08:00:00Z"
    detail = event["detail"]
    assert (detail["alarmName"], detail["state"]["value"], detail["previousState"]["value"]) == ("a", "ALARM", "OK")
    (metric,) = detail["configuration"]["metrics"]
    assert metric["metricStat"] == {
        "metric": {"namespace": "LLMOps", "name": "Requests", "dimensions": {"service": "gateway"}},
        "period": 60,
        "stat": "Sum",
    }
