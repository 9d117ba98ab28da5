"""Alarms that page on-call through the Alerting topic, each linked to its runbook.

Every alarm has a stable runbook id (`RunbookId`); its name is `llmops-<stage>-<runbook id>` plus
a qualifier where there is one per alias, target or function, and its description ends with the
link `<runbookBaseUrl>/<runbook id>.md` (docs/runbooks/ in this repository). Gateway metrics come
from the catalogue in `llmops.observability.metrics`, so an alarm can only select a metric and
dimension set the gateway emits; none selects a tenant.

The availability SLO uses the multi-window, multi-burn-rate scheme: a window alarm per window
(no actions) and a composite alarm per burn speed that pages when both its windows burn:
fast = 1 h and 5 min at 14.4x the error budget, slow = 6 h and 30 min at 6x.

Canary gates (`llmops-<stage>-canary-<gate>-<target>`) exist for every configured target: pass
their names to `llmops canary start --gate ...`. They notify on ALARM only, since the canary
workflow rolls back by itself.

Knobs (CDK context, all optional): availabilitySlo, latencyP99Seconds, monthlyBudgetUsd,
costBurnFactor, runbookBaseUrl and the rate thresholds of `AlarmSettings`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from infra.capabilities.alerting import Alerting
from infra.config import REPO_ROOT, ConfigError, GatewayConfig
from llmops.observability.metrics import (
    COST_USD,
    ERRORS,
    FALLBACKS,
    FEEDBACK_NEGATIVE,
    GATEWAY_SERVICE,
    GUARD_BLOCKS,
    GUARD_BYPASSES,
    NAMESPACE,
    PROVIDER_CALLS,
    PROVIDER_ERRORS,
    PROVIDER_THROTTLES,
    QUOTA_REJECTIONS,
    REQUEST_DURATION,
    REQUESTS,
    Dim,
    MetricSpec,
    StatusClass,
)

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

RUNBOOK_DIR = REPO_ROOT / "docs" / "runbooks"
_HOURS_PER_MONTH = 730  # 365 * 24 / 12


class RunbookId(StrEnum):
    """Stable alarm ids; docs/runbooks/<id>.md exists for each (tests check)."""

    AVAILABILITY_FAST_BURN = "availability-fast-burn"
    AVAILABILITY_SLOW_BURN = "availability-slow-burn"
    LATENCY_P99 = "latency-p99"
    PROVIDER_ERROR_RATE = "provider-error-rate"
    PROVIDER_THROTTLE_RATE = "provider-throttle-rate"
    FALLBACK_RATE = "fallback-rate"
    GUARD_BLOCK_SPIKE = "guard-block-spike"
    GUARD_BYPASS = "guard-bypass"
    QUOTA_REJECTION_SPIKE = "quota-rejection-spike"
    COST_BURN = "cost-burn"
    API_5XX = "api-5xx"
    LAMBDA_ERRORS = "lambda-errors"
    LAMBDA_THROTTLES = "lambda-throttles"
    DLQ_DEPTH = "dlq-depth"
    STATE_MACHINE_FAILURES = "state-machine-failures"
    CANARY_ERROR_RATE = "canary-error-rate"
    CANARY_LATENCY_P99 = "canary-latency-p99"
    CANARY_GUARD_BLOCK_RATE = "canary-guard-block-rate"
    CANARY_NEGATIVE_FEEDBACK = "canary-negative-feedback"


class AlarmSettings(BaseModel):
    """Thresholds, from CDK context; defaults suit a first deployment and are meant to be tuned."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    availability_slo: float = Field(default=0.999, gt=0.9, lt=1, alias="availabilitySlo")
    latency_p99_s: float = Field(default=15.0, gt=0, le=900, alias="latencyP99Seconds")
    monthly_budget_usd: float = Field(default=1000.0, gt=0, alias="monthlyBudgetUsd")
    # Page when the last hour's spend, kept up for a month, would exceed the budget this many times.
    cost_burn_factor: float = Field(default=3.0, ge=1, alias="costBurnFactor")
    provider_error_rate: float = Field(default=0.05, gt=0, lt=1, alias="providerErrorRate")
    provider_throttle_rate: float = Field(default=0.05, gt=0, lt=1, alias="providerThrottleRate")
    fallback_rate: float = Field(default=0.10, gt=0, lt=1, alias="fallbackRate")
    guard_block_rate: float = Field(default=0.05, gt=0, lt=1, alias="guardBlockRate")
    quota_rejection_rate: float = Field(default=0.10, gt=0, lt=1, alias="quotaRejectionRate")
    api_5xx_rate: float = Field(default=0.01, gt=0, lt=1, alias="api5xxRate")
    lambda_error_rate: float = Field(default=0.01, gt=0, lt=1, alias="lambdaErrorRate")
    canary_error_rate: float = Field(default=0.02, gt=0, lt=1, alias="canaryErrorRate")
    canary_guard_block_rate: float = Field(default=0.05, gt=0, lt=1, alias="canaryGuardBlockRate")
    canary_negative_feedback_rate: float = Field(default=0.20, gt=0, lt=1, alias="canaryNegativeFeedbackRate")
    runbook_base_url: str = Field(default="docs/runbooks", min_length=1, max_length=300, alias="runbookBaseUrl")

    @property
    def error_budget(self) -> float:
        return round(1 - self.availability_slo, 9)

    @property
    def hourly_cost_threshold_usd(self) -> float:
        return self.monthly_budget_usd / _HOURS_PER_MONTH * self.cost_burn_factor

    def runbook_url(self, runbook: RunbookId) -> str:
        return f"{self.runbook_base_url.rstrip('/')}/{runbook.value}.md"


def settings_from_context(get: Callable[[str], Any]) -> AlarmSettings:
    keys = [field.alias or name for name, field in AlarmSettings.model_fields.items()]
    values = {key: value for key in keys if (value := get(key)) is not None}
    try:
        return AlarmSettings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"context {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"invalid CDK context for llmops-gateway alarms: {problems}") from None


@dataclass(frozen=True, slots=True)
class BurnWindow:
    """One window of a burn-rate alarm: the error ratio over `period` above `factor` x budget."""

    label: str
    period: cdk.Duration
    factor: float


CANARY_GATES = (
    RunbookId.CANARY_ERROR_RATE,
    RunbookId.CANARY_LATENCY_P99,
    RunbookId.CANARY_GUARD_BLOCK_RATE,
    RunbookId.CANARY_NEGATIVE_FEEDBACK,
)
FAST_BURN = (BurnWindow("1h", cdk.Duration.hours(1), 14.4), BurnWindow("5m", cdk.Duration.minutes(5), 14.4))
SLOW_BURN = (BurnWindow("6h", cdk.Duration.hours(6), 6.0), BurnWindow("30m", cdk.Duration.minutes(30), 6.0))


def catalogue_metric(
    spec: MetricSpec,
    *,
    statistic: str = "Sum",
    period: cdk.Duration | None = None,
    label: str | None = None,
    dimensions: Mapping[Dim, str] | None = None,
) -> cloudwatch.Metric:
    """A gateway metric from the catalogue; refuses a dimension set the gateway never publishes."""
    dims = {Dim.SERVICE: GATEWAY_SERVICE, **(dimensions or {})}
    if not spec.has_dimensions({d.value for d in dims}):
        raise ValueError(f"{spec.name} is not published with dimensions {sorted(d.value for d in dims)}")
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=spec.name,
        dimensions_map={d.value: v for d, v in dims.items()},
        statistic=statistic,
        period=period or cdk.Duration.minutes(5),
        label=label,
    )


def ratio(
    numerators: Sequence[cloudwatch.IMetric],
    denominators: Sequence[cloudwatch.IMetric],
    *,
    label: str,
    period: cdk.Duration,
    key: str = "r",
    scale: float = 1.0,
    complement: bool = False,
) -> cloudwatch.MathExpression:
    """scale x sum(numerators) / sum(denominators) (or scale x (1 - that) with `complement`).

    A period without traffic yields 0 (or `scale` for the complement) instead of NaN. `key` prefixes
    the metric ids, which must be unique across every expression of one graph or alarm.
    """
    using: dict[str, cloudwatch.IMetric] = {}
    for i, metric in enumerate(numerators):
        using[f"{key}_n{i}"] = metric
    for i, metric in enumerate(denominators):
        using[f"{key}_d{i}"] = metric
    num = " + ".join(f"FILL({key}_n{i}, 0)" for i in range(len(numerators)))
    den = " + ".join(f"FILL({key}_d{i}, 0)" for i in range(len(denominators)))
    value = f"({num}) / ({den})"
    if complement:
        value = f"1 - {value}"
    idle = scale if complement else 0
    return cloudwatch.MathExpression(
        expression=f"IF(({den}) > 0, {scale:g} * ({value}), {idle:g})",
        using_metrics=using,
        label=label,
        period=period,
    )


def _construct_id(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace(".", "-").replace("_", "-").split("-"))


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
        self.alarms: list[cloudwatch.AlarmBase] = []
        self.window_alarms: list[cloudwatch.Alarm] = []
        self.canary_gates: dict[str, list[cloudwatch.Alarm]] = {}
        self.latency_by_alias: dict[str, cloudwatch.Alarm] = {}

        self._availability()
        for alias in sorted(routes.get("routes", {})):
            self._latency(alias)
        self._gateway_rates()
        self._cost()
        self._api(api)
        for name, function in sorted(functions.items()):
            self._function(name, function)
        for target in sorted(routes.get("targets", {})):
            self._canary_gates(target)

    # --- building blocks ------------------------------------------------------------------------

    def alarm_name(self, runbook: RunbookId, qualifier: str | None = None) -> str:
        suffix = f"-{qualifier}" if qualifier else ""
        return f"llmops-{self.config.stage.value}-{runbook.value}{suffix}"

    def _description(self, runbook: RunbookId, summary: str) -> str:
        return f"{summary} Runbook: {self.settings.runbook_url(runbook)}"

    def _metric_alarm(
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
            self,
            _construct_id(name.removeprefix(f"llmops-{self.config.stage.value}-")),
            alarm_name=name,
            alarm_description=self._description(runbook, summary),
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
            self.alarms.append(alarm)
        return alarm

    # --- availability SLO -----------------------------------------------------------------------

    def _availability(self) -> None:
        for runbook, windows, speed in (
            (RunbookId.AVAILABILITY_FAST_BURN, FAST_BURN, "fast"),
            (RunbookId.AVAILABILITY_SLOW_BURN, SLOW_BURN, "slow"),
        ):
            parts = [self._burn_window(runbook, window, speed) for window in windows]
            composite = cloudwatch.CompositeAlarm(
                self,
                _construct_id(runbook.value),
                composite_alarm_name=self.alarm_name(runbook),
                alarm_description=self._description(
                    runbook,
                    f"Availability SLO {self.settings.availability_slo:.3%}: 5xx ratio burning the error budget at "
                    f"{windows[0].factor}x over both {' and '.join(w.label for w in windows)} "
                    f"(metrics {ERRORS.name} status_class=5xx / {REQUESTS.name}).",
                ),
                alarm_rule=cloudwatch.AlarmRule.all_of(
                    *(cloudwatch.AlarmRule.from_alarm(part, cloudwatch.AlarmState.ALARM) for part in parts)
                ),
            )
            action = cloudwatch_actions.SnsAction(self.alerting.topic)
            composite.add_alarm_action(action)
            composite.add_ok_action(action)
            self.alarms.append(composite)

    def _burn_window(self, runbook: RunbookId, window: BurnWindow, speed: str) -> cloudwatch.Alarm:
        expression = ratio(
            [catalogue_metric(ERRORS, period=window.period, dimensions={Dim.STATUS_CLASS: StatusClass.SERVER_ERROR})],
            [catalogue_metric(REQUESTS, period=window.period)],
            label=f"5xx ratio over {window.label}",
            period=window.period,
        )
        alarm = self._metric_alarm(
            runbook,
            expression,
            qualifier=window.label,
            summary=(
                f"Window of the {speed}-burn alarm: 5xx ratio over {window.label} above {window.factor}x the "
                f"error budget. No action of its own; the composite {self.alarm_name(runbook)} pages."
            ),
            threshold=round(window.factor * self.settings.error_budget, 9),
            evaluation_periods=1,
            page=False,
        )
        self.window_alarms.append(alarm)
        return alarm

    # --- gateway SLIs ---------------------------------------------------------------------------

    def _latency(self, alias: str) -> None:
        metric = catalogue_metric(REQUEST_DURATION, statistic="p99", dimensions={Dim.ALIAS: alias})
        self.latency_by_alias[alias] = self._metric_alarm(
            RunbookId.LATENCY_P99,
            metric,
            qualifier=alias,
            summary=(
                f"p99 of {REQUEST_DURATION.name} for alias {alias} above {self.settings.latency_p99_s:g} s "
                "for 15 minutes."
            ),
            threshold=self.settings.latency_p99_s,
        )

    def _gateway_rates(self) -> None:
        five = cdk.Duration.minutes(5)
        s = self.settings
        calls = [catalogue_metric(PROVIDER_CALLS, period=five)]
        requests = [catalogue_metric(REQUESTS, period=five)]
        rates = (
            (RunbookId.PROVIDER_ERROR_RATE, PROVIDER_ERRORS, calls, s.provider_error_rate, "of model calls failed"),
            (
                RunbookId.PROVIDER_THROTTLE_RATE,
                PROVIDER_THROTTLES,
                calls,
                s.provider_throttle_rate,
                "of model calls throttled",
            ),
            (RunbookId.FALLBACK_RATE, FALLBACKS, requests, s.fallback_rate, "of requests served by a fallback"),
            (RunbookId.GUARD_BLOCK_SPIKE, GUARD_BLOCKS, requests, s.guard_block_rate, "of requests blocked by a guard"),
            (
                RunbookId.QUOTA_REJECTION_SPIKE,
                QUOTA_REJECTIONS,
                requests,
                s.quota_rejection_rate,
                "of requests refused by quotas (429)",
            ),
        )
        for runbook, spec, denominator, threshold, what in rates:
            expression = ratio(
                [catalogue_metric(spec, period=five)], denominator, label=f"{spec.name} rate", period=five
            )
            self._metric_alarm(
                runbook,
                expression,
                summary=f"More than {threshold:.0%} {what} ({spec.name}) for 15 minutes.",
                threshold=threshold,
            )
        self._metric_alarm(
            RunbookId.GUARD_BYPASS,
            catalogue_metric(GUARD_BYPASSES, period=five),
            summary=f"A completion went out without an output guard verdict ({GUARD_BYPASSES.name} > 0).",
            threshold=0,
            evaluation_periods=1,
        )

    def _cost(self) -> None:
        hour = cdk.Duration.hours(1)
        s = self.settings
        self._metric_alarm(
            RunbookId.COST_BURN,
            catalogue_metric(COST_USD, period=hour),
            summary=(
                f"Model spend ({COST_USD.name}) above {s.hourly_cost_threshold_usd:.2f} USD in an hour: "
                f"{s.cost_burn_factor:g}x the pace of the {s.monthly_budget_usd:g} USD monthly budget."
            ),
            threshold=s.hourly_cost_threshold_usd,
            evaluation_periods=1,
        )

    # --- AWS service metrics --------------------------------------------------------------------

    def _api(self, api: apigw.RestApi) -> None:
        stage = api.deployment_stage
        five = cdk.Duration.minutes(5)
        self._metric_alarm(
            RunbookId.API_5XX,
            ratio(
                [stage.metric_server_error(period=five, statistic="Sum")],
                [stage.metric_count(period=five, statistic="SampleCount")],
                label="API Gateway 5XXError rate",
                period=five,
            ),
            summary=f"API Gateway 5XXError above {self.settings.api_5xx_rate:.0%} of requests for 15 minutes.",
            threshold=self.settings.api_5xx_rate,
        )

    def _function(self, name: str, function: lambda_.IFunction) -> None:
        five = cdk.Duration.minutes(5)
        self._metric_alarm(
            RunbookId.LAMBDA_ERRORS,
            ratio(
                [function.metric_errors(period=five)],
                [function.metric_invocations(period=five)],
                label=f"{name} Lambda error rate",
                period=five,
            ),
            qualifier=name,
            summary=f"The {name} Lambda's Errors above {self.settings.lambda_error_rate:.0%} of Invocations.",
            threshold=self.settings.lambda_error_rate,
        )
        self._metric_alarm(
            RunbookId.LAMBDA_THROTTLES,
            function.metric_throttles(period=five, statistic="Sum"),
            qualifier=name,
            summary=f"The {name} Lambda was throttled (Throttles > 0) in 2 of the last 3 five-minute periods.",
            threshold=0,
            datapoints_to_alarm=2,
        )

    def add_dlq_depth_alarm(self, queue: sqs.IQueue, *, name: str) -> cloudwatch.Alarm:
        """Pages when a dead-letter queue holds a message (audit records, settlements, workflows)."""
        return self._metric_alarm(
            RunbookId.DLQ_DEPTH,
            queue.metric_approximate_number_of_messages_visible(period=cdk.Duration.minutes(5), statistic="Maximum"),
            qualifier=name,
            summary=f"Dead-letter queue {name} holds messages (ApproximateNumberOfMessagesVisible > 0).",
            threshold=0,
            evaluation_periods=1,
        )

    def add_state_machine_failure_alarm(self, state_machine: sfn.IStateMachine, *, name: str) -> cloudwatch.Alarm:
        """Pages when an execution of the state machine fails, times out or is aborted."""
        five = cdk.Duration.minutes(5)
        failures = cloudwatch.MathExpression(
            expression="FILL(failed, 0) + FILL(timedout, 0) + FILL(aborted, 0)",
            using_metrics={
                "failed": state_machine.metric_failed(period=five, statistic="Sum"),
                "timedout": state_machine.metric_timed_out(period=five, statistic="Sum"),
                "aborted": state_machine.metric_aborted(period=five, statistic="Sum"),
            },
            label=f"{name} executions failed, timed out or aborted",
            period=five,
        )
        return self._metric_alarm(
            RunbookId.STATE_MACHINE_FAILURES,
            failures,
            qualifier=name,
            summary=f"State machine {name}: ExecutionsFailed + ExecutionsTimedOut + ExecutionsAborted > 0.",
            threshold=0,
            evaluation_periods=1,
        )

    # --- canary gates ---------------------------------------------------------------------------

    def _canary_gates(self, target: str) -> None:
        minute = cdk.Duration.minutes(1)
        s = self.settings
        at = {Dim.TARGET: target}
        failed_calls = [
            catalogue_metric(PROVIDER_ERRORS, period=minute, dimensions=at),
            catalogue_metric(PROVIDER_THROTTLES, period=minute, dimensions=at),
        ]
        server_errors = catalogue_metric(
            ERRORS, period=minute, dimensions={**at, Dim.STATUS_CLASS: StatusClass.SERVER_ERROR}
        )
        # Calls the target failed (the request may have been rescued by a fallback) plus requests it
        # served that still ended in a 5xx, over every call that involved it.
        errors = ratio(
            [server_errors, *failed_calls],
            [catalogue_metric(REQUESTS, period=minute, dimensions=at), *failed_calls],
            label=f"{target} error rate",
            period=minute,
        )
        blocks = ratio(
            [catalogue_metric(GUARD_BLOCKS, period=minute, dimensions=at)],
            [catalogue_metric(REQUESTS, period=minute, dimensions=at)],
            label=f"{target} output guard block rate",
            period=minute,
        )
        self.canary_gates[target] = [
            self._gate(
                RunbookId.CANARY_ERROR_RATE,
                target,
                errors,
                summary=(
                    f"Canary gate: target {target} failed more than {s.canary_error_rate:.0%} of its calls "
                    f"({ERRORS.name} 5xx + {PROVIDER_ERRORS.name} + {PROVIDER_THROTTLES.name})."
                ),
                threshold=s.canary_error_rate,
            ),
            self._gate(
                RunbookId.CANARY_LATENCY_P99,
                target,
                catalogue_metric(REQUEST_DURATION, statistic="p99", period=minute, dimensions=at),
                summary=f"Canary gate: p99 {REQUEST_DURATION.name} of target {target} above {s.latency_p99_s:g} s.",
                threshold=s.latency_p99_s,
            ),
            self._gate(
                RunbookId.CANARY_GUARD_BLOCK_RATE,
                target,
                blocks,
                summary=(
                    f"Canary gate: the output guard blocked more than {s.canary_guard_block_rate:.0%} of target "
                    f"{target}'s completions ({GUARD_BLOCKS.name})."
                ),
                threshold=s.canary_guard_block_rate,
            ),
            # Ratings are sparse: five-minute periods, two of three.
            self._gate(
                RunbookId.CANARY_NEGATIVE_FEEDBACK,
                target,
                catalogue_metric(FEEDBACK_NEGATIVE, statistic="Average", period=cdk.Duration.minutes(5), dimensions=at),
                summary=(
                    f"Canary gate: more than {s.canary_negative_feedback_rate:.0%} of ratings of target {target} "
                    f"were negative ({FEEDBACK_NEGATIVE.name})."
                ),
                threshold=s.canary_negative_feedback_rate,
                evaluation_periods=3,
                datapoints_to_alarm=2,
            ),
        ]

    def _gate(
        self,
        runbook: RunbookId,
        target: str,
        metric: cloudwatch.IMetric,
        *,
        summary: str,
        threshold: float,
        evaluation_periods: int = 5,
        datapoints_to_alarm: int = 3,
    ) -> cloudwatch.Alarm:
        # Tells on-call when a gate fires (the workflow rolls back by itself), not when it clears.
        return self._metric_alarm(
            runbook,
            metric,
            qualifier=target,
            summary=summary,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm,
            on_ok=False,
        )

    def gate_names(self, target: str) -> list[str]:
        """The canary gate alarm names of a target, for `llmops canary start --gate`."""
        return [self.alarm_name(runbook, target) for runbook in CANARY_GATES]
