"""`CompletionService.stream`: the same targets, deadline and breaker as `execute`, with fallback
only before the first event (fake providers, no network)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llmops.adapters.dynamodb.route_source import DEFAULT_ROUTES_FILE, FileRouteSource
from llmops.domain.chat import ChatRequest, Completion, FinishReason, Message, Role, Usage
from llmops.domain.completions import CompletionService, StreamingResult
from llmops.domain.deadline import Deadline
from llmops.domain.errors import BadRequestError, ProviderError, ProviderFailureKind, UpstreamUnavailableError
from llmops.domain.routing import CircuitBreaker, Provider, Target
from llmops.domain.streaming import StreamEnd, StreamEvent, TextDelta
from llmops.domain.tenancy import TenantContext

TENANT = TenantContext("t1", "key1")
PRIMARY, FALLBACK = "bedrock-claude-haiku", "bedrock-nova-lite"  # chat-default's targets


class ScriptedStreams:
    """Per target: the events to yield, an exception to raise after them, or a failure before any."""

    def __init__(self) -> None:
        self.events: dict[str, list[StreamEvent]] = {}
        self.fail_before: dict[str, ProviderFailureKind] = {}
        self.fail_after: dict[str, ProviderFailureKind] = {}
        self.calls: list[tuple[str, float | None]] = []
        self.closed: list[str] = []

    def complete(self, target: Target, request: ChatRequest, *, timeout_s: float | None = None) -> Completion:
        raise AssertionError("a streaming provider is streamed")

    def stream(self, target: Target, request: ChatRequest, *, timeout_s: float | None = None) -> Iterator[StreamEvent]:
        self.calls.append((target.id, timeout_s))
        try:
            if target.id in self.fail_before:
                raise ProviderError(self.fail_before[target.id], "scripted", target_id=target.id)
            yield from self.events.get(
                target.id, [TextDelta(f"from {target.id}"), StreamEnd(FinishReason.STOP, Usage(10, 5))]
            )
            if target.id in self.fail_after:
                raise ProviderError(self.fail_after[target.id], "scripted mid-stream", target_id=target.id)
        finally:
            self.closed.append(target.id)


def _service(provider: ScriptedStreams, **kwargs: object) -> CompletionService:
    return CompletionService(
        routes=FileRouteSource(DEFAULT_ROUTES_FILE),
        providers={Provider.BEDROCK: provider, Provider.SAGEMAKER: provider},
        streaming={Provider.BEDROCK: provider, Provider.SAGEMAKER: provider},
        breaker=CircuitBreaker(threshold=1, cooldown_s=30),
        clock=lambda: 0.0,
        draw=lambda: 0.0,
        **kwargs,  # type: ignore[arg-type]
    )


def _stream(service: CompletionService, deadline: Deadline | None = None) -> StreamingResult:
    request = ChatRequest(model="chat-default", messages=(Message(Role.USER, "hi"),), stream=True)
    return service.stream(service.plan(request, TENANT), request, deadline)


def test_the_primary_streams_its_events_in_order() -> None:
    provider = ScriptedStreams()
    provider.events[PRIMARY] = [TextDelta("a"), TextDelta("b"), StreamEnd(FinishReason.LENGTH, Usage(3, 2))]
    result = _stream(_service(provider))
    assert (result.target.id, [a.outcome for a in result.attempts]) == (PRIMARY, ["ok"])
    assert list(result.events) == provider.events[PRIMARY]
    assert result.cost_usd(Usage(1000, 1000)) == pytest.approx(0.0008 + 0.004)
    assert provider.closed == [PRIMARY]


def test_the_first_event_is_pulled_before_stream_returns() -> None:
    provider = ScriptedStreams()
    result = _stream(_service(provider))
    assert provider.calls == [(PRIMARY, None)]  # the call is made and answered: the attempt is "ok"
    assert next(result.events) == TextDelta(f"from {PRIMARY}")


@pytest.mark.parametrize(
    "kind", [ProviderFailureKind.THROTTLED, ProviderFailureKind.UNAVAILABLE, ProviderFailureKind.TIMEOUT]
)
def test_a_failure_before_the_first_event_falls_back(kind: ProviderFailureKind) -> None:
    provider = ScriptedStreams()
    provider.fail_before[PRIMARY] = kind
    service = _service(provider)
    result = _stream(service)
    assert result.target.id == FALLBACK
    assert [a.outcome for a in result.attempts] == [kind.value, "ok"]
    assert next(result.events) == TextDelta(f"from {FALLBACK}")
    assert service.breaker.is_open(PRIMARY, 0.0)


def test_a_stream_that_ends_before_any_event_falls_back() -> None:
    provider = ScriptedStreams()
    provider.events[PRIMARY] = []
    result = _stream(_service(provider))
    assert result.target.id == FALLBACK
    assert result.attempts[0].outcome == ProviderFailureKind.UNAVAILABLE.value


def test_a_failure_after_the_first_event_is_raised_from_the_events_and_does_not_fall_back() -> None:
    provider = ScriptedStreams()
    provider.events[PRIMARY] = [TextDelta("partial")]
    provider.fail_after[PRIMARY] = ProviderFailureKind.UNAVAILABLE
    service = _service(provider)
    result = _stream(service)
    assert next(result.events) == TextDelta("partial")
    assert not service.breaker.is_open(PRIMARY, 0.0)  # it answered...
    with pytest.raises(ProviderError) as info:
        next(result.events)
    assert info.value.kind is ProviderFailureKind.UNAVAILABLE
    assert [target for target, _ in provider.calls] == [PRIMARY]  # ...and no fallback was tried
    assert service.breaker.is_open(PRIMARY, 0.0)  # ...but the failure counts against it


def test_a_stream_that_stops_without_its_end_is_a_provider_error() -> None:
    provider = ScriptedStreams()
    provider.events[PRIMARY] = [TextDelta("cut")]
    result = _stream(_service(provider))
    with pytest.raises(ProviderError):
        list(result.events)


def test_closing_the_result_closes_the_provider_stream() -> None:
    provider = ScriptedStreams()
    provider.events[PRIMARY] = [TextDelta("a"), TextDelta("b"), StreamEnd(FinishReason.STOP)]
    result = _stream(_service(provider))
    next(result.events)
    result.close()
    assert provider.closed == [PRIMARY]
    assert list(result.events) == []


def test_a_rejected_request_is_a_bad_request_as_for_execute() -> None:
    provider = ScriptedStreams()
    provider.fail_before[PRIMARY] = ProviderFailureKind.INVALID_REQUEST
    with pytest.raises(BadRequestError):
        _stream(_service(provider))
    assert [target for target, _ in provider.calls] == [PRIMARY]


def test_all_targets_failing_before_the_first_event_is_upstream_unavailable() -> None:
    provider = ScriptedStreams()
    provider.fail_before = {PRIMARY: ProviderFailureKind.THROTTLED, FALLBACK: ProviderFailureKind.THROTTLED}
    with pytest.raises(UpstreamUnavailableError) as info:
        _stream(_service(provider))
    assert (info.value.status, info.value.code) == (503, "upstream_throttled")


def test_each_call_gets_its_share_of_the_deadline_as_its_first_event_and_read_timeout() -> None:
    provider = ScriptedStreams()
    provider.fail_before[PRIMARY] = ProviderFailureKind.TIMEOUT
    _stream(_service(provider, min_attempt_s=1.0), Deadline(10.0, clock=lambda: 0.0))
    assert provider.calls == [(PRIMARY, 5.0), (FALLBACK, 10.0)]  # half while a fallback remains


def test_an_expired_deadline_fails_as_upstream_timeout_before_any_call() -> None:
    provider = ScriptedStreams()
    with pytest.raises(UpstreamUnavailableError) as info:
        _stream(_service(provider, min_attempt_s=1.0), Deadline(0.5, clock=lambda: 0.0))
    assert info.value.code == "upstream_timeout"
    assert provider.calls == []


def test_a_provider_that_cannot_stream_streams_its_buffered_completion() -> None:
    class Buffered:
        def complete(self, target: Target, request: ChatRequest, *, timeout_s: float | None = None) -> Completion:
            return Completion("whole answer", FinishReason.STOP, Usage(4, 2), raw_model="m")

    service = CompletionService(
        routes=FileRouteSource(DEFAULT_ROUTES_FILE),
        providers={Provider.BEDROCK: Buffered()},
        draw=lambda: 0.0,
    )
    events = list(_stream(service).events)
    assert events == [TextDelta("whole answer"), StreamEnd(FinishReason.STOP, Usage(4, 2), "m")]
