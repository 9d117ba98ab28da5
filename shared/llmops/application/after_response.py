"""Work a request defers until its response has been sent: the audit record with its quota settle,
and config cache refreshes (docs/architecture.md, "The request path").

`defer(work)` either keeps `work` for the current invocation's after-response list, when the
invocation collects one (`collect()`: the gateway handler does when its caller runs that list once
the response is posted, `llmops.lambda_runtime.after_response`), or runs it at once. So a caller
that is not the runtime loop (a test, a benchmark calling the handler or an endpoint directly)
gets every piece done where it is deferred, before the handler returns or, for a stream, as its
body ends; nothing is ever silently dropped.

The list is per execution context (a `ContextVar`): the loop serves one invocation at a time in one
thread, and a stream's body, which ends after the handler has returned, runs in that same context;
concurrent direct callers (tests calling the handler from threads) each have their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["Defer", "Work", "collect", "collecting", "defer", "run_now"]

Work = Callable[[], object]
# What the endpoints and caches are given: `defer` itself, or a stand-in in tests.
Defer = Callable[[Work], None]

_pending: ContextVar[list[Work] | None] = ContextVar("llmops_after_response", default=None)


def defer(work: Work) -> None:
    """`work` after the response, if this invocation collects after-response work; else now."""
    pending = _pending.get()
    if pending is None:
        work()
    else:
        pending.append(work)


def collect() -> list[Work]:
    """From now on this context's deferred work goes into the returned (new) list, which its
    caller runs after the response; until the next `collect()` or `run_now()`."""
    pending: list[Work] = []
    _pending.set(pending)
    return pending


def run_now() -> None:
    """From now on deferred work runs where it is deferred (no one runs an after-response list)."""
    _pending.set(None)


@contextmanager
def collecting() -> Iterator[list[Work]]:
    """`collect()` for the block, then back to what it was (for tests and harnesses)."""
    token = _pending.set([])
    try:
        pending = _pending.get()
        assert pending is not None
        yield pending
    finally:
        _pending.reset(token)
