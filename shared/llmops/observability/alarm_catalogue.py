"""The alarm catalogue: every alarm over the gateway's own metrics, as plain data.

One source for the CDK alarms (`infra.capabilities.alarms` and its parts turn each definition into
a `cloudwatch.Alarm`) and for the local stack (`llmops.local.alarms` creates the same alarms in the
emulated CloudWatch and evaluates them from the EMF records the handlers write). Alarms over AWS
services' own metrics (API Gateway, Lambda, SQS, Step Functions) are built in CDK only: nothing
publishes those metrics locally.

A definition holds what CloudWatch needs to evaluate it: the metric query or math expression (only
the shapes used here: one metric, a ratio of sums that reads 0 when idle, and a rate that counts
only when enough samples back it), the period, statistic, threshold and comparison, evaluation
periods, datapoints to alarm and missing-data treatment; plus its name, description (ending with
the runbook link) and whom it notifies.

Names: `llmops-<stage>-<runbook id>[-<qualifier>]`; the local stack's stage is `local`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from llmops.config.drift_monitor import DEFAULT_DRIFT_THRESHOLD, DEFAULT_NEGATIVE_FEEDBACK_THRESHOLD
from llmops.observability.metrics import (
    AFTER_RESPONSE_FAILURES,
    COST_USD,
    DRIFT_MONITOR_SERVICE,
    DRIFT_SCORE,
    ERRORS,
    FALLBACKS,
    FEEDBACK_NEGATIVE,
    GATEWAY_SERVICE,
    GUARD_BLOCKS,
    GUARD_BUDGET_EXCEEDED,
    GUARD_BYPASSES,
    GUARD_DETECTOR_FAILURES,
    NAMESPACE,
    PROVIDER_CALLS,
    PROVIDER_ERRORS,
    PROVIDER_THROTTLES,
    QUOTA_REJECTIONS,
    REQUEST_DURATION,
    REQUESTS,
    RESERVATION_SWEEPER_SERVICE,
    RESERVATIONS_EXPIRED,
    TIME_TO_FIRST_TOKEN,
    Dim,
    MetricSpec,
    StatusClass,
)

__all__ = [
    "ALARM_STATE_CHANGE",
    "CANARY_GATES",
    "DEFAULT_MIN_HOURLY_RATINGS",
    "RETRAINING_TRIGGER_RUNBOOK",
    "AlarmDefinition",
    "AlarmSettings",
    "Comparison",
    "CompositeDefinition",
    "Expression",
    "GatedRate",
    "MetricQuery",
    "MissingData",
    "Ratio",
    "RetrainingTriggerSettings",
    "RunbookId",
    "alarm_name",
    "alarm_state_change_pattern",
    "availability_alarms",
    "canary_gate_definitions",
    "canary_gate_names",
    "catalogue_alarms",
    "catalogue_query",
    "cost_alarm",
    "expression_metrics",
    "gateway_rate_alarms",
    "latency_alarm",
    "math_expression",
    "metric_alarm_request",
    "retraining_trigger_alarms",
    "ttft_alarm",
]

_HOURS_PER_MONTH = 730  # 365 * 24 / 12
_MINUTE = 60
_FIVE_MINUTES = 300
_HOUR = 3600
_DAY = 86_400
# Ratings per hour below which the feedback trigger stays quiet: two thumbs-down are not a trend.
DEFAULT_MIN_HOURLY_RATINGS = 20
RETRAINING_TRIGGER_RUNBOOK = "retraining-trigger"
ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"


class RunbookId(StrEnum):
    """Stable alarm ids; docs/runbooks/<id>.md exists for each (tests check)."""

    AVAILABILITY_FAST_BURN = "availability-fast-burn"
    AVAILABILITY_SLOW_BURN = "availability-slow-burn"
    LATENCY_P99 = "latency-p99"
    TTFT_P99 = "ttft-p99"
    PROVIDER_ERROR_RATE = "provider-error-rate"
    PROVIDER_THROTTLE_RATE = "provider-throttle-rate"
    FALLBACK_RATE = "fallback-rate"
    GUARD_BLOCK_SPIKE = "guard-block-spike"
    GUARD_BYPASS = "guard-bypass"
    GUARD_BUDGET_EXCEEDED = "guard-budget-exceeded"
    GUARD_DETECTOR_FAILURES = "guard-detector-failures"
    QUOTA_REJECTION_SPIKE = "quota-rejection-spike"
    RESERVATIONS_EXPIRED = "reservations-expired"
    AFTER_RESPONSE_FAILURES = "after-response-failures"
    COST_BURN = "cost-burn"
    API_5XX = "api-5xx"
    LAMBDA_ERRORS = "lambda-errors"
    LAMBDA_THROTTLES = "lambda-throttles"
    DLQ_DEPTH = "dlq-depth"
    STATE_MACHINE_FAILURES = "state-machine-failures"
    CANARY_ERROR_RATE = "canary-error-rate"
    CANARY_LATENCY_P99 = "canary-latency-p99"
    CANARY_TTFT_P99 = "canary-ttft-p99"
    CANARY_GUARD_BLOCK_RATE = "canary-guard-block-rate"
    CANARY_NEGATIVE_FEEDBACK = "canary-negative-feedback"


# The per-target alarms a canary is gated on by default, in this order.
CANARY_GATES = (
    RunbookId.CANARY_ERROR_RATE,
    RunbookId.CANARY_LATENCY_P99,
    RunbookId.CANARY_GUARD_BLOCK_RATE,
    RunbookId.CANARY_NEGATIVE_FEEDBACK,
    RunbookId.CANARY_TTFT_P99,
)


class AlarmSettings(BaseModel):
    """Thresholds (CDK context keys as aliases); defaults suit a first deployment and are meant to be tuned."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    availability_slo: float = Field(default=0.999, gt=0.9, lt=1, alias="availabilitySlo")
    latency_p99_s: float = Field(default=15.0, gt=0, le=900, alias="latencyP99Seconds")
    # Streamed requests: the input guard, routing and the model's own first token (a few hundred ms
    # on Bedrock's smaller models); a p99 above this is what a chat UI's user notices.
    ttft_p99_s: float = Field(default=3.0, gt=0, le=900, alias="ttftP99Seconds")
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

    def runbook_url(self, runbook: str) -> str:
        return f"{self.runbook_base_url.rstrip('/')}/{runbook}.md"

    def description(self, runbook: str, summary: str) -> str:
        return f"{summary} Runbook: {self.runbook_url(runbook)}"


class RetrainingTriggerSettings(BaseModel):
    """The retraining trigger alarms' knobs (CDK context keys as aliases, shared with the workflows')."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    drift_threshold: float = Field(default=DEFAULT_DRIFT_THRESHOLD, gt=0, le=1, alias="driftThreshold")
    negative_feedback_threshold: float = Field(
        default=DEFAULT_NEGATIVE_FEEDBACK_THRESHOLD, gt=0, le=1, alias="negativeFeedbackThreshold"
    )
    min_hourly_ratings: int = Field(default=DEFAULT_MIN_HOURLY_RATINGS, ge=1, alias="retrainingMinHourlyRatings")


class Comparison(StrEnum):
    GREATER_THAN = "GreaterThanThreshold"
    GREATER_THAN_OR_EQUAL = "GreaterThanOrEqualToThreshold"
    LESS_THAN = "LessThanThreshold"
    LESS_THAN_OR_EQUAL = "LessThanOrEqualToThreshold"

    def breaches(self, value: float, threshold: float) -> bool:
        if self is Comparison.GREATER_THAN:
            return value > threshold
        if self is Comparison.GREATER_THAN_OR_EQUAL:
            return value >= threshold
        if self is Comparison.LESS_THAN:
            return value < threshold
        return value <= threshold


class MissingData(StrEnum):
    """CloudWatch's TreatMissingData values."""

    BREACHING = "breaching"
    NOT_BREACHING = "notBreaching"
    IGNORE = "ignore"
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class MetricQuery:
    """One CloudWatch metric with a statistic (Sum, Average, SampleCount, Minimum, Maximum or pNN)."""

    metric: str
    statistic: str
    period_s: int
    dimensions: tuple[tuple[str, str], ...]
    namespace: str = NAMESPACE
    label: str | None = None

    @property
    def dimension_map(self) -> dict[str, str]:
        return dict(self.dimensions)

    @property
    def percentile(self) -> float | None:
        if self.statistic.startswith("p"):
            return float(self.statistic[1:])
        return None


@dataclass(frozen=True, slots=True)
class Ratio:
    """sum(numerators) / sum(denominators) per period, each metric FILLed with 0, and 0 when the
    denominators are 0: an idle period reads 0, never NaN."""

    numerators: tuple[MetricQuery, ...]
    denominators: tuple[MetricQuery, ...]
    label: str
    period_s: int


@dataclass(frozen=True, slots=True)
class GatedRate:
    """`rate` (an Average) where `count` (its SampleCount) reached `min_count`, else 0:
    `IF(FILL(n, 0) >= min_count, FILL(r, 0), 0)`."""

    rate: MetricQuery
    count: MetricQuery
    min_count: int
    label: str
    period_s: int


Expression = MetricQuery | Ratio | GatedRate


def expression_period(expression: Expression) -> int:
    return expression.period_s


def expression_metrics(expression: Expression) -> tuple[MetricQuery, ...]:
    if isinstance(expression, MetricQuery):
        return (expression,)
    if isinstance(expression, Ratio):
        return (*expression.numerators, *expression.denominators)
    return (expression.rate, expression.count)


@dataclass(frozen=True, slots=True)
class AlarmDefinition:
    """One metric alarm. `runbook` and `qualifier` make its name; `pages` sends ALARM (and OK when
    `notify_ok`) to the on-call topic; `construct_id` keeps CDK's logical id stable."""

    name: str
    runbook: str
    qualifier: str | None
    description: str
    expression: Expression
    threshold: float
    comparison: Comparison = Comparison.GREATER_THAN
    evaluation_periods: int = 3
    datapoints_to_alarm: int = 3
    treat_missing: MissingData = MissingData.NOT_BREACHING
    pages: bool = True
    notify_ok: bool = True
    construct_id: str = ""
    tags: tuple[str, ...] = field(default=())

    @property
    def period_s(self) -> int:
        return expression_period(self.expression)


@dataclass(frozen=True, slots=True)
class CompositeDefinition:
    """ALARM while every alarm in `all_of` is in ALARM (CloudWatch's `ALARM(a) AND ALARM(b)`)."""

    name: str
    runbook: str
    description: str
    all_of: tuple[str, ...]


def alarm_name(stage: str, runbook: str, qualifier: str | None = None) -> str:
    suffix = f"-{qualifier}" if qualifier else ""
    return f"llmops-{stage}-{runbook}{suffix}"


def _construct_id(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace(".", "-").replace("_", "-").split("-"))


def _words(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace(".", "-").split("-"))


def catalogue_query(
    spec: MetricSpec,
    *,
    statistic: str = "Sum",
    period_s: int = _FIVE_MINUTES,
    dimensions: Mapping[Dim, str] | None = None,
    service: str = GATEWAY_SERVICE,
    label: str | None = None,
) -> MetricQuery:
    """A metric of the catalogue; refuses a dimension set it is never published with."""
    dims = {Dim.SERVICE: service, **(dimensions or {})}
    if not spec.has_dimensions({d.value for d in dims}):
        raise ValueError(f"{spec.name} is not published with dimensions {sorted(d.value for d in dims)}")
    return MetricQuery(
        metric=spec.name,
        statistic=statistic,
        period_s=period_s,
        dimensions=tuple((d.value, v) for d, v in dims.items()),
        label=label,
    )


def _alarm(
    stage: str,
    settings: AlarmSettings,
    runbook: RunbookId,
    expression: Expression,
    *,
    summary: str,
    threshold: float,
    qualifier: str | None = None,
    evaluation_periods: int = 3,
    datapoints_to_alarm: int | None = None,
    pages: bool = True,
    notify_ok: bool = True,
    tags: tuple[str, ...] = (),
) -> AlarmDefinition:
    name = alarm_name(stage, runbook.value, qualifier)
    return AlarmDefinition(
        name=name,
        runbook=runbook.value,
        qualifier=qualifier,
        description=settings.description(runbook.value, summary),
        expression=expression,
        threshold=threshold,
        evaluation_periods=evaluation_periods,
        datapoints_to_alarm=datapoints_to_alarm or evaluation_periods,
        # No traffic is not an outage: the burn-rate and API alarms see a dead front door.
        treat_missing=MissingData.NOT_BREACHING,
        pages=pages,
        notify_ok=notify_ok,
        construct_id=_construct_id(name.removeprefix(f"llmops-{stage}-")),
        tags=tags,
    )


# --- canary gates -------------------------------------------------------------------------------


def canary_gate_definitions(stage: str, target: str, settings: AlarmSettings) -> list[AlarmDefinition]:
    """The gates of `target`, in `CANARY_GATES` order. They notify on ALARM only: the canary
    workflow rolls back by itself."""
    s = settings
    at = {Dim.TARGET: target}
    failed_calls = (
        catalogue_query(PROVIDER_ERRORS, period_s=_MINUTE, dimensions=at),
        catalogue_query(PROVIDER_THROTTLES, period_s=_MINUTE, dimensions=at),
    )
    server_errors = catalogue_query(
        ERRORS, period_s=_MINUTE, dimensions={**at, Dim.STATUS_CLASS: StatusClass.SERVER_ERROR}
    )
    # Calls the target failed (the request may have been rescued by a fallback) plus requests it
    # served that still ended in a 5xx, over every call that involved it.
    errors = Ratio(
        (server_errors, *failed_calls),
        (catalogue_query(REQUESTS, period_s=_MINUTE, dimensions=at), *failed_calls),
        label=f"{target} error rate",
        period_s=_MINUTE,
    )
    blocks = Ratio(
        (catalogue_query(GUARD_BLOCKS, period_s=_MINUTE, dimensions=at),),
        (catalogue_query(REQUESTS, period_s=_MINUTE, dimensions=at),),
        label=f"{target} output guard block rate",
        period_s=_MINUTE,
    )
    gate: dict[str, Any] = {"qualifier": target, "evaluation_periods": 5, "datapoints_to_alarm": 3}
    gate.update(notify_ok=False, tags=("canary-gate",))
    return [
        _alarm(
            stage,
            s,
            RunbookId.CANARY_ERROR_RATE,
            errors,
            summary=(
                f"Canary gate: target {target} failed more than {s.canary_error_rate:.0%} of its calls "
                f"({ERRORS.name} 5xx + {PROVIDER_ERRORS.name} + {PROVIDER_THROTTLES.name})."
            ),
            threshold=s.canary_error_rate,
            **gate,
        ),
        _alarm(
            stage,
            s,
            RunbookId.CANARY_LATENCY_P99,
            catalogue_query(REQUEST_DURATION, statistic="p99", period_s=_MINUTE, dimensions=at),
            summary=f"Canary gate: p99 {REQUEST_DURATION.name} of target {target} above {s.latency_p99_s:g} s.",
            threshold=s.latency_p99_s,
            **gate,
        ),
        _alarm(
            stage,
            s,
            RunbookId.CANARY_GUARD_BLOCK_RATE,
            blocks,
            summary=(
                f"Canary gate: the output guard blocked more than {s.canary_guard_block_rate:.0%} of target "
                f"{target}'s completions ({GUARD_BLOCKS.name})."
            ),
            threshold=s.canary_guard_block_rate,
            **gate,
        ),
        # Ratings are sparse: five-minute periods, two of three.
        _alarm(
            stage,
            s,
            RunbookId.CANARY_NEGATIVE_FEEDBACK,
            catalogue_query(FEEDBACK_NEGATIVE, statistic="Average", period_s=_FIVE_MINUTES, dimensions=at),
            summary=(
                f"Canary gate: more than {s.canary_negative_feedback_rate:.0%} of ratings of target {target} "
                f"were negative ({FEEDBACK_NEGATIVE.name})."
            ),
            threshold=s.canary_negative_feedback_rate,
            **{**gate, "evaluation_periods": 3, "datapoints_to_alarm": 2},
        ),
        # Streamed requests only: a candidate that answers as fast in total but starts later (a
        # bigger prompt template, a slower first token) fails this gate and not the latency one.
        _alarm(
            stage,
            s,
            RunbookId.CANARY_TTFT_P99,
            catalogue_query(TIME_TO_FIRST_TOKEN, statistic="p99", period_s=_MINUTE, dimensions=at),
            summary=(
                f"Canary gate: p99 {TIME_TO_FIRST_TOKEN.name} (streamed requests) of target {target} above "
                f"{s.ttft_p99_s:g} s."
            ),
            threshold=s.ttft_p99_s,
            **gate,
        ),
    ]


def canary_gate_names(stage: str, target: str) -> list[str]:
    """The default gates of a canary promoting `target` (`llmops canary start`)."""
    return [alarm_name(stage, runbook.value, target) for runbook in CANARY_GATES]


# --- service-level alarms -----------------------------------------------------------------------

# (label, period, burn factor) of each window; fast = 1 h and 5 min at 14.4x the error budget,
# slow = 6 h and 30 min at 6x.
FAST_BURN = (("1h", _HOUR, 14.4), ("5m", _FIVE_MINUTES, 14.4))
SLOW_BURN = (("6h", 6 * _HOUR, 6.0), ("30m", 30 * _MINUTE, 6.0))


def availability_alarms(stage: str, settings: AlarmSettings) -> tuple[list[AlarmDefinition], list[CompositeDefinition]]:
    """The burn-rate window alarms (no actions of their own) and the two composites that page."""
    windows: list[AlarmDefinition] = []
    composites: list[CompositeDefinition] = []
    for runbook, burn, speed in (
        (RunbookId.AVAILABILITY_FAST_BURN, FAST_BURN, "fast"),
        (RunbookId.AVAILABILITY_SLOW_BURN, SLOW_BURN, "slow"),
    ):
        parts: list[AlarmDefinition] = []
        for label, period_s, factor in burn:
            expression = Ratio(
                (catalogue_query(ERRORS, period_s=period_s, dimensions={Dim.STATUS_CLASS: StatusClass.SERVER_ERROR}),),
                (catalogue_query(REQUESTS, period_s=period_s),),
                label=f"5xx ratio over {label}",
                period_s=period_s,
            )
            parts.append(
                _alarm(
                    stage,
                    settings,
                    runbook,
                    expression,
                    qualifier=label,
                    summary=(
                        f"Window of the {speed}-burn alarm: 5xx ratio over {label} above {factor}x the error "
                        f"budget. No action of its own; the composite {alarm_name(stage, runbook.value)} pages."
                    ),
                    threshold=round(factor * settings.error_budget, 9),
                    evaluation_periods=1,
                    pages=False,
                )
            )
        windows += parts
        composites.append(
            CompositeDefinition(
                name=alarm_name(stage, runbook.value),
                runbook=runbook.value,
                description=settings.description(
                    runbook.value,
                    f"Availability SLO {settings.availability_slo:.3%}: 5xx ratio burning the error budget at "
                    f"{burn[0][2]}x over both {' and '.join(w[0] for w in burn)} "
                    f"(metrics {ERRORS.name} status_class=5xx / {REQUESTS.name}).",
                ),
                all_of=tuple(p.name for p in parts),
            )
        )
    return windows, composites


def latency_alarm(stage: str, alias: str, settings: AlarmSettings) -> AlarmDefinition:
    return _alarm(
        stage,
        settings,
        RunbookId.LATENCY_P99,
        catalogue_query(REQUEST_DURATION, statistic="p99", dimensions={Dim.ALIAS: alias}),
        qualifier=alias,
        summary=(
            f"p99 of {REQUEST_DURATION.name} for alias {alias} above {settings.latency_p99_s:g} s for 15 minutes."
        ),
        threshold=settings.latency_p99_s,
    )


def ttft_alarm(stage: str, alias: str, settings: AlarmSettings) -> AlarmDefinition:
    """p99 time to first token of the alias's streamed requests; an alias nobody streams never alarms."""
    return _alarm(
        stage,
        settings,
        RunbookId.TTFT_P99,
        catalogue_query(TIME_TO_FIRST_TOKEN, statistic="p99", dimensions={Dim.ALIAS: alias}),
        qualifier=alias,
        summary=(
            f"p99 of {TIME_TO_FIRST_TOKEN.name} (streamed requests) for alias {alias} above "
            f"{settings.ttft_p99_s:g} s for 15 minutes."
        ),
        threshold=settings.ttft_p99_s,
    )


# --- operational alarms over gateway metrics ----------------------------------------------------


def gateway_rate_alarms(stage: str, settings: AlarmSettings) -> list[AlarmDefinition]:
    s = settings
    calls = (catalogue_query(PROVIDER_CALLS),)
    requests = (catalogue_query(REQUESTS),)
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
    alarms = [
        _alarm(
            stage,
            s,
            runbook,
            Ratio((catalogue_query(spec),), denominator, label=f"{spec.name} rate", period_s=_FIVE_MINUTES),
            summary=f"More than {threshold:.0%} {what} ({spec.name}) for 15 minutes.",
            threshold=threshold,
        )
        for runbook, spec, denominator, threshold, what in rates
    ]
    alarms.append(
        _alarm(
            stage,
            s,
            RunbookId.GUARD_BYPASS,
            catalogue_query(GUARD_BYPASSES),
            summary=f"A completion went out without an output guard verdict ({GUARD_BYPASSES.name} > 0).",
            threshold=0,
            evaluation_periods=1,
        )
    )
    # Each hit is already a block (fail-safe), so nothing leaks: it pages when hits keep coming, which
    # is either someone sending dense hostile text or a guard that got slower (a regression).
    alarms.append(
        _alarm(
            stage,
            s,
            RunbookId.GUARD_BUDGET_EXCEEDED,
            catalogue_query(GUARD_BUDGET_EXCEEDED),
            summary=(
                f"Guard verdicts cut short by the guard budget ({GUARD_BUDGET_EXCEEDED.name} > 0) for 15 minutes."
            ),
            threshold=0,
        )
    )
    # A service guard detector (Bedrock Guardrails, Comprehend) failing or timing out either refuses
    # traffic (fail_mode closed: 503 guard_unavailable) or lets text through unchecked by it (open):
    # both need someone when the failures keep coming (an outage, throttling, a missing IAM grant).
    alarms.append(
        _alarm(
            stage,
            s,
            RunbookId.GUARD_DETECTOR_FAILURES,
            catalogue_query(GUARD_DETECTOR_FAILURES),
            summary=(
                f"Service guard detector calls failing or timing out ({GUARD_DETECTOR_FAILURES.name} > 0)"
                " for 15 minutes."
            ),
            threshold=0,
        )
    )
    # Each expired reservation is a gateway invocation that ended without settling: killed at its
    # timeout, out of memory or crashed (its caller got no answer), or a settle that failed into the
    # dead-letter queue. The sweeper gives the charge back by itself, so one does not page; invocations
    # that keep dying do. The sweeper publishes 0 on every run, so the alarm always has data.
    alarms.append(
        _alarm(
            stage,
            s,
            RunbookId.RESERVATIONS_EXPIRED,
            catalogue_query(RESERVATIONS_EXPIRED, service=RESERVATION_SWEEPER_SERVICE),
            summary=(
                f"Gateway invocations ended without settling their quota reservation ({RESERVATIONS_EXPIRED.name} > 0)"
                " for 15 minutes."
            ),
            threshold=0,
        )
    )
    # The after-response pieces handle every failure they expect (the books dead-letter, the cache
    # store drops, a config refresh keeps the cached copy), so a piece that still raises, or is cut
    # at the deadline, is a regression or a dead-letter send that failed: an audit record or settle
    # may be lost. Lambda counted the invocation a success, so no other alarm sees it: page at once.
    alarms.append(
        _alarm(
            stage,
            s,
            RunbookId.AFTER_RESPONSE_FAILURES,
            catalogue_query(AFTER_RESPONSE_FAILURES),
            summary=(
                f"Gateway work after a sent answer (the settle with its audit record, the cache store) failed or"
                f" was left undone at the deadline ({AFTER_RESPONSE_FAILURES.name} > 0 in 5 minutes)."
            ),
            threshold=0,
            evaluation_periods=1,
        )
    )
    return alarms


def cost_alarm(stage: str, settings: AlarmSettings) -> AlarmDefinition:
    s = settings
    return _alarm(
        stage,
        s,
        RunbookId.COST_BURN,
        catalogue_query(COST_USD, period_s=_HOUR),
        summary=(
            f"Model spend ({COST_USD.name}) above {s.hourly_cost_threshold_usd:.2f} USD in an hour: "
            f"{s.cost_burn_factor:g}x the pace of the {s.monthly_budget_usd:g} USD monthly budget."
        ),
        threshold=s.hourly_cost_threshold_usd,
        evaluation_periods=1,
    )


# --- retraining triggers ------------------------------------------------------------------------


def retraining_trigger_alarms(
    stage: str,
    alias: str,
    settings: AlarmSettings,
    triggers: RetrainingTriggerSettings,
    *,
    starts_runs: bool,
) -> list[AlarmDefinition]:
    """Input drift (`DriftScore`, from the drift monitor) and negative feedback (`FeedbackNegative`)
    of one retrainable alias; each notifies on-call on ALARM and, when `starts_runs`, an EventBridge
    rule (`alarm_state_change_pattern`) starts a retraining run from it."""
    t = triggers
    drift = catalogue_query(
        DRIFT_SCORE, statistic="Maximum", period_s=_DAY, dimensions={Dim.ALIAS: alias}, service=DRIFT_MONITOR_SERVICE
    )
    ratings = {Dim.ALIAS: alias}
    feedback = GatedRate(
        rate=catalogue_query(FEEDBACK_NEGATIVE, statistic="Average", period_s=_HOUR, dimensions=ratings),
        count=catalogue_query(FEEDBACK_NEGATIVE, statistic="SampleCount", period_s=_HOUR, dimensions=ratings),
        min_count=t.min_hourly_ratings,
        label=f"{alias} negative feedback rate (hours with at least {t.min_hourly_ratings} ratings)",
        period_s=_HOUR,
    )
    action = "Starts a retraining run." if starts_runs else "Set retrainingInferenceImage to start runs from it."
    definitions = []
    for trigger, expression, threshold, periods, summary in (
        (
            "drift",
            drift,
            t.drift_threshold,
            1,
            f"Input drift of alias {alias} ({DRIFT_SCORE.name}) reached {t.drift_threshold:g}.",
        ),
        (
            "feedback",
            feedback,
            t.negative_feedback_threshold,
            3,
            f"More than {t.negative_feedback_threshold:.0%} of alias {alias}'s ratings were negative "
            f"({FEEDBACK_NEGATIVE.name}) for 3 hours.",
        ),
    ):
        name = alarm_name(stage, f"{RETRAINING_TRIGGER_RUNBOOK}-{trigger}", alias)
        definitions.append(
            AlarmDefinition(
                name=name,
                runbook=RETRAINING_TRIGGER_RUNBOOK,
                qualifier=f"{trigger}-{alias}",
                description=settings.description(RETRAINING_TRIGGER_RUNBOOK, f"{summary} {action}"),
                expression=expression,
                threshold=threshold,
                comparison=Comparison.GREATER_THAN_OR_EQUAL,
                evaluation_periods=periods,
                datapoints_to_alarm=periods,
                treat_missing=MissingData.NOT_BREACHING,
                pages=True,
                notify_ok=False,
                construct_id=f"Retrain{trigger.capitalize()}{_words(alias)}",
                tags=("retraining-trigger", trigger),
            )
        )
    return definitions


def alarm_state_change_pattern(alarm_arn: str, state: str = "ALARM") -> dict[str, Any]:
    """The EventBridge pattern of a rule that fires when an alarm enters `state`."""
    return {
        "source": ["aws.cloudwatch"],
        "detail-type": [ALARM_STATE_CHANGE],
        "resources": [alarm_arn],
        "detail": {"state": {"value": [state]}},
    }


# --- everything over gateway metrics ------------------------------------------------------------


def catalogue_alarms(
    stage: str,
    routes_document: Mapping[str, Any],
    settings: AlarmSettings,
    *,
    retrainable: Mapping[str, str] | None = None,
    triggers: RetrainingTriggerSettings | None = None,
    retraining_starts_runs: bool = False,
) -> tuple[list[AlarmDefinition], list[CompositeDefinition]]:
    """Every alarm over gateway metrics that CDK deploys for this route document: what the local
    stack creates and evaluates."""
    windows, composites = availability_alarms(stage, settings)
    aliases = sorted(routes_document.get("routes", {}))
    alarms: list[AlarmDefinition] = [*windows]
    alarms += [latency_alarm(stage, alias, settings) for alias in aliases]
    alarms += [ttft_alarm(stage, alias, settings) for alias in aliases]
    alarms += gateway_rate_alarms(stage, settings)
    alarms.append(cost_alarm(stage, settings))
    for target in sorted(routes_document.get("targets", {})):
        alarms += canary_gate_definitions(stage, target, settings)
    for alias in sorted(retrainable or {}):
        alarms += retraining_trigger_alarms(
            stage, alias, settings, triggers or RetrainingTriggerSettings(), starts_runs=retraining_starts_runs
        )
    return alarms, composites


def metric_alarm_request(definition: AlarmDefinition, period_s: int | None = None) -> dict[str, Any]:
    """PutMetricAlarm's parameters for a definition (`period_s` overrides every period: the local
    stack's short periods)."""

    def stat(query: MetricQuery) -> dict[str, Any]:
        return {
            "Metric": {
                "Namespace": query.namespace,
                "MetricName": query.metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in query.dimensions],
            },
            "Period": period_s or query.period_s,
            "Stat": query.statistic,
        }

    request: dict[str, Any] = {
        "AlarmName": definition.name,
        "AlarmDescription": definition.description,
        "Threshold": definition.threshold,
        "ComparisonOperator": definition.comparison.value,
        "EvaluationPeriods": definition.evaluation_periods,
        "DatapointsToAlarm": definition.datapoints_to_alarm,
        "TreatMissingData": definition.treat_missing.value,
        "ActionsEnabled": False,
    }
    expression = definition.expression
    if isinstance(expression, MetricQuery):
        request.update(
            Namespace=expression.namespace,
            MetricName=expression.metric,
            Dimensions=[{"Name": k, "Value": v} for k, v in expression.dimensions],
            Period=period_s or expression.period_s,
        )
        if expression.percentile is not None:
            request["ExtendedStatistic"] = expression.statistic
        else:
            request["Statistic"] = expression.statistic
        return request
    queries: list[dict[str, Any]] = [
        {"Id": f"m{i}", "MetricStat": stat(q), "ReturnData": False}
        for i, q in enumerate(expression_metrics(expression))
    ]
    request["Metrics"] = [
        *queries,
        {"Id": "e", "Expression": math_expression(expression, [q["Id"] for q in queries]), "Label": expression.label},
    ]
    request["Metrics"][-1]["ReturnData"] = True
    return request


def math_expression(expression: Ratio | GatedRate, ids: Sequence[str]) -> str:
    """The CloudWatch metric math of an expression, over metric ids given in `expression_metrics` order."""
    if isinstance(expression, GatedRate):
        r, n = ids
        return f"IF(FILL({n}, 0) >= {expression.min_count}, FILL({r}, 0), 0)"
    k = len(expression.numerators)
    num = " + ".join(f"FILL({i}, 0)" for i in ids[:k])
    den = " + ".join(f"FILL({i}, 0)" for i in ids[k:])
    return f"IF(({den}) > 0, ({num}) / ({den}), 0)"
