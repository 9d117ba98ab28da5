"""The time one request may still spend: a pure value object over an injected clock.

A Lambda invocation is killed at its timeout, with no chance to release a reservation, write the
audit record or answer. So the request path works against a deadline taken from the Lambda context:
each provider call gets a share of what remains, minus a margin kept for the stages after it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Deadline"]


@dataclass(frozen=True, slots=True)
class Deadline:
    """`expires_at` is on `clock`'s scale (monotonic seconds by default); `math.inf` means no deadline."""

    expires_at: float
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(clock() + max(0.0, seconds), clock)

    @classmethod
    def unbounded(cls, clock: Callable[[], float] = time.monotonic) -> Deadline:
        """For callers outside a Lambda invocation (tests, benchmarks): only the configured timeouts apply."""
        return cls(math.inf, clock)

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.expires_at)

    def remaining_s(self) -> float:
        return max(0.0, self.expires_at - self.clock())

    def usable_s(self, margin_s: float) -> float:
        """What remains once `margin_s` is kept back for the work that must follow."""
        return max(0.0, self.remaining_s() - margin_s)
