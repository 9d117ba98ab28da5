"""The per-request guard budget (issue 11): bounded by size, fail-safe block, a clock that is injected."""

from __future__ import annotations

import pytest

from llmops.domain.guard import GuardEngine, GuardPolicy
from llmops.domain.guard.budget import BUDGET_FLOOR_S, BUDGET_PER_CHAR_S, GuardBudget, GuardBudgetExceededError
from llmops.domain.guard.engine import GuardrailBlockedError
from llmops.domain.guard.findings import Action, FindingType


class SteppingClock:
    """Each read moves time on by `step` seconds: a guard that reads it often runs out of budget."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        self.now += self.step
        return self.now


def test_the_budget_grows_with_the_size_and_has_a_floor() -> None:
    assert GuardBudget.for_chars(10, lambda: 0.0).limit_s == BUDGET_FLOOR_S
    assert GuardBudget.for_chars(1_000_000, lambda: 0.0).limit_s == pytest.approx(1_000_000 * BUDGET_PER_CHAR_S)
    assert GuardBudget.for_chars(100_000, lambda: 0.0).limit_s == pytest.approx(0.05)  # 50 ms per 100 KB


def test_without_a_clock_the_budget_never_runs_out() -> None:
    budget = GuardBudget.for_chars(10, None)
    for _ in range(10_000):
        budget.tick()
    budget.check()
    assert not budget.bounded


def test_a_spent_budget_raises_on_check_and_every_so_many_ticks() -> None:
    clock = SteppingClock(1.0)
    budget = GuardBudget(clock, 0.5)
    with pytest.raises(GuardBudgetExceededError):
        budget.check()
    budget = GuardBudget(clock, 0.5)
    with pytest.raises(GuardBudgetExceededError):
        for _ in range(1000):
            budget.tick()


def test_excluded_time_is_given_back() -> None:
    clock = SteppingClock(0.0)
    budget = GuardBudget(clock, 1.0)
    clock.now += 5.0
    budget.exclude(5.0)
    budget.check()


def _dense_text() -> str:
    return " ".join(f"user{i}@example.com 415-555-{i % 10000:04d}" for i in range(400))


def test_an_exhausted_budget_blocks_the_input_with_a_code_naming_it() -> None:
    engine = GuardEngine(clock=SteppingClock(0.01))
    verdict = engine.guard_input(["hello", _dense_text()])
    assert verdict.action is Action.BLOCK
    assert verdict.blocked_by is not None and verdict.blocked_by.type == FindingType.GUARD_BUDGET_EXCEEDED
    assert verdict.texts == ("", "")  # nothing goes on to the model
    with pytest.raises(GuardrailBlockedError) as raised:
        verdict.raise_if_blocked()
    assert raised.value.code == "guard_budget_exceeded"
    assert "GUARD_BUDGET_EXCEEDED" in raised.value.message


def test_an_exhausted_budget_blocks_the_output_and_the_scan() -> None:
    engine = GuardEngine(clock=SteppingClock(0.01))
    output = engine.guard_output(_dense_text(), system_prompt="You are a helpful assistant.", context=["doc"])
    assert output.blocked_by is not None and output.blocked_by.type == FindingType.GUARD_BUDGET_EXCEEDED
    assert output.text == ""
    scan = engine.scan(_dense_text(), "output")
    assert scan.action is Action.BLOCK
    assert [f.type for f in scan.findings] == [FindingType.GUARD_BUDGET_EXCEEDED]


def test_a_real_clock_leaves_ordinary_requests_alone() -> None:
    import time

    engine = GuardEngine(clock=time.perf_counter)
    verdict = engine.guard_input(["Mail john.doe@example.com or call 415-555-2671 about card 4111 1111 1111 1111."])
    assert verdict.action is Action.REDACT
    output = engine.guard_output("The weather is fine today.", system_prompt="Be brief.", context=["The weather."])
    assert output.action is Action.ALLOW


def test_the_input_size_limit_applies_to_the_request_and_costs_no_scan() -> None:
    clock = SteppingClock(0.0)
    engine = GuardEngine(GuardPolicy(max_input_chars=1000), clock=clock)
    reads = clock.reads
    verdict = engine.guard_input(["x" * 600, "y" * 600])  # each under the limit, together over it
    assert verdict.blocked_by is not None and verdict.blocked_by.type == FindingType.INPUT_TOO_LARGE
    assert verdict.texts == ("", "")
    assert clock.reads == reads  # refused before the budget even started
