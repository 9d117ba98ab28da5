"""Per retrainable alias, the two alarms that close the loop: input drift (`DriftScore`, from the
drift monitor) and negative feedback (`FeedbackNegative`, from the gateway). Both notify on-call;
with `retrainingInferenceImage` set, each also starts a retraining run on the alias's latest staged
dataset through an EventBridge rule."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.capabilities.alarms import Alarms, catalogue_metric
from infra.capabilities.alerting import Alerting
from infra.capabilities.workflow_settings import WorkflowSettings
from infra.config import GatewayConfig
from llmops.config.drift_monitor import latest_dataset_key
from llmops.observability.metrics import DRIFT_MONITOR_SERVICE, DRIFT_SCORE, FEEDBACK_NEGATIVE, NAMESPACE, Dim
from llmops.workflows.retraining_input import RetrainingInput

__all__ = ["RETRAINING_TRIGGER_RUNBOOK", "RetrainingTriggers"]

RETRAINING_TRIGGER_RUNBOOK = "retraining-trigger"


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
        s = self._settings
        day, hour = cdk.Duration.days(1), cdk.Duration.hours(1)
        drift = cloudwatch.Metric(
            namespace=NAMESPACE,
            metric_name=DRIFT_SCORE.name,
            dimensions_map={Dim.SERVICE.value: DRIFT_MONITOR_SERVICE, Dim.ALIAS.value: alias},
            statistic="Maximum",
            period=day,
        )
        ratings = {Dim.ALIAS: alias}
        feedback = cloudwatch.MathExpression(
            expression=f"IF(FILL(n, 0) >= {s.min_hourly_ratings}, FILL(r, 0), 0)",
            using_metrics={
                "r": catalogue_metric(FEEDBACK_NEGATIVE, statistic="Average", period=hour, dimensions=ratings),
                "n": catalogue_metric(FEEDBACK_NEGATIVE, statistic="SampleCount", period=hour, dimensions=ratings),
            },
            label=f"{alias} negative feedback rate (hours with at least {s.min_hourly_ratings} ratings)",
            period=hour,
        )
        for trigger, metric, threshold, periods, summary in (
            (
                "drift",
                drift,
                s.drift_threshold,
                1,
                f"Input drift of alias {alias} ({DRIFT_SCORE.name}) reached {s.drift_threshold:g}.",
            ),
            (
                "feedback",
                feedback,
                s.negative_feedback_threshold,
                3,
                f"More than {s.negative_feedback_threshold:.0%} of alias {alias}'s ratings were negative "
                f"({FEEDBACK_NEGATIVE.name}) for 3 hours.",
            ),
        ):
            self._trigger(alias, baseline, trigger, metric, threshold, periods, summary)

    def _trigger(
        self,
        alias: str,
        baseline: str,
        trigger: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        periods: int,
        summary: str,
    ) -> None:
        name = f"llmops-{self._config.stage.value}-{RETRAINING_TRIGGER_RUNBOOK}-{trigger}-{alias}"
        starts = self._settings.inference_image is not None
        action = "Starts a retraining run." if starts else "Set retrainingInferenceImage to start runs from it."
        alarm = cloudwatch.Alarm(
            self._scope,
            f"Retrain{trigger.capitalize()}{''.join(p.capitalize() for p in alias.replace('.', '-').split('-'))}",
            alarm_name=name,
            alarm_description=(
                f"{summary} {action} Runbook: "
                f"{self._alarms.settings.runbook_base_url.rstrip('/')}/{RETRAINING_TRIGGER_RUNBOOK}.md"
            ),
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self._alerting.notify(alarm, on_ok=False)
        self.alarms.append(alarm)
        if not starts:
            return
        document = RetrainingInput(
            trigger="drift" if trigger == "drift" else "feedback",
            alias=alias,
            baseline_target=baseline,
            dataset_key=latest_dataset_key(alias),
            inference_image=str(self._settings.inference_image),
            # The alarm already compared the signal with its threshold.
            force=True,
        ).to_execution_input()
        events.Rule(
            self._scope,
            f"{alarm.node.id}Starts",
            description=f"{name} in ALARM: start a retraining run for {alias}.",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=["CloudWatch Alarm State Change"],
                resources=[alarm.alarm_arn],
                detail={"state": {"value": ["ALARM"]}},
            ),
            targets=[
                targets.SfnStateMachine(
                    self._retraining, input=events.RuleTargetInput.from_object(document), retry_attempts=3
                )
            ],
        )
