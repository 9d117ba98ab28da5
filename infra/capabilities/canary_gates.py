"""Canary gates: per-target alarms the canary workflow polls before each traffic step.

They exist for every configured target (`llmops-<stage>-canary-<gate>-<target>`): pass their names
to `llmops canary start --gate ...`. They notify on ALARM only, since the canary workflow rolls
back by itself.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch

from infra.capabilities.alarm_factory import AlarmFactory
from infra.capabilities.alarm_settings import RunbookId
from infra.capabilities.catalogue_metrics import catalogue_metric, ratio
from llmops.observability.metrics import (
    ERRORS,
    FEEDBACK_NEGATIVE,
    GUARD_BLOCKS,
    PROVIDER_ERRORS,
    PROVIDER_THROTTLES,
    REQUEST_DURATION,
    REQUESTS,
    TIME_TO_FIRST_TOKEN,
    Dim,
    StatusClass,
)

__all__ = ["CANARY_GATES", "add_canary_gates", "gate_names"]

CANARY_GATES = (
    RunbookId.CANARY_ERROR_RATE,
    RunbookId.CANARY_LATENCY_P99,
    RunbookId.CANARY_GUARD_BLOCK_RATE,
    RunbookId.CANARY_NEGATIVE_FEEDBACK,
    RunbookId.CANARY_TTFT_P99,
)


def add_canary_gates(factory: AlarmFactory, target: str) -> list[cloudwatch.Alarm]:
    """The gates of `target`, in `CANARY_GATES` order."""
    minute = cdk.Duration.minutes(1)
    s = factory.settings
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
    return [
        _gate(
            factory,
            RunbookId.CANARY_ERROR_RATE,
            target,
            errors,
            summary=(
                f"Canary gate: target {target} failed more than {s.canary_error_rate:.0%} of its calls "
                f"({ERRORS.name} 5xx + {PROVIDER_ERRORS.name} + {PROVIDER_THROTTLES.name})."
            ),
            threshold=s.canary_error_rate,
        ),
        _gate(
            factory,
            RunbookId.CANARY_LATENCY_P99,
            target,
            catalogue_metric(REQUEST_DURATION, statistic="p99", period=minute, dimensions=at),
            summary=f"Canary gate: p99 {REQUEST_DURATION.name} of target {target} above {s.latency_p99_s:g} s.",
            threshold=s.latency_p99_s,
        ),
        _gate(
            factory,
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
        _gate(
            factory,
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
        # Streamed requests only: a candidate that answers as fast in total but starts later (a
        # bigger prompt template, a slower first token) fails this gate and not the latency one.
        _gate(
            factory,
            RunbookId.CANARY_TTFT_P99,
            target,
            catalogue_metric(TIME_TO_FIRST_TOKEN, statistic="p99", period=minute, dimensions=at),
            summary=(
                f"Canary gate: p99 {TIME_TO_FIRST_TOKEN.name} (streamed requests) of target {target} above "
                f"{s.ttft_p99_s:g} s."
            ),
            threshold=s.ttft_p99_s,
        ),
    ]


def _gate(
    factory: AlarmFactory,
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
    return factory.metric_alarm(
        runbook,
        metric,
        qualifier=target,
        summary=summary,
        threshold=threshold,
        evaluation_periods=evaluation_periods,
        datapoints_to_alarm=datapoints_to_alarm,
        on_ok=False,
    )


def gate_names(factory: AlarmFactory, target: str) -> list[str]:
    """The canary gate alarm names of a target, for `llmops canary start --gate`."""
    return [factory.alarm_name(runbook, target) for runbook in CANARY_GATES]
