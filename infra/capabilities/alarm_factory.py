"""How every alarm is made: named `llmops-<stage>-<runbook id>[-<qualifier>]`, described with its
runbook link, missing data not breaching, and (when it pages) notifying the Alerting topic."""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from constructs import Construct

from infra.capabilities.alarm_settings import AlarmSettings, RunbookId
from infra.capabilities.alerting import Alerting
from infra.capabilities.catalogue_metrics import cdk_metric
from llmops.observability.alarm_catalogue import AlarmDefinition, Comparison, MissingData

__all__ = ["AlarmFactory"]

_COMPARISONS = {
    Comparison.GREATER_THAN: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    Comparison.GREATER_THAN_OR_EQUAL: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    Comparison.LESS_THAN: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
    Comparison.LESS_THAN_OR_EQUAL: cloudwatch.ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD,
}
_MISSING_DATA = {
    MissingData.BREACHING: cloudwatch.TreatMissingData.BREACHING,
    MissingData.NOT_BREACHING: cloudwatch.TreatMissingData.NOT_BREACHING,
    MissingData.IGNORE: cloudwatch.TreatMissingData.IGNORE,
    MissingData.MISSING: cloudwatch.TreatMissingData.MISSING,
}


def _construct_id(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace(".", "-").replace("_", "-").split("-"))


class AlarmFactory:
    """Creates alarms in `scope` (the `Alarms` construct); `paging` lists every alarm that pages."""

    def __init__(self, scope: Construct, *, stage: str, settings: AlarmSettings, alerting: Alerting) -> None:
        self.scope = scope
        self.stage = stage
        self.settings = settings
        self.alerting = alerting
        self.paging: list[cloudwatch.AlarmBase] = []

    def alarm_name(self, runbook: RunbookId, qualifier: str | None = None) -> str:
        suffix = f"-{qualifier}" if qualifier else ""
        return f"llmops-{self.stage}-{runbook.value}{suffix}"

    def description(self, runbook: RunbookId, summary: str) -> str:
        return f"{summary} Runbook: {self.settings.runbook_url(runbook)}"

    def metric_alarm(
        self,
        runbook: RunbookId,
        metric: cloudwatch.IMetric,
        *,
        summary: str,
        threshold: float,
        qualifier: str | None = None,
        evaluation_periods: int = 3,
        datapoints_to_alarm: int | None = None,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        page: bool = True,
        on_ok: bool = True,
    ) -> cloudwatch.Alarm:
        name = self.alarm_name(runbook, qualifier)
        alarm = cloudwatch.Alarm(
            self.scope,
            _construct_id(name.removeprefix(f"llmops-{self.stage}-")),
            alarm_name=name,
            alarm_description=self.description(runbook, summary),
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm or evaluation_periods,
            # No traffic is not an outage: the burn-rate and API alarms see a dead front door.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        if page:
            self.alerting.notify(alarm, on_ok=on_ok)
            self.paging.append(alarm)
        return alarm

    def from_definition(self, definition: AlarmDefinition) -> cloudwatch.Alarm:
        """The alarm of an alarm catalogue definition (`llmops.observability.alarm_catalogue`)."""
        alarm = cloudwatch.Alarm(
            self.scope,
            definition.construct_id,
            alarm_name=definition.name,
            alarm_description=definition.description,
            metric=cdk_metric(definition.expression),
            threshold=definition.threshold,
            comparison_operator=_COMPARISONS[definition.comparison],
            evaluation_periods=definition.evaluation_periods,
            datapoints_to_alarm=definition.datapoints_to_alarm,
            treat_missing_data=_MISSING_DATA[definition.treat_missing],
        )
        if definition.pages:
            self.alerting.notify(alarm, on_ok=definition.notify_ok)
            self.paging.append(alarm)
        return alarm

    def composite_alarm(
        self, runbook: RunbookId, *, summary: str, all_of: list[cloudwatch.Alarm], described: bool = False
    ) -> cloudwatch.CompositeAlarm:
        """Pages (on ALARM and OK) when every one of `all_of` is in ALARM; `described`: `summary`
        already ends with the runbook link."""
        composite = cloudwatch.CompositeAlarm(
            self.scope,
            _construct_id(runbook.value),
            composite_alarm_name=self.alarm_name(runbook),
            alarm_description=summary if described else self.description(runbook, summary),
            alarm_rule=cloudwatch.AlarmRule.all_of(
                *(cloudwatch.AlarmRule.from_alarm(part, cloudwatch.AlarmState.ALARM) for part in all_of)
            ),
        )
        action = cloudwatch_actions.SnsAction(self.alerting.topic)
        composite.add_alarm_action(action)
        composite.add_ok_action(action)
        self.paging.append(composite)
        return composite
