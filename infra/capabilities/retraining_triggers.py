"""Per retrainable alias, the two alarms that close the loop: input drift (`DriftScore`, from the
drift monitor) and negative feedback (`FeedbackNegative`, from the gateway). Both notify on-call;
with `retrainingInferenceImage` set, each also starts a retraining run on the alias's latest staged
dataset through an EventBridge rule. Alarms and rule pattern are the alarm catalogue's
(`llmops.observability.alarm_catalogue`), and the run's input is `retraining_trigger_input`: the
local stack creates and fires the same ones."""

from __future__ import annotations

from typing import Literal

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.capabilities.alarms import Alarms
from infra.capabilities.alerting import Alerting
from infra.capabilities.catalogue_metrics import cdk_metric
from infra.capabilities.workflow_settings import WorkflowSettings
from infra.config import GatewayConfig
from llmops.observability.alarm_catalogue import (
    RETRAINING_TRIGGER_RUNBOOK,
    AlarmDefinition,
    RetrainingTriggerSettings,
    alarm_state_change_pattern,
    retraining_trigger_alarms,
)
from llmops.workflows.retraining_input import retraining_trigger_input

__all__ = ["RETRAINING_TRIGGER_RUNBOOK", "RetrainingTriggers"]


class RetrainingTriggers:
    """Adds the trigger alarms (and their rules) to `scope`, which keeps the resources' logical ids."""

    def __init__(
        self,
        scope: Construct,
        *,
        config: GatewayConfig,
        settings: WorkflowSettings,
        alerting: Alerting,
        alarms: Alarms,
        retraining: sfn.StateMachine,
    ) -> None:
        self._scope = scope
        self._config = config
        self._settings = settings
        self._alerting = alerting
        self._alarms = alarms
        self._retraining = retraining
        self.alarms: list[cloudwatch.Alarm] = []

    def add(self, alias: str, baseline: str) -> None:
        starts = self._settings.inference_image is not None
        triggers = RetrainingTriggerSettings.model_validate(
            {
                "drift_threshold": self._settings.drift_threshold,
                "negative_feedback_threshold": self._settings.negative_feedback_threshold,
                "min_hourly_ratings": self._settings.min_hourly_ratings,
            }
        )
        for definition in retraining_trigger_alarms(
            self._config.stage.value, alias, self._alarms.settings, triggers, starts_runs=starts
        ):
            self._trigger(definition, alias, baseline, starts)

    def _trigger(self, definition: AlarmDefinition, alias: str, baseline: str, starts: bool) -> None:
        alarm = cloudwatch.Alarm(
            self._scope,
            definition.construct_id,
            alarm_name=definition.name,
            alarm_description=definition.description,
            metric=cdk_metric(definition.expression),
            threshold=definition.threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=definition.evaluation_periods,
            datapoints_to_alarm=definition.datapoints_to_alarm,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self._alerting.notify(alarm, on_ok=False)
        self.alarms.append(alarm)
        if not starts:
            return
        trigger: Literal["drift", "feedback"] = "drift" if "drift" in definition.tags else "feedback"
        document = retraining_trigger_input(trigger, alias, baseline, str(self._settings.inference_image))
        pattern = alarm_state_change_pattern(alarm.alarm_arn)
        events.Rule(
            self._scope,
            f"{alarm.node.id}Starts",
            description=f"{definition.name} in ALARM: start a retraining run for {alias}.",
            event_pattern=events.EventPattern(
                source=pattern["source"],
                detail_type=pattern["detail-type"],
                resources=pattern["resources"],
                detail=pattern["detail"],
            ),
            targets=[
                targets.SfnStateMachine(
                    self._retraining, input=events.RuleTargetInput.from_object(document), retry_attempts=3
                )
            ],
        )
