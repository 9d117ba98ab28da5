from __future__ import annotations

import pytest

from llmops.local.emulators import FaultPlan, FaultSpec, Outcome


def outcomes(plan: FaultPlan, key: str, n: int) -> list[Outcome]:
    return [plan.decide([key]).outcome for _ in range(n)]


def test_same_seed_same_sequence() -> None:
    spec = FaultSpec(throttle_rate=0.3, error_rate=0.2, timeout_rate=0.1)
    first, second = FaultPlan(seed=7), FaultPlan(seed=7)
    first.set("m", spec)
    second.set("m", spec)
    assert outcomes(first, "m", 50) == outcomes(second, "m", 50)


def test_rates_are_roughly_honoured() -> None:
    plan = FaultPlan(seed=1)
    plan.set("m", FaultSpec(throttle_rate=0.3))
    throttled = outcomes(plan, "m", 1000).count(Outcome.THROTTLED)
    assert 250 < throttled < 350
    assert plan.stats()["m"]["calls"] == 1000


def test_most_specific_key_wins_then_wildcard() -> None:
    plan = FaultPlan()
    plan.set("ep", FaultSpec(error_rate=1.0))
    plan.set("ep/canary", FaultSpec(throttle_rate=1.0))
    plan.set("*", FaultSpec(timeout_rate=1.0, timeout_s=0))
    assert plan.decide(["ep/canary", "ep"]).outcome is Outcome.THROTTLED
    assert plan.decide(["ep/primary", "ep"]).outcome is Outcome.ERROR
    assert plan.decide(["other"]).outcome is Outcome.TIMEOUT
    plan.clear("*")
    assert plan.decide(["other"]).outcome is Outcome.OK


def test_reset_clears_specs_and_stats() -> None:
    plan = FaultPlan()
    plan.set("m", FaultSpec(throttle_rate=1.0))
    plan.decide(["m"])
    plan.reset()
    assert plan.specs() == {}
    assert plan.stats() == {}


@pytest.mark.parametrize(
    "doc",
    [
        {"throttle_rate": 0.8, "error_rate": 0.5},
        {"throttle_rate": -0.1},
        {"latency_ms": -1},
        {"error_status": 200},
        {"bogus": 1},
        {"latency_ms": "slow"},
    ],
)
def test_invalid_specs_are_rejected(doc: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FaultSpec.from_dict(doc)


def test_spec_round_trips_through_dict() -> None:
    spec = FaultSpec(latency_ms=5, throttle_rate=0.5, error_status=503)
    assert FaultSpec.from_dict(spec.to_dict()) == spec
