"""The streaming provider adapters, wired as the Lambda wires them, against the local emulators:
events arrive incrementally, map to `StreamEvent`s, and failures are `ProviderError`s."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from llmops.adapters.dynamodb.route_source import FileRouteSource
from llmops.application.wiring import ModelProvider, build_completions, build_providers
from llmops.config.env import Settings
from llmops.domain.chat import ChatRequest, FinishReason, Message, Role
from llmops.domain.errors import ProviderError, ProviderFailureKind
from llmops.domain.routing import PayloadFormat, Provider, Target
from llmops.domain.streaming import StreamEnd, StreamEvent, TextDelta
from llmops.domain.tenancy import TenantContext
from llmops.local.emulators import BedrockRuntimeEmulator, FaultSpec, SageMakerRuntimeEmulator
from llmops.local.wsgi_server import LoopbackServer

SETTINGS = Settings(provider_connect_timeout_s=1, provider_read_timeout_s=5, provider_max_attempts=1)
PRICES: dict[str, Any] = {"price_per_1k_input_usd": 0.001, "price_per_1k_output_usd": 0.002, "context_window": 8192}
HAIKU = Target(
    id="bedrock-claude-haiku", provider=Provider.BEDROCK, model_id="anthropic.claude-3-5-haiku-20241022-v1:0", **PRICES
)
LLAMA_CANDIDATE = Target(
    id="sm-llama3-8b-candidate",
    provider=Provider.SAGEMAKER,
    endpoint_name="llmops-llama3-8b",
    variant="candidate",
    **PRICES,
)
MISTRAL_TGI = Target(
    id="sm-mistral-7b-tgi",
    provider=Provider.SAGEMAKER,
    endpoint_name="llmops-mistral-7b-tgi",
    payload_format=PayloadFormat.TGI,
    chat_template="mistral",
    **PRICES,
)
TOKEN_LATENCY_S = 0.1
TOKENS = 10


def chat(**kwargs: Any) -> ChatRequest:
    messages = (Message(Role.SYSTEM, "Be brief."), Message(Role.USER, "Capital of France?"))
    return ChatRequest(model="alias", messages=messages, stream=True, **kwargs)


@pytest.fixture
def bedrock(
    bedrock_emulator: tuple[BedrockRuntimeEmulator, LoopbackServer], monkeypatch: pytest.MonkeyPatch
) -> Iterator[BedrockRuntimeEmulator]:
    app, server = bedrock_emulator
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", server.url)
    yield app


@pytest.fixture
def sagemaker(
    sagemaker_emulator: tuple[SageMakerRuntimeEmulator, LoopbackServer], monkeypatch: pytest.MonkeyPatch
) -> Iterator[SageMakerRuntimeEmulator]:
    app, server = sagemaker_emulator
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", server.url)
    yield app


def provider(kind: Provider, settings: Settings = SETTINGS) -> ModelProvider:
    return build_providers(settings)[kind]


def timed(events: Iterator[StreamEvent]) -> list[tuple[float, StreamEvent]]:
    started = time.monotonic()
    return [(time.monotonic() - started, event) for event in events]


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


@pytest.mark.parametrize(("kind", "target"), [(Provider.BEDROCK, HAIKU), (Provider.SAGEMAKER, LLAMA_CANDIDATE)])
def test_tokens_arrive_one_by_one_and_match_the_buffered_answer(
    bedrock: BedrockRuntimeEmulator, sagemaker: SageMakerRuntimeEmulator, kind: Provider, target: Target
) -> None:
    key = target.model_id if kind is Provider.BEDROCK else f"{target.endpoint_name}/{target.variant}"
    (bedrock if kind is Provider.BEDROCK else sagemaker).faults.set(
        key, FaultSpec(token_latency_ms=TOKEN_LATENCY_S * 1000)
    )
    arrivals = timed(provider(kind).stream(target, chat(max_tokens=TOKENS)))
    deltas = [t for t, e in arrivals if isinstance(e, TextDelta)]
    assert len(deltas) == TOKENS
    # The first token long before the last one's latency has elapsed: streamed, not buffered.
    assert deltas[0] < deltas[-1] - (TOKENS / 2) * TOKEN_LATENCY_S
    assert deltas[-1] >= (TOKENS - 1) * TOKEN_LATENCY_S * 0.9
    events = [e for _, e in arrivals]
    end = events[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason is FinishReason.LENGTH
    assert end.usage is not None and end.usage.output_tokens == TOKENS
    assert sum(isinstance(e, StreamEnd) for e in events) == 1

    buffered = provider(kind).complete(target, chat(max_tokens=TOKENS))
    assert text_of(events) == buffered.text
    assert end.usage == buffered.usage


def test_tgi_stream_maps_tokens_finish_and_usage(sagemaker: SageMakerRuntimeEmulator) -> None:
    events = list(provider(Provider.SAGEMAKER).stream(MISTRAL_TGI, chat(max_tokens=4)))
    buffered = provider(Provider.SAGEMAKER).complete(MISTRAL_TGI, chat(max_tokens=4))
    assert text_of(events) == buffered.text
    end = events[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason is FinishReason.LENGTH
    assert end.usage == buffered.usage


def test_tgi_stream_drops_a_matched_stop_sequence_as_the_buffered_path_does(
    sagemaker: SageMakerRuntimeEmulator,
) -> None:
    probe = provider(Provider.SAGEMAKER).complete(MISTRAL_TGI, chat()).text
    stop = probe.split()[5]  # a word the answer is certain to contain
    request = chat(stop=(stop,))
    events = list(provider(Provider.SAGEMAKER).stream(MISTRAL_TGI, request))
    assert text_of(events) == provider(Provider.SAGEMAKER).complete(MISTRAL_TGI, request).text
    assert stop not in text_of(events)


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        (FaultSpec(throttle_rate=1.0, fault_after_tokens=2), ProviderFailureKind.THROTTLED),
        (FaultSpec(error_rate=1.0, error_status=424, fault_after_tokens=2), ProviderFailureKind.UNAVAILABLE),
    ],
)
def test_a_modeled_exception_mid_stream_is_raised_from_the_iterator(
    bedrock: BedrockRuntimeEmulator, spec: FaultSpec, kind: ProviderFailureKind
) -> None:
    bedrock.faults.set(HAIKU.model_id, spec)
    events = provider(Provider.BEDROCK).stream(HAIKU, chat())
    received = [next(events), next(events)]
    assert all(isinstance(e, TextDelta) for e in received)
    with pytest.raises(ProviderError) as info:
        next(events)
    assert (info.value.kind, info.value.target_id) == (kind, HAIKU.id)


def test_sagemaker_mid_stream_error_is_a_provider_error(sagemaker: SageMakerRuntimeEmulator) -> None:
    sagemaker.faults.set("llmops-llama3-8b", FaultSpec(error_rate=1.0, fault_after_tokens=1))
    with pytest.raises(ProviderError) as info:
        list(provider(Provider.SAGEMAKER).stream(LLAMA_CANDIDATE, chat()))
    assert info.value.kind is ProviderFailureKind.UNAVAILABLE
    assert info.value.error_code == "ModelStreamError"


@pytest.mark.parametrize(("kind", "target"), [(Provider.BEDROCK, HAIKU), (Provider.SAGEMAKER, LLAMA_CANDIDATE)])
def test_a_stream_that_hangs_mid_way_fails_as_timeout_within_the_read_timeout(
    bedrock: BedrockRuntimeEmulator, sagemaker: SageMakerRuntimeEmulator, kind: Provider, target: Target
) -> None:
    app = bedrock if kind is Provider.BEDROCK else sagemaker
    app.faults.set("*", FaultSpec(timeout_rate=1.0, timeout_s=30, fault_after_tokens=2))
    settings = Settings(provider_connect_timeout_s=1, provider_read_timeout_s=1, provider_max_attempts=1)
    events = provider(kind, settings).stream(target, chat())
    assert isinstance(next(events), TextDelta)
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        list(events)
    assert info.value.kind is ProviderFailureKind.TIMEOUT
    assert time.monotonic() - started < 3
    app.release_waiters()


def test_an_error_before_the_stream_is_a_provider_error_like_complete(bedrock: BedrockRuntimeEmulator) -> None:
    bedrock.faults.set(HAIKU.model_id, FaultSpec(throttle_rate=1.0))
    with pytest.raises(ProviderError) as info:
        next(provider(Provider.BEDROCK).stream(HAIKU, chat()))
    assert info.value.kind is ProviderFailureKind.THROTTLED
    assert info.value.error_code == "ThrottlingException"


def test_an_unknown_variant_fails_before_the_stream_and_allows_fallback(sagemaker: SageMakerRuntimeEmulator) -> None:
    target = Target(
        id="gone", provider=Provider.SAGEMAKER, endpoint_name="llmops-llama3-8b", variant="retired", **PRICES
    )
    with pytest.raises(ProviderError) as info:
        next(provider(Provider.SAGEMAKER).stream(target, chat()))
    assert info.value.kind is ProviderFailureKind.UNAVAILABLE


def test_closing_the_iterator_stops_the_provider_read(bedrock: BedrockRuntimeEmulator) -> None:
    bedrock.faults.set(HAIKU.model_id, FaultSpec(token_latency_ms=50))
    events = provider(Provider.BEDROCK).stream(HAIKU, chat())
    next(events)
    started = time.monotonic()
    events.close()  # type: ignore[attr-defined]
    assert time.monotonic() - started < 0.5  # no draining of the rest of the answer
    assert list(events) == []


def test_the_completion_service_streams_through_the_real_providers(
    bedrock: BedrockRuntimeEmulator, sagemaker: SageMakerRuntimeEmulator
) -> None:
    # chat-default's primary throttles before its stream: the service falls back to its Bedrock fallback.
    bedrock.faults.set("anthropic.claude-3-5-haiku-20241022-v1:0", FaultSpec(throttle_rate=1.0))
    service = build_completions(SETTINGS, FileRouteSource())
    request = ChatRequest(model="chat-default", messages=(Message(Role.USER, "hi"),), stream=True)
    result = service.stream(service.plan(request, TenantContext("t", "k")), request)
    events = list(result.events)
    assert result.target.id == "bedrock-nova-lite"
    assert [a.outcome for a in result.attempts] == ["throttled", "ok"]
    assert text_of(events).startswith("Emulated answer from amazon.nova-lite")
    assert isinstance(events[-1], StreamEnd)
