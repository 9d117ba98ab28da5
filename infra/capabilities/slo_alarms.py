"""Service-level alarms: the availability SLO's burn rate, and the p99 latency and p99 time to first
token (streamed requests) of each alias.

The availability SLO uses the multi-window, multi-burn-rate scheme: a window alarm per window
(no actions) and a composite alarm per burn speed that pages when both its windows burn:
fast = 1 h and 5 min at 14.4x the error budget, slow = 6 h and 30 min at 6x. The definitions are
the alarm catalogue's (`llmops.observability.alarm_catalogue`), which the local stack evaluates too.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch

from infra.capabilities.alarm_factory import AlarmFactory
from infra.capabilities.alarm_settings import RunbookId
from llmops.observability import alarm_catalogue

__all__ = ["FAST_BURN", "SLOW_BURN", "BurnWindow", "add_availability_alarms", "add_latency_alarm", "add_ttft_alarm"]


@dataclass(frozen=True, slots=True)
class BurnWindow:
    """One window of a burn-rate alarm: the error ratio over `period` above `factor` x budget."""

    label: str
    period: cdk.Duration
    factor: float


FAST_BURN = tuple(BurnWindow(label, cdk.Duration.seconds(p), f) for label, p, f in alarm_catalogue.FAST_BURN)
SLOW_BURN = tuple(BurnWindow(label, cdk.Duration.seconds(p), f) for label, p, f in alarm_catalogue.SLOW_BURN)


def add_availability_alarms(factory: AlarmFactory) -> list[cloudwatch.Alarm]:
    """The fast- and slow-burn composites (they page); returns their window alarms (they do not)."""
    windows, composites = alarm_catalogue.availability_alarms(factory.stage, factory.settings)
    built = {definition.name: factory.from_definition(definition) for definition in windows}
    for composite in composites:
        factory.composite_alarm(
            RunbookId(composite.runbook),
            summary=composite.description,
            all_of=[built[name] for name in composite.all_of],
            described=True,
        )
    return list(built.values())


def add_latency_alarm(factory: AlarmFactory, alias: str) -> cloudwatch.Alarm:
    return factory.from_definition(alarm_catalogue.latency_alarm(factory.stage, alias, factory.settings))


def add_ttft_alarm(factory: AlarmFactory, alias: str) -> cloudwatch.Alarm:
    """p99 time to first token of the alias's streamed requests; an alias nobody streams never alarms."""
    return factory.from_definition(alarm_catalogue.ttft_alarm(factory.stage, alias, factory.settings))
