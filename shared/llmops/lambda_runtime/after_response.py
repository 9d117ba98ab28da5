"""Work an invocation does after its response has been sent: the runtime loop runs it.

Lambda's invocation ends, for the client, when the runtime has posted the response; the function's
Invoke phase ends only when the runtime asks for the next event (`GET invocation/next`). What runs
in between is billed but delays no one. A handler hands that work over as
`StreamingResponse.after_response`; the loop runs it once the response is fully posted (the
terminating chunk sent and Lambda's reply read), then asks for the next event.

Each piece is isolated: an exception is logged by its type name only (its message may echo caller
input) and never touches the response, which is gone already, nor the pieces after it. No piece
starts once the invocation's deadline has passed (Lambda would cut it mid-way anyway). The
invocation's answer has already succeeded, so Lambda counts no error: whoever made the work passes
`on_failures`, which hears how many pieces failed or were left undone, to publish it (the gateway's
`AfterResponseFailures` metric and its alarm).

The loop's context says it runs this work (`runs_after_response`); a caller that is not the loop
(tests, benchmarks calling the handler directly) gets a context without it, and the handler then does
the work itself before it returns (or, for a stream, as its body ends).

Standard library only, like the loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["AfterResponseWork", "run_after_response", "runs_after_response"]

# One piece of after-response work; what it returns is ignored.
AfterResponseWork = Callable[[], object]

_log = logging.getLogger("llmops.lambda_runtime")


def runs_after_response(context: object) -> bool:
    """True when whoever invoked the handler runs `StreamingResponse.after_response` once the
    response is sent (our runtime loop's context, or a harness that does as the loop does)."""
    return getattr(context, "runs_after_response", False) is True


def run_after_response(
    work: list[AfterResponseWork],
    deadline_ms: int = 0,
    clock: Callable[[], float] = time.time,
    *,
    on_failures: Callable[[int], object] | None = None,
) -> int:
    """Runs `work` in order, including pieces a piece appends while it runs (a stream's close
    defers its audit record), none starting past `deadline_ms` (Unix epoch ms; 0: no deadline).

    Returns the number of pieces that failed or were left undone, and tells `on_failures` when
    there are any (its own failure is logged by type name, like a piece's).
    """
    failed = _run(work, deadline_ms, clock)
    if failed and on_failures is not None:
        try:
            on_failures(failed)
        except Exception as exc:
            _log.error("after-response failures not reported: %s", type(exc).__name__)
    return failed


def _run(work: list[AfterResponseWork], deadline_ms: int, clock: Callable[[], float]) -> int:
    failed = done = 0
    while done < len(work):
        if deadline_ms > 0 and clock() * 1000 >= deadline_ms:
            left = len(work) - done
            _log.error("after-response work left undone at the deadline: %d piece(s)", left)
            return failed + left
        piece = work[done]
        done += 1
        try:
            piece()
        except Exception as exc:  # isolated: the response is sent, the next piece still runs
            failed += 1
            _log.error("after-response work failed: %s", type(exc).__name__)
    return failed
