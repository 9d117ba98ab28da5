"""EventBridge delivery for the local stack: the rules in moto, matched and delivered here.

moto stores rules and targets, but its PutEvents delivers only to log groups, archives, SQS and
other buses and fails on a Step Functions target (and its TestEventPattern answers an empty body
in server mode). So the local stack publishes through `LocalEventBus.publish`: every enabled rule
of the default bus whose pattern matches (by moto's own pattern matcher) delivers to its targets:
Step Functions StartExecution with the target's `Input` (or the event itself when it has none),
SNS Publish or SQS SendMessage, as EventBridge would.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from moto.events.models import EventPattern

from llmops.domain.guard import safe_regex
from llmops.local.naming import LOCAL_REGION

__all__ = ["LocalEventBus", "alarm_state_change_event"]

log = logging.getLogger("llmops.local")
ClientFactory = Callable[[str], Any]
_NAME_UNSAFE = safe_regex.compile(r"[^A-Za-z0-9_-]+")


def alarm_state_change_event(
    alarm: Mapping[str, Any],
    *,
    previous: Mapping[str, Any],
    state: Mapping[str, Any],
    time_iso: str,
) -> dict[str, Any]:
    """A "CloudWatch Alarm State Change" event as EventBridge delivers it (metric alarms' shape).

    `alarm` is the alarm as DescribeAlarms returns it; `previous` and `state` carry `value`,
    `reason`, `reasonData` (JSON text) and `timestamp`.
    """
    arn = str(alarm["AlarmArn"])
    account, region = arn.split(":")[4], arn.split(":")[3]
    configuration: dict[str, Any] = {"description": alarm.get("AlarmDescription", "")}
    if alarm.get("Metrics"):
        configuration["metrics"] = [_metric(query) for query in alarm["Metrics"]]
    elif alarm.get("MetricName"):
        stat = alarm.get("ExtendedStatistic") or alarm.get("Statistic")
        configuration["metrics"] = [
            _metric(
                {
                    "Id": "m1",
                    "ReturnData": True,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": alarm.get("Namespace"),
                            "MetricName": alarm["MetricName"],
                            "Dimensions": alarm.get("Dimensions", []),
                        },
                        "Period": alarm.get("Period"),
                        "Stat": stat,
                    },
                }
            )
        ]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": account,
        "time": time_iso.split(".", maxsplit=1)[0] + "Z",
        "region": region or LOCAL_REGION,
        "resources": [arn],
        "detail": {
            "alarmName": alarm["AlarmName"],
            "state": dict(state),
            "previousState": dict(previous),
            "configuration": configuration,
        },
    }


def _metric(query: Mapping[str, Any]) -> dict[str, Any]:
    """A metric data query in the event's spelling (camelCase, dimensions as a map)."""
    out: dict[str, Any] = {"id": query.get("Id"), "returnData": bool(query.get("ReturnData", False))}
    if "Expression" in query:
        out["expression"] = query["Expression"]
        if query.get("Label"):
            out["label"] = query["Label"]
    stat = query.get("MetricStat")
    if stat:
        metric = stat["Metric"]
        out["metricStat"] = {
            "metric": {
                "namespace": metric.get("Namespace"),
                "name": metric.get("MetricName"),
                "dimensions": {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])},
            },
            "period": stat.get("Period"),
            "stat": stat.get("Stat"),
        }
    return out


class LocalEventBus:
    def __init__(self, client_factory: ClientFactory) -> None:
        self._events = client_factory("events")
        self._factory = client_factory
        self.delivered: list[tuple[str, str]] = []  # (rule, target ARN), for the console and tests

    def publish(self, event: Mapping[str, Any]) -> int:
        """Delivers `event` to the targets of every matching rule; returns how many were reached."""
        body = json.dumps(event)
        reached = 0
        for rule in self._rules():
            pattern = rule.get("EventPattern")
            if rule.get("State", "ENABLED") != "ENABLED" or not pattern:
                continue
            if not EventPattern.load(pattern).matches_event(json.loads(body)):
                continue
            for target in self._events.list_targets_by_rule(Rule=rule["Name"]).get("Targets", []):
                try:
                    self._deliver(str(rule["Name"]), target, body)
                    reached += 1
                except Exception as exc:  # one failed target must not stop the others, as in EventBridge
                    log.warning("event delivery to %s failed: %s", target.get("Arn"), type(exc).__name__)
        return reached

    def _rules(self) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self._events.list_rules(**({"NextToken": token} if token else {}))
            rules += page.get("Rules", [])
            token = page.get("NextToken")
            if not token:
                return rules

    def _deliver(self, rule: str, target: Mapping[str, Any], body: str) -> None:
        arn = str(target["Arn"])
        payload = str(target.get("Input") or body)
        service = arn.split(":")[2]
        if service == "states":
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            name = f"{_NAME_UNSAFE.sub('-', rule)[: 80 - len(stamp) - 6]}-{stamp}-{uuid.uuid4().hex[:4]}"
            self._factory("stepfunctions").start_execution(stateMachineArn=arn, name=name, input=payload)
        elif service == "sns":
            self._factory("sns").publish(TopicArn=arn, Message=payload)
        elif service == "sqs":
            account, queue = arn.split(":")[4], arn.split(":")[5]
            url = self._factory("sqs").get_queue_url(QueueName=queue, QueueOwnerAWSAccountId=account)["QueueUrl"]
            self._factory("sqs").send_message(QueueUrl=url, MessageBody=payload)
        else:
            log.warning("rule %s: targets of %s are not emulated locally", rule, service)
            return
        self.delivered.append((rule, arn))
