"""Provider calls run against the request's deadline: each gets a share of what remains, retries
only while time remains, and a request out of time fails as 504 `upstream_timeout`."""

from __future__ import annotations

import pytest

from llmops.adapters.dynamodb.route_source import DEFAULT_ROUTES_FILE, FileRouteSource
from llmops.domain.chat import ChatRequest, Completion, FinishReason, Message, Role, Usage
from llmops.domain.completions import CompletionResult, CompletionService
from llmops.domain.deadline import Deadline
from llmops.domain.errors import ProviderError, ProviderFailureKind, UpstreamUnavailableError
from llmops.domain.routing import CircuitBreaker, Provider, Target
from llmops.domain.tenancy import TenantContext

TENANT = TenantContext("t1", "key1")
PRIMARY, FALLBACK = "sm-llama3-8b-primary", "bedrock-nova-lite"  # alias llama3-8b in routes.json
MARGIN_S, MIN_ATTEMPT_S = 2.0, 3.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class HangingProvider:
    """Targets in `hang` use up their whole budget and time out; `fail` ones answer at once with an error."""

    def __init__(
        self,
        clock: FakeClock,
        hang: frozenset[str] = frozenset(),
        fail: ProviderFailureKind | None = None,
        cost_s: float = 0.0,
    ) -> None:
        self.clock, self.hang, self.fail, self.cost_s = clock, hang, fail, cost_s
        self.calls: list[tuple[str, float | None]] = []

    def complete(self, target: Target, request: ChatRequest, *, timeout_s: float | None = None) -> Completion:
        self.calls.append((target.id, timeout_s))
        if target.id in self.hang:
            assert timeout_s is not None, "a hung call without a deadline would never end"
            self.clock.now += timeout_s
            raise ProviderError(ProviderFailureKind.TIMEOUT, "read timeout", target_id=target.id)
        self.clock.now += self.cost_s
        if self.fail is not None:
            raise ProviderError(self.fail, "scripted", target_id=target.id)
        self.clock.now += 0.5
        return Completion(f"answer from {target.id}", FinishReason.STOP, Usage(10, 5))


def _service(provider: HangingProvider, clock: FakeClock, attempts: int = 2) -> CompletionService:
    return CompletionService(
        routes=FileRouteSource(DEFAULT_ROUTES_FILE),
        providers={Provider.BEDROCK: provider, Provider.SAGEMAKER: provider},
        breaker=CircuitBreaker(threshold=100, cooldown_s=30),
        clock=clock,
        draw=lambda: 0.0,
        deadline_margin_s=MARGIN_S,
        attempts_per_target=attempts,
        min_attempt_s=MIN_ATTEMPT_S,
        sleep=lambda _s: None,
    )


def _request(model: str = "llama3-8b") -> ChatRequest:
    return ChatRequest(model=model, messages=(Message(Role.USER, "hi"),))


def _complete(service: CompletionService, request: ChatRequest, deadline: Deadline | None = None) -> CompletionResult:
    """What the chat path does: plan the targets (before reserving quota), then execute the plan."""
    return service.execute(service.plan(request, TENANT), request, deadline)


def test_hung_primary_leaves_its_fallback_time_to_answer() -> None:
    clock = FakeClock()
    provider = HangingProvider(clock, hang=frozenset({PRIMARY}))
    deadline = Deadline.after(29, clock)

    result = _complete(_service(provider, clock), _request(), deadline)

    assert result.target.id == FALLBACK
    # While a fallback remains the primary may use half of what is left after the margin: (29 - 2) / 2.
    assert provider.calls[0] == (PRIMARY, 13.5)
    assert provider.calls[1] == (FALLBACK, 13.5)  # the last target gets all that is left
    assert [a.outcome for a in result.attempts] == ["timeout", "ok"]
    assert deadline.remaining_s() >= MARGIN_S  # settle, audit and the answer still fit


def test_nothing_answering_in_time_is_a_504_before_the_deadline() -> None:
    clock = FakeClock()
    provider = HangingProvider(clock, hang=frozenset({PRIMARY, FALLBACK}))
    deadline = Deadline.after(29, clock)

    with pytest.raises(UpstreamUnavailableError) as info:
        _complete(_service(provider, clock), _request(), deadline)

    assert (info.value.status, info.value.code) == (504, "upstream_timeout")
    assert [c[0] for c in provider.calls] == [PRIMARY, FALLBACK]  # timed-out targets are not called again
    assert deadline.remaining_s() == pytest.approx(MARGIN_S)
    assert [a.outcome for a in info.value.attempts] == ["timeout", "timeout"]  # type: ignore[attr-defined]


def test_a_target_that_no_longer_fits_is_not_called() -> None:
    clock = FakeClock()
    provider = HangingProvider(clock, hang=frozenset({PRIMARY}))
    deadline = Deadline.after(MARGIN_S + MIN_ATTEMPT_S + 1, clock)  # room for the primary's minimum only

    with pytest.raises(UpstreamUnavailableError) as info:
        _complete(_service(provider, clock), _request(), deadline)

    assert (info.value.status, info.value.code) == (504, "upstream_timeout")
    assert provider.calls == [(PRIMARY, MIN_ATTEMPT_S)]
    assert "time limit" in info.value.message


def test_no_time_at_all_calls_nothing() -> None:
    clock = FakeClock()
    provider = HangingProvider(clock)
    with pytest.raises(UpstreamUnavailableError) as info:
        _complete(_service(provider, clock), _request(), Deadline.after(MARGIN_S, clock))
    assert info.value.code == "upstream_timeout"
    assert provider.calls == []


def test_throttled_targets_are_retried_after_every_target_was_tried_once() -> None:
    clock = FakeClock()
    provider = HangingProvider(clock, fail=ProviderFailureKind.THROTTLED)
    with pytest.raises(UpstreamUnavailableError) as info:
        _complete(_service(provider, clock, attempts=2), _request(), Deadline.after(29, clock))
    assert [c[0] for c in provider.calls] == [PRIMARY, FALLBACK, PRIMARY, FALLBACK]
    assert (info.value.status, info.value.code) == (503, "upstream_throttled")


def test_retries_stop_when_the_deadline_leaves_no_room_and_report_the_last_failure() -> None:
    clock = FakeClock()
    provider = HangingProvider(clock, fail=ProviderFailureKind.THROTTLED, cost_s=1.0)
    # 4.5 s usable: both targets fit once (1 s each), then a retry would need MIN_ATTEMPT_S and 2.5 s are left.
    deadline = Deadline.after(MARGIN_S + 4.5, clock)
    with pytest.raises(UpstreamUnavailableError) as info:
        _complete(_service(provider, clock, attempts=2), _request(), deadline)
    assert [c[0] for c in provider.calls] == [PRIMARY, FALLBACK]
    assert (info.value.status, info.value.code) == (503, "upstream_throttled")


def test_without_a_deadline_the_configured_timeouts_apply() -> None:
    clock = FakeClock()
    provider = HangingProvider(clock)
    _complete(_service(provider, clock), _request())
    assert provider.calls == [(PRIMARY, None)]


def test_deadline_counts_down_on_its_clock() -> None:
    clock = FakeClock()
    deadline = Deadline.after(5, clock)
    clock.now += 2
    assert deadline.remaining_s() == pytest.approx(3)
    assert deadline.usable_s(1) == pytest.approx(2)
    clock.now += 10
    assert deadline.remaining_s() == 0
    assert not Deadline.unbounded(clock).bounded
