"""The gateway's provider adapters, wired as the Lambda wires them, against the local emulators.

Clients come from `aws_clients` with the endpoint taken from botocore's AWS_ENDPOINT_URL_<SERVICE>
variables, exactly as in `llmops serve`: no endpoint_url is passed anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from llmops.application.wiring import build_providers
from llmops.config.env import Settings
from llmops.domain.chat import ChatRequest, FinishReason, Message, Role
from llmops.domain.errors import ProviderError, ProviderFailureKind
from llmops.domain.ports import ChatProvider
from llmops.domain.routing import PayloadFormat, Provider, RouteTable, Target, TargetKind
from llmops.local.emulators import (
    BedrockRuntimeEmulator,
    FaultSpec,
    SageMakerRuntimeEmulator,
)
from llmops.local.wsgi_server import LoopbackServer

ROUTES_FILE = Path(__file__).parents[3] / "shared" / "llmops" / "config" / "routes.json"
SETTINGS = Settings(provider_connect_timeout_s=1, provider_read_timeout_s=5, provider_max_attempts=1)
HAIKU = Target(
    id="bedrock-claude-haiku",
    provider=Provider.BEDROCK,
    model_id="anthropic.claude-3-5-haiku-20241022-v1:0",
    price_per_1k_input_usd=0.0008,
    price_per_1k_output_usd=0.004,
    context_window=200_000,
)
LLAMA_CANDIDATE = Target(
    id="sm-llama3-8b-candidate",
    provider=Provider.SAGEMAKER,
    endpoint_name="llmops-llama3-8b",
    variant="candidate",
    price_per_1k_input_usd=0.0002,
    price_per_1k_output_usd=0.0002,
    context_window=8192,
)
MISTRAL_TGI = Target(
    id="sm-mistral-7b-tgi",
    provider=Provider.SAGEMAKER,
    endpoint_name="llmops-mistral-7b-tgi",
    payload_format=PayloadFormat.TGI,
    chat_template="mistral",
    price_per_1k_input_usd=0.00015,
    price_per_1k_output_usd=0.00015,
    context_window=32768,
)


def chat(*turns: tuple[Role, str], **kwargs: object) -> ChatRequest:
    messages = turns or (
        (Role.SYSTEM, "Be brief."),
        (Role.USER, "Capital of France?"),
        (Role.USER, "One word."),
    )
    return ChatRequest(model="alias", messages=tuple(Message(r, c) for r, c in messages), **kwargs)  # type: ignore[arg-type]


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


def bedrock_provider(settings: Settings = SETTINGS) -> ChatProvider:
    return build_providers(settings)[Provider.BEDROCK]


def sagemaker_provider(settings: Settings = SETTINGS) -> ChatProvider:
    return build_providers(settings)[Provider.SAGEMAKER]


def failure(
    provider: ChatProvider,
    target: Target,
    request: ChatRequest | None = None,
) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        provider.complete(target, request or chat())
    return info.value


# --- Bedrock -------------------------------------------------------------------------------------


def test_bedrock_completion_through_env_configured_endpoint(bedrock: BedrockRuntimeEmulator) -> None:
    completion = bedrock_provider().complete(HAIKU, chat(max_tokens=50))
    # Consecutive user turns were merged (the emulator enforces alternation like Bedrock does).
    assert completion.text.startswith(f"Emulated answer from {HAIKU.model_id}: Capital of France? One word.")
    assert completion.finish_reason is FinishReason.STOP
    assert completion.usage.output_tokens == len(completion.text.split())
    assert bedrock.faults.stats()[HAIKU.model_id]["ok"] == 1


def test_bedrock_max_tokens_gives_length(bedrock: BedrockRuntimeEmulator) -> None:
    completion = bedrock_provider().complete(HAIKU, chat(max_tokens=4))
    assert completion.finish_reason is FinishReason.LENGTH
    assert completion.usage.output_tokens == 4


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        (FaultSpec(throttle_rate=1.0), ProviderFailureKind.THROTTLED),
        (FaultSpec(error_rate=1.0), ProviderFailureKind.UNAVAILABLE),
        (FaultSpec(error_rate=1.0, error_status=503), ProviderFailureKind.UNAVAILABLE),
        (FaultSpec(error_rate=1.0, error_status=424), ProviderFailureKind.UNAVAILABLE),
    ],
)
def test_bedrock_faults_become_provider_error_kinds(
    bedrock: BedrockRuntimeEmulator, spec: FaultSpec, kind: ProviderFailureKind
) -> None:
    bedrock.faults.set(HAIKU.model_id, spec)
    error = failure(bedrock_provider(), HAIKU)
    assert error.kind is kind
    assert error.target_id == HAIKU.id
    assert "France" not in error.message


def test_bedrock_unknown_model_allows_fallback(bedrock: BedrockRuntimeEmulator) -> None:
    error = failure(bedrock_provider(), replace(HAIKU, model_id="retired.model-v1:0"))
    assert error.kind is ProviderFailureKind.UNAVAILABLE


def test_bedrock_rejected_request_is_invalid(bedrock: BedrockRuntimeEmulator) -> None:
    request = chat((Role.ASSISTANT, "I start"), (Role.USER, "then me"))
    error = failure(bedrock_provider(), HAIKU, request)
    assert error.kind is ProviderFailureKind.INVALID_REQUEST
    assert not error.retryable


def test_bedrock_read_timeout(bedrock: BedrockRuntimeEmulator) -> None:
    bedrock.faults.set(HAIKU.model_id, FaultSpec(timeout_rate=1.0, timeout_s=10))
    fast = SETTINGS.model_copy(update={"provider_read_timeout_s": 0.2})
    error = failure(bedrock_provider(fast), HAIKU)
    assert error.kind is ProviderFailureKind.TIMEOUT
    bedrock.release_waiters()


def test_bedrock_connection_refused_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "http://127.0.0.1:9")
    error = failure(bedrock_provider(), HAIKU)
    assert error.kind is ProviderFailureKind.UNAVAILABLE


# --- SageMaker -----------------------------------------------------------------------------------


def test_sagemaker_openai_variant(sagemaker: SageMakerRuntimeEmulator) -> None:
    completion = sagemaker_provider().complete(LLAMA_CANDIDATE, chat())
    assert completion.text.startswith("Emulated answer from llmops-llama3-8b/candidate: One word.")
    assert completion.raw_model == "llmops-llama3-8b/candidate"
    assert sagemaker.faults.stats() == {
        "llmops-llama3-8b/candidate": {"calls": 1, "ok": 1, "throttled": 0, "error": 0, "timeout": 0}
    }


def test_sagemaker_tgi_with_parameters_tgi_would_reject_untranslated(
    sagemaker: SageMakerRuntimeEmulator,
) -> None:
    provider = sagemaker_provider()
    completion = provider.complete(MISTRAL_TGI, chat(temperature=0.0, top_p=1.0, max_tokens=50))
    # Mistral has no system role: the template prefixes it to the user turn and the emulator answers
    # only the user's own paragraph.
    assert completion.text.startswith("Emulated answer from llmops-mistral-7b-tgi/AllTraffic: One word.")
    assert completion.finish_reason is FinishReason.STOP
    stopped = provider.complete(MISTRAL_TGI, chat(stop=("from",)))
    assert stopped.text == "Emulated answer "  # TGI's echoed stop sequence is stripped
    truncated = provider.complete(MISTRAL_TGI, chat(max_tokens=2))
    assert (truncated.text, truncated.finish_reason) == ("Emulated answer", FinishReason.LENGTH)


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        (FaultSpec(throttle_rate=1.0), ProviderFailureKind.THROTTLED),
        (FaultSpec(error_rate=1.0), ProviderFailureKind.UNAVAILABLE),
        (FaultSpec(error_rate=1.0, error_status=503), ProviderFailureKind.UNAVAILABLE),
        (FaultSpec(error_rate=1.0, error_status=429), ProviderFailureKind.THROTTLED),
        (FaultSpec(error_rate=1.0, error_status=400), ProviderFailureKind.INVALID_REQUEST),
    ],
)
def test_sagemaker_faults_become_provider_error_kinds(
    sagemaker: SageMakerRuntimeEmulator, spec: FaultSpec, kind: ProviderFailureKind
) -> None:
    sagemaker.faults.set("llmops-llama3-8b/candidate", spec)
    error = failure(sagemaker_provider(), LLAMA_CANDIDATE)
    assert error.kind is kind
    assert "France" not in error.message


@pytest.mark.parametrize(
    "target",
    [replace(LLAMA_CANDIDATE, variant="deleted-canary"), replace(LLAMA_CANDIDATE, endpoint_name="gone")],
)
def test_sagemaker_missing_endpoint_or_variant_allows_fallback(
    sagemaker: SageMakerRuntimeEmulator, target: Target
) -> None:
    assert failure(sagemaker_provider(), target).kind is ProviderFailureKind.UNAVAILABLE


def test_sagemaker_read_timeout(sagemaker: SageMakerRuntimeEmulator) -> None:
    sagemaker.faults.set("llmops-mistral-7b-tgi", FaultSpec(timeout_rate=1.0, timeout_s=10))
    fast = SETTINGS.model_copy(update={"provider_read_timeout_s": 0.2})
    error = failure(sagemaker_provider(fast), MISTRAL_TGI)
    assert error.kind is ProviderFailureKind.TIMEOUT
    sagemaker.release_waiters()


def test_latency_is_added_without_failing(sagemaker: SageMakerRuntimeEmulator) -> None:
    sagemaker.faults.set("llmops-llama3-8b", FaultSpec(latency_ms=30))
    completion = sagemaker_provider().complete(LLAMA_CANDIDATE, chat())
    assert completion.text
    assert sagemaker.faults.stats()["llmops-llama3-8b/candidate"]["ok"] == 1


def test_every_target_in_the_shipped_route_table_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    table = RouteTable.from_document(json.loads(ROUTES_FILE.read_text()))
    bedrock_app = BedrockRuntimeEmulator.from_route_table(table)
    sagemaker_app = SageMakerRuntimeEmulator.from_route_table(table)
    providers = build_providers(SETTINGS)
    with LoopbackServer(bedrock_app) as bedrock_server, LoopbackServer(sagemaker_app) as sagemaker_server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", bedrock_server.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", sagemaker_server.url)
        # Embedding targets answer /v1/embeddings (their own test: test_embedding_emulators.py).
        for target in (t for t in table.targets.values() if t.kind is TargetKind.CHAT):
            completion = providers[target.provider].complete(target, chat(max_tokens=64, temperature=0.0))
            assert completion.text.startswith("Emulated answer from"), target.id
            assert completion.usage.input_tokens > 0
