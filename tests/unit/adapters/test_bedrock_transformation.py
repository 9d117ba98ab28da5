from __future__ import annotations

import pytest

from llmops.adapters.bedrock.transformation import (
    ERROR_KINDS,
    ERROR_TABLE,
    from_converse_response,
    to_converse_request,
)
from llmops.adapters.provider_errors import ServiceError, failure_kind
from llmops.domain.chat import ChatRequest, FinishReason, Message, Role
from llmops.domain.errors import ProviderError, ProviderFailureKind
from llmops.domain.routing import Provider, Target

TARGET = Target(
    id="bedrock-haiku",
    provider=Provider.BEDROCK,
    model_id="anthropic.claude-3-5-haiku-20241022-v1:0",
    price_per_1k_input_usd=0.0008,
    price_per_1k_output_usd=0.004,
    context_window=200_000,
)


def chat(*messages: tuple[Role, str], **kwargs: object) -> ChatRequest:
    return ChatRequest(
        model="chat-default",
        messages=tuple(Message(r, c) for r, c in messages),
        **kwargs,  # type: ignore[arg-type]
    )


def test_minimal_request_has_model_and_messages_only() -> None:
    req = to_converse_request(TARGET, chat((Role.USER, "hi")))
    assert req == {
        "modelId": "anthropic.claude-3-5-haiku-20241022-v1:0",
        "messages": [{"role": "user", "content": [{"text": "hi"}]}],
    }


def test_system_messages_become_system_blocks_in_order() -> None:
    req = to_converse_request(TARGET, chat((Role.SYSTEM, "be brief"), (Role.USER, "hi"), (Role.SYSTEM, "be kind")))
    assert req["system"] == [{"text": "be brief"}, {"text": "be kind"}]
    assert req["messages"] == [{"role": "user", "content": [{"text": "hi"}]}]


def test_consecutive_same_role_messages_are_merged_into_one_turn() -> None:
    req = to_converse_request(
        TARGET,
        chat(
            (Role.USER, "context"),
            (Role.USER, "question"),
            (Role.ASSISTANT, "a1"),
            (Role.ASSISTANT, "a2"),
            (Role.USER, "follow-up"),
        ),
    )
    assert req["messages"] == [
        {"role": "user", "content": [{"text": "context"}, {"text": "question"}]},
        {"role": "assistant", "content": [{"text": "a1"}, {"text": "a2"}]},
        {"role": "user", "content": [{"text": "follow-up"}]},
    ]


def test_blank_messages_are_dropped_so_converse_does_not_reject_them() -> None:
    req = to_converse_request(
        TARGET, chat((Role.USER, "q"), (Role.ASSISTANT, "  "), (Role.USER, "again"), (Role.SYSTEM, ""))
    )
    assert req["messages"] == [{"role": "user", "content": [{"text": "q"}, {"text": "again"}]}]
    assert "system" not in req


def test_inference_config_only_carries_set_fields() -> None:
    req = to_converse_request(TARGET, chat((Role.USER, "q"), max_tokens=5, temperature=0.0))
    assert req["inferenceConfig"] == {"maxTokens": 5, "temperature": 0.0}
    req = to_converse_request(TARGET, chat((Role.USER, "q"), top_p=0.9, stop=("END", "\n\n")))
    assert req["inferenceConfig"] == {"topP": 0.9, "stopSequences": ["END", "\n\n"]}


def converse_response(stop_reason: str, *texts: str) -> dict[str, object]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": t} for t in texts]}},
        "stopReason": stop_reason,
        "usage": {"inputTokens": 11, "outputTokens": 7, "totalTokens": 18},
        "metrics": {"latencyMs": 42},
    }


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", FinishReason.STOP),
        ("stop_sequence", FinishReason.STOP),
        ("max_tokens", FinishReason.LENGTH),
        ("guardrail_intervened", FinishReason.CONTENT_FILTER),
        ("content_filtered", FinishReason.CONTENT_FILTER),
        ("something_new", FinishReason.STOP),
    ],
)
def test_stop_reasons_map_to_finish_reasons(stop_reason: str, expected: FinishReason) -> None:
    assert from_converse_response(converse_response(stop_reason, "x")).finish_reason is expected


def test_response_text_blocks_are_joined_and_usage_mapped() -> None:
    resp = converse_response("end_turn", "Hello", ", world")
    completion = from_converse_response(resp)
    assert completion.text == "Hello, world"
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (11, 7)
    assert completion.extra["provider_latency_ms"] == 42


def test_malformed_response_is_an_unavailable_provider_error() -> None:
    with pytest.raises(ProviderError) as info:
        from_converse_response({"stopReason": "end_turn"})
    assert info.value.kind is ProviderFailureKind.UNAVAILABLE


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ThrottlingException", 429, ProviderFailureKind.THROTTLED),
        ("ServiceQuotaExceededException", 400, ProviderFailureKind.THROTTLED),
        ("TooManyRequestsException", 429, ProviderFailureKind.THROTTLED),
        ("ModelNotReadyException", 429, ProviderFailureKind.UNAVAILABLE),
        ("ServiceUnavailableException", 503, ProviderFailureKind.UNAVAILABLE),
        ("InternalServerException", 500, ProviderFailureKind.UNAVAILABLE),
        ("ModelErrorException", 424, ProviderFailureKind.UNAVAILABLE),
        ("ModelTimeoutException", 408, ProviderFailureKind.TIMEOUT),
        ("AccessDeniedException", 403, ProviderFailureKind.UNAVAILABLE),
        ("ResourceNotFoundException", 404, ProviderFailureKind.UNAVAILABLE),
        ("ValidationException", 400, ProviderFailureKind.INVALID_REQUEST),
        ("SomethingNew", 502, ProviderFailureKind.UNAVAILABLE),
        ("SomethingNew", 429, ProviderFailureKind.THROTTLED),
        ("SomethingNew", 408, ProviderFailureKind.TIMEOUT),
        ("SomethingNew", 409, ProviderFailureKind.INVALID_REQUEST),
        ("SomethingNew", None, ProviderFailureKind.UNAVAILABLE),
    ],
)
def test_error_codes_map_to_failure_kinds(code: str, status: int | None, expected: ProviderFailureKind) -> None:
    assert failure_kind(ServiceError(code, status), ERROR_TABLE) is expected


def test_every_listed_code_is_classified_as_listed() -> None:
    for code, kind in ERROR_KINDS.items():
        assert failure_kind(ServiceError(code, 400), ERROR_TABLE) is kind


@pytest.mark.parametrize(
    "message",
    [
        "The provided model identifier is invalid.",
        "Invocation of model ID x with on-demand throughput isn't supported. Retry your request with "
        "the ID or ARN of an inference profile that contains this model.",
    ],
)
def test_validation_errors_about_the_target_allow_fallback(message: str) -> None:
    error = ServiceError("ValidationException", 400, message=message)
    assert failure_kind(error, ERROR_TABLE) is ProviderFailureKind.UNAVAILABLE
