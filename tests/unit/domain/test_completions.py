from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from llmops.adapters.dynamodb.route_source import DEFAULT_ROUTES_FILE, FileRouteSource
from llmops.domain.chat import ChatRequest, Completion, FinishReason, Message, Role, Usage
from llmops.domain.completions import CompletionResult, CompletionService
from llmops.domain.errors import (
    BadRequestError,
    ProviderError,
    ProviderFailureKind,
    UpstreamUnavailableError,
)
from llmops.domain.routing import CircuitBreaker, Provider, RouteTable, Target
from llmops.domain.tenancy import TenantContext

TENANT = TenantContext("t1", "key1")


class ScriptedProvider:
    """Fails for targets listed in `failures`, answers otherwise; records every call."""

    def __init__(self, failures: dict[str, ProviderFailureKind] | None = None) -> None:
        self.failures = failures or {}
        self.calls: list[str] = []

    def complete(self, target: Target, request: ChatRequest, *, timeout_s: float | None = None) -> Completion:
        self.calls.append(target.id)
        if target.id in self.failures:
            raise ProviderError(self.failures[target.id], "scripted failure", target_id=target.id)
        return Completion(f"answer from {target.id}", FinishReason.STOP, Usage(10, 5))


def _service(provider: ScriptedProvider, draw: Callable[[], float] = lambda: 0.0) -> CompletionService:
    return CompletionService(
        routes=FileRouteSource(DEFAULT_ROUTES_FILE),
        providers={Provider.BEDROCK: provider, Provider.SAGEMAKER: provider},
        breaker=CircuitBreaker(threshold=2, cooldown_s=30),
        clock=lambda: 0.0,
        draw=draw,
    )


def _request(model: str = "chat-default", max_tokens: int | None = None) -> ChatRequest:
    return ChatRequest(model=model, messages=(Message(Role.USER, "hi"),), max_tokens=max_tokens)


def _complete(service: CompletionService, request: ChatRequest) -> CompletionResult:
    """What the chat path does: plan the targets (before reserving quota), then execute the plan."""
    return service.execute(service.plan(request, TENANT), request)


def test_primary_answers_and_cost_is_priced() -> None:
    provider = ScriptedProvider()
    result = _complete(_service(provider), _request())
    assert result.target.id == "bedrock-claude-haiku"
    assert provider.calls == ["bedrock-claude-haiku"]
    assert result.cost_usd == pytest.approx(10 / 1000 * 0.0008 + 5 / 1000 * 0.004)
    assert [a.target_id for a in result.attempts] == [result.target.id]  # no fallback


@pytest.mark.parametrize(
    "kind", [ProviderFailureKind.THROTTLED, ProviderFailureKind.UNAVAILABLE, ProviderFailureKind.TIMEOUT]
)
def test_retryable_failure_falls_back(kind: ProviderFailureKind) -> None:
    provider = ScriptedProvider({"sm-llama3-8b-primary": kind})
    result = _complete(_service(provider), _request("llama3-8b"))
    assert result.target.id == "bedrock-nova-lite"
    assert [a.outcome for a in result.attempts] == [kind.value, "ok"]


def test_invalid_request_does_not_fall_back() -> None:
    provider = ScriptedProvider({"bedrock-claude-haiku": ProviderFailureKind.INVALID_REQUEST})
    with pytest.raises(BadRequestError):
        _complete(_service(provider), _request())
    assert provider.calls == ["bedrock-claude-haiku"]


def test_a_rejected_request_names_the_providers_error_code_but_never_its_message() -> None:
    # Provider messages can quote the request (a Bedrock ValidationException names the offending
    # text), so the caller is told the alias and the provider's error code, nothing more.
    class QuotingProvider:
        def complete(self, target: Target, request: ChatRequest, *, timeout_s: float | None = None) -> Completion:
            raise ProviderError(
                ProviderFailureKind.INVALID_REQUEST,
                f"Bedrock said: {request.messages[0].content} is invalid",
                target_id=target.id,
                error_code="ValidationException",
            )

    service = CompletionService(FileRouteSource(DEFAULT_ROUTES_FILE), {Provider.BEDROCK: QuotingProvider()})
    request = ChatRequest(model="chat-default", messages=(Message(Role.USER, "my card is 4111 1111 1111 1111"),))
    with pytest.raises(BadRequestError) as info:
        _complete(service, request)
    assert (info.value.status, info.value.code) == (400, "invalid_request")
    assert "4111" not in info.value.message
    assert "chat-default" in info.value.message
    assert "ValidationException" in info.value.message


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (ProviderFailureKind.THROTTLED, 503),
        (ProviderFailureKind.UNAVAILABLE, 502),
        (ProviderFailureKind.TIMEOUT, 504),
    ],
)
def test_all_targets_failing_maps_to_5xx_naming_alias(kind: ProviderFailureKind, status: int) -> None:
    provider = ScriptedProvider({"bedrock-claude-haiku": kind, "bedrock-nova-lite": kind})
    with pytest.raises(UpstreamUnavailableError) as err:
        _complete(_service(provider), _request())
    assert err.value.status == status
    assert "chat-default" in err.value.message


def test_breaker_skips_a_failing_target_after_threshold() -> None:
    provider = ScriptedProvider({"bedrock-claude-haiku": ProviderFailureKind.UNAVAILABLE})
    service = _service(provider)
    for _ in range(2):
        _complete(service, _request())
    provider.calls.clear()
    _complete(service, _request())
    assert provider.calls == ["bedrock-nova-lite"]


def test_canary_weight_sends_share_of_traffic_to_candidate() -> None:
    doc = json.loads(DEFAULT_ROUTES_FILE.read_text())
    doc["routes"]["llama3-8b"]["targets"][1]["weight"] = 25
    doc["routes"]["llama3-8b"]["targets"][0]["weight"] = 75

    class Source:
        def current(self) -> RouteTable:
            return RouteTable.from_document(doc)

    provider = ScriptedProvider()
    draws = iter(i / 100 for i in range(100))
    service = CompletionService(
        Source(), {Provider.BEDROCK: provider, Provider.SAGEMAKER: provider}, draw=lambda: next(draws)
    )
    targets = [_complete(service, _request("llama3-8b")).target.id for _ in range(100)]
    assert targets.count("sm-llama3-8b-candidate") == 25


def test_max_tokens_beyond_primary_limit_is_rejected_before_any_call() -> None:
    provider = ScriptedProvider()
    with pytest.raises(BadRequestError):
        _complete(_service(provider), _request("llama3-8b", max_tokens=100_000))
    assert provider.calls == []
