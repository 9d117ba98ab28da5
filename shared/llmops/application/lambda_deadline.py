"""The request's deadline, read from the Lambda context the runtime (or the local front door) passes."""

from __future__ import annotations

from collections.abc import Callable

from llmops.domain.deadline import Deadline

__all__ = ["deadline_of"]


def deadline_of(context: object, *, within_s: float | None = None) -> Deadline:
    """When this invocation is killed; unbounded when there is no Lambda context (direct calls, tests).

    `within_s` caps it for an answer that must be complete sooner than that: a buffered answer
    sends nothing until it is done, and API Gateway cuts a silent stream at its idle timeout
    (`llmops.config.timeouts.BUFFERED_ANSWER_TIMEOUT_S`).
    """
    remaining_ms: Callable[[], int] | None = getattr(context, "get_remaining_time_in_millis", None)
    if remaining_ms is None:
        return Deadline.unbounded()
    remaining_s = remaining_ms() / 1000
    return Deadline.after(remaining_s if within_s is None else min(remaining_s, within_s))
