"""Service-level alarms: the availability SLO's burn rate, and the p99 latency and p99 time to first
token (streamed requests) of each alias.

The availability SLO uses the multi-window, multi-burn-rate scheme: a window alarm per window
(no actions) and a composite alarm per burn speed that pages when both its windows burn:
fast = 1 h and 5 min at 14.4x the error budget, slow = 6 h and 30 min at 6x.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch

from infra.capabilities.alarm_factory import AlarmFactory
from infra.capabilities.alarm_settings import RunbookId
from infra.capabilities.catalogue_metrics import catalogue_metric, ratio
from llmops.observability.metrics import ERRORS, REQUEST_DURATION, REQUESTS, TIME_TO_FIRST_TOKEN, Dim, StatusClass

__all__ = ["FAST_BURN", "SLOW_BURN", "BurnWindow", "add_availability_alarms", "add_latency_alarm", "add_ttft_alarm"]


@dataclass(frozen=True, slots=True)
class BurnWindow:
    """One window of a burn-rate alarm: the error ratio over `period` above `factor` x budget."""

    label: str
    period: cdk.Duration
    factor: float


FAST_BURN = (BurnWindow("1h", cdk.Duration.hours(1), 14.4), BurnWindow("5m", cdk.Duration.minutes(5), 14.4))
SLOW_BURN = (BurnWindow("6h", cdk.Duration.hours(6), 6.0), BurnWindow("30m", cdk.Duration.minutes(30), 6.0))


def add_availability_alarms(factory: AlarmFactory) -> list[cloudwatch.Alarm]:
    """The fast- and slow-burn composites (they page); returns their window alarms (they do not)."""
    window_alarms: list[cloudwatch.Alarm] = []
    for runbook, windows, speed in (
        (RunbookId.AVAILABILITY_FAST_BURN, FAST_BURN, "fast"),
        (RunbookId.AVAILABILITY_SLOW_BURN, SLOW_BURN, "slow"),
    ):
        parts = [_burn_window(factory, runbook, window, speed) for window in windows]
        window_alarms += parts
        factory.composite_alarm(
            runbook,
            summary=(
                f"Availability SLO {factory.settings.availability_slo:.3%}: 5xx ratio burning the error budget at "
                f"{windows[0].factor}x over both {' and '.join(w.label for w in windows)} "
                f"(metrics {ERRORS.name} status_class=5xx / {REQUESTS.name})."
            ),
            all_of=parts,
        )
    return window_alarms


def _burn_window(factory: AlarmFactory, runbook: RunbookId, window: BurnWindow, speed: str) -> cloudwatch.Alarm:
    expression = ratio(
        [catalogue_metric(ERRORS, period=window.period, dimensions={Dim.STATUS_CLASS: StatusClass.SERVER_ERROR})],
        [catalogue_metric(REQUESTS, period=window.period)],
        label=f"5xx ratio over {window.label}",
        period=window.period,
    )
    return factory.metric_alarm(
        runbook,
        expression,
        qualifier=window.label,
        summary=(
            f"Window of the {speed}-burn alarm: 5xx ratio over {window.label} above {window.factor}x the "
            f"error budget. No action of its own; the composite {factory.alarm_name(runbook)} pages."
        ),
        threshold=round(window.factor * factory.settings.error_budget, 9),
        evaluation_periods=1,
        page=False,
    )


def add_latency_alarm(factory: AlarmFactory, alias: str) -> cloudwatch.Alarm:
    metric = catalogue_metric(REQUEST_DURATION, statistic="p99", dimensions={Dim.ALIAS: alias})
    return factory.metric_alarm(
        RunbookId.LATENCY_P99,
        metric,
        qualifier=alias,
        summary=(
            f"p99 of {REQUEST_DURATION.name} for alias {alias} above {factory.settings.latency_p99_s:g} s "
            "for 15 minutes."
        ),
        threshold=factory.settings.latency_p99_s,
    )


def add_ttft_alarm(factory: AlarmFactory, alias: str) -> cloudwatch.Alarm:
    """p99 time to first token of the alias's streamed requests; an alias nobody streams never alarms."""
    metric = catalogue_metric(TIME_TO_FIRST_TOKEN, statistic="p99", dimensions={Dim.ALIAS: alias})
    return factory.metric_alarm(
        RunbookId.TTFT_P99,
        metric,
        qualifier=alias,
        summary=(
            f"p99 of {TIME_TO_FIRST_TOKEN.name} (streamed requests) for alias {alias} above "
            f"{factory.settings.ttft_p99_s:g} s for 15 minutes."
        ),
        threshold=factory.settings.ttft_p99_s,
    )
