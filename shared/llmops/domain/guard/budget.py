"""The per-request guard budget: guard work bounded by the size of what is guarded (issue 11).

Every pattern is linear-time (`safe_regex`), but linear with a large constant is still a way to
hold a request: dense findings (thousands of e-mail addresses, IPs, card numbers in 100 KB) cost
Python work per candidate. The budget makes the bound explicit: a direction (the input texts of a
request, or one completion) may spend ``max(floor, per_char * characters)`` of wall-clock time, on
a clock the caller injects (the domain reads no clock of its own). Detectors `tick()` inside their
per-candidate loops and the engine `check()`s between detectors.

When the budget is spent the engine **blocks** (`GUARD_BUDGET_EXCEEDED`, 400 content_blocked naming
the guard budget) rather than skipping what is left. Skipping would fail open: an attacker could
pad a request until the budget runs out and put the secret, the PII or the injection after the
padding. A block costs the caller a retry with less (or less dense) text; a fail-open costs a leak.
The engine's caller emits the `GuardBudgetExceeded` metric, which has an alarm and a runbook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

__all__ = [
    "BUDGET_FLOOR_S",
    "BUDGET_PER_CHAR_S",
    "GuardBudget",
    "GuardBudgetExceededError",
]

# 50 ms per 100 KB (the target of issue 11), and never less than the floor: small texts must not be
# refused because the machine was busy for a moment.
BUDGET_PER_CHAR_S: Final = 0.5e-6
BUDGET_FLOOR_S: Final = 0.05
_TICKS_PER_CHECK: Final = 32  # a clock read costs ~50 ns; a tick ~20 ns; a candidate up to ~50 us


class GuardBudgetExceededError(Exception):
    """The guard spent its budget; the engine turns this into a blocking finding."""


class GuardBudget:
    """Not shared between requests; cheap to create. `clock` None: unlimited (tests, offline tools)."""

    __slots__ = ("_clock", "_deadline", "_ticks", "chars", "limit_s")

    def __init__(self, clock: Callable[[], float] | None, limit_s: float, chars: int = 0) -> None:
        self._clock = clock
        self.limit_s = limit_s
        self.chars = chars
        self._deadline = clock() + limit_s if clock is not None else 0.0
        self._ticks = 0

    @classmethod
    def for_chars(
        cls,
        chars: int,
        clock: Callable[[], float] | None,
        *,
        per_char_s: float = BUDGET_PER_CHAR_S,
        floor_s: float = BUDGET_FLOOR_S,
    ) -> GuardBudget:
        return cls(clock, max(floor_s, per_char_s * chars), chars)

    @classmethod
    def unlimited(cls) -> GuardBudget:
        return cls(None, float("inf"))

    @property
    def bounded(self) -> bool:
        return self._clock is not None

    def check(self) -> None:
        """Raise `GuardBudgetExceededError` once the deadline has passed."""
        if self._clock is not None and self._clock() > self._deadline:
            raise GuardBudgetExceededError

    def tick(self) -> None:
        """One unit of per-candidate work; reads the clock every `_TICKS_PER_CHECK` ticks."""
        self._ticks += 1
        if self._ticks >= _TICKS_PER_CHECK:
            self._ticks = 0
            self.check()

    def exclude(self, seconds: float) -> None:
        """Give back time spent outside the guard's own work (a pluggable detector's network call)."""
        self._deadline += seconds

    def now(self) -> float:
        return self._clock() if self._clock is not None else 0.0


UNLIMITED: Final = GuardBudget.unlimited()
