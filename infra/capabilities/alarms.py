"""Alarms that page on-call through the Alerting topic, each linked to its runbook.

Every alarm has a stable runbook id (`RunbookId`); its name is `llmops-<stage>-<runbook id>` plus
a qualifier where there is one per alias, target or function, and its description ends with the
link `<runbookBaseUrl>/<runbook id>.md` (docs/runbooks/ in this repository). Gateway metrics come
from the catalogue in `llmops.observability.metrics`, so an alarm can only select a metric and
dimension set the gateway emits; none selects a tenant.

`Alarms` is the catalogue: it builds, in one construct, the service-level alarms (`slo_alarms`:
availability burn rate, p99 latency and p99 time to first token per alias), the operational ones
(`operational_alarms`) and the canary gates per target (`canary_gates`), all made the same way
(`alarm_factory`) with the thresholds of `alarm_settings` (knobs: CDK context, see there).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.capabilities import canary_gates, operational_alarms, slo_alarms
from infra.capabilities.alarm_factory import AlarmFactory
from infra.capabilities.alarm_settings import RUNBOOK_DIR, AlarmSettings, RunbookId, settings_from_context
from infra.capabilities.alerting import Alerting
from infra.capabilities.canary_gates import CANARY_GATES
from infra.capabilities.catalogue_metrics import catalogue_metric, ratio
from infra.capabilities.slo_alarms import BurnWindow
from infra.config import GatewayConfig

__all__ = [
    "CANARY_GATES",
    "RUNBOOK_DIR",
    "AlarmSettings",
    "Alarms",
    "BurnWindow",
    "RunbookId",
    "catalogue_metric",
    "ratio",
    "settings_from_context",
]


class Alarms(Construct):
    """The gateway's alarms. `alarms` lists every paging alarm (composites included) for dashboards."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: GatewayConfig,
        alerting: Alerting,
        api: apigw.RestApi,
        functions: Mapping[str, lambda_.IFunction],
        routes: Mapping[str, Any],
        settings: AlarmSettings | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.alerting = alerting
        self.settings = settings or settings_from_context(self.node.try_get_context)
        self._factory = AlarmFactory(self, stage=config.stage.value, settings=self.settings, alerting=alerting)
        self.alarms: list[cloudwatch.AlarmBase] = self._factory.paging

        self.window_alarms: list[cloudwatch.Alarm] = slo_alarms.add_availability_alarms(self._factory)
        self.latency_by_alias: dict[str, cloudwatch.Alarm] = {
            alias: slo_alarms.add_latency_alarm(self._factory, alias) for alias in sorted(routes.get("routes", {}))
        }
        self.ttft_by_alias: dict[str, cloudwatch.Alarm] = {
            alias: slo_alarms.add_ttft_alarm(self._factory, alias) for alias in sorted(routes.get("routes", {}))
        }
        operational_alarms.add_gateway_rate_alarms(self._factory)
        operational_alarms.add_cost_alarm(self._factory)
        operational_alarms.add_api_alarms(self._factory, api)
        for name, function in sorted(functions.items()):
            operational_alarms.add_function_alarms(self._factory, name, function)
        self.canary_gates: dict[str, list[cloudwatch.Alarm]] = {
            target: canary_gates.add_canary_gates(self._factory, target) for target in sorted(routes.get("targets", {}))
        }

    def alarm_name(self, runbook: RunbookId, qualifier: str | None = None) -> str:
        return self._factory.alarm_name(runbook, qualifier)

    def add_dlq_depth_alarm(self, queue: sqs.IQueue, *, name: str) -> cloudwatch.Alarm:
        """Pages when a dead-letter queue holds a message (audit records, settlements, workflows)."""
        return operational_alarms.add_dlq_depth_alarm(self._factory, queue, name=name)

    def add_state_machine_failure_alarm(self, state_machine: sfn.IStateMachine, *, name: str) -> cloudwatch.Alarm:
        """Pages when an execution of the state machine fails, times out or is aborted."""
        return operational_alarms.add_state_machine_failure_alarm(self._factory, state_machine, name=name)

    def gate_names(self, target: str) -> list[str]:
        """The canary gate alarm names of a target, for `llmops canary start --gate`."""
        return canary_gates.gate_names(self._factory, target)
