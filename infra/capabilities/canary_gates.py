"""Canary gates: per-target alarms the canary workflow polls before each traffic step.

They exist for every configured target (`llmops-<stage>-canary-<gate>-<target>`) and are the
default gates of `llmops canary start` for its candidate. They notify on ALARM only, since the
canary workflow rolls back by itself. Defined in the alarm catalogue
(`llmops.observability.alarm_catalogue.canary_gate_definitions`), which the local stack evaluates too.
"""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cloudwatch

from infra.capabilities.alarm_factory import AlarmFactory
from llmops.observability.alarm_catalogue import CANARY_GATES, canary_gate_definitions

__all__ = ["CANARY_GATES", "add_canary_gates", "gate_names"]


def add_canary_gates(factory: AlarmFactory, target: str) -> list[cloudwatch.Alarm]:
    """The gates of `target`, in `CANARY_GATES` order."""
    return [
        factory.from_definition(definition)
        for definition in canary_gate_definitions(factory.stage, target, factory.settings)
    ]


def gate_names(factory: AlarmFactory, target: str) -> list[str]:
    """The canary gate alarm names of a target, for `llmops canary start --gate`."""
    return [factory.alarm_name(runbook, target) for runbook in CANARY_GATES]
