"""The request's deadline, read from the Lambda context the runtime (or the local front door) passes."""

from __future__ import annotations

from collections.abc import Callable

from llmops.domain.deadline import Deadline

__all__ = ["deadline_of"]


def deadline_of(context: object) -> Deadline:
    """When this invocation is killed; unbounded when there is no Lambda context (direct calls, tests)."""
    remaining_ms: Callable[[], int] | None = getattr(context, "get_remaining_time_in_millis", None)
    if remaining_ms is None:
        return Deadline.unbounded()
    return Deadline.after(remaining_ms() / 1000)
