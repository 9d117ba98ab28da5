"""Reading a workflow's progress out of Step Functions execution history (pure).

`llmops canary status|approve` use these on `GetExecutionHistory` events, so nothing about an
execution's progress needs storing anywhere else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["CanaryProgress", "canary_progress", "pending_approval_token"]

_TASK_ENDED = frozenset({"TaskSucceeded", "TaskFailed", "TaskTimedOut", "TaskAborted"})


def pending_approval_token(events: Iterable[Mapping[str, Any]]) -> str | None:
    """The task token of an approval request the execution is still waiting on, if any.

    The canary's `RequestApproval` state publishes the token as the `task_token` message
    attribute, which history records in the TaskScheduled parameters.
    """
    token: str | None = None
    for event in events:
        kind = event.get("type")
        if kind == "TaskScheduled":
            details = event.get("taskScheduledEventDetails", {})
            try:
                parameters = json.loads(details.get("parameters") or "{}")
            except json.JSONDecodeError:
                continue
            attribute = (parameters.get("MessageAttributes") or {}).get("task_token") or {}
            token = attribute.get("StringValue") or None
        elif kind in _TASK_ENDED:
            token = None
    return token


@dataclass(frozen=True, slots=True)
class CanaryProgress:
    state: str | None  # the last state entered
    percent: int | None  # candidate percentage of the last step selected
    steps_total: int | None


def canary_progress(events: Iterable[Mapping[str, Any]]) -> CanaryProgress:
    state: str | None = None
    percent: int | None = None
    total: int | None = None
    for event in events:
        entered = event.get("stateEnteredEventDetails")
        if entered:
            state = str(entered.get("name"))
        exited = event.get("stateExitedEventDetails")
        if exited and exited.get("name") == "SelectStep":
            try:
                output = json.loads(exited.get("output") or "{}")
            except json.JSONDecodeError:
                continue
            percent = int(output["step"]["current"]["percent"])
            total = len(output.get("steps", [])) or None
    return CanaryProgress(state=state, percent=percent, steps_total=total)
