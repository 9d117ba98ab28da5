"""The local stack in the foreground until SIGINT or SIGTERM: `llmops serve` and the benchmark's
in-memory-accounting variant (`llmops.bench.local_serve`) run it the same way."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from types import FrameType
from typing import Any

from llmops.local.stack import LocalStack

__all__ = ["run_in_foreground"]


def run_in_foreground(
    stack: LocalStack,
    *,
    on_ready: Callable[[dict[str, Any]], None] = lambda _state: None,
    starting: AbstractContextManager[object] | None = None,
    on_stopping: Callable[[], None] = lambda: None,
) -> None:
    """Starts `stack` (inside `starting`, e.g. a spinner), calls `on_ready` with its state, then
    blocks until SIGINT or SIGTERM and stops it.

    The handlers go in before the start so a signal during startup still stops the stack cleanly
    once it is up, rather than killing the process with moto and the emulators half started.
    """
    stopping = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    with starting if starting is not None else nullcontext():
        state = stack.start()
    try:
        on_ready(state)
        stopping.wait()
    finally:
        on_stopping()
        stack.stop()
