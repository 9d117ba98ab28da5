from __future__ import annotations

import json
from dataclasses import replace

import pytest

from llmops.adapters.provider_errors import ServiceError, failure_kind
from llmops.adapters.sagemaker.transformation import (
    ERROR_TABLE,
    estimate_tokens,
    from_invoke_endpoint_response,
    openai_body,
    tgi_body,
    to_invoke_endpoint_request,
)
from llmops.domain.chat import ChatRequest, FinishReason, Message, Role
from llmops.domain.errors import ProviderError, ProviderFailureKind
from llmops.domain.routing import PayloadFormat, Provider, Target

OPENAI_TARGET = Target(
    id="sm-llama",
    provider=Provider.SAGEMAKER,
    endpoint_name="llmops-llama3-8b",
    variant="primary",
    price_per_1k_input_usd=0.0002,
    price_per_1k_output_usd=0.0002,
    context_window=8192,
)
TGI_TARGET = replace(
    OPENAI_TARGET,
    id="sm-mistral",
    endpoint_name="llmops-mistral",
    variant="",
    payload_format=PayloadFormat.TGI,
    chat_template="mistral",
)


def chat(text: str = "Capital of France?", **kwargs: object) -> ChatRequest:
    return ChatRequest(
        model="m",
        messages=(Message(Role.SYSTEM, "Be brief."), Message(Role.USER, text)),
        **kwargs,  # type: ignore[arg-type]
    )


def test_invoke_request_for_openai_target_with_variant() -> None:
    kwargs = to_invoke_endpoint_request(OPENAI_TARGET, chat(max_tokens=10, stop=("x",)))
    assert kwargs["EndpointName"] == "llmops-llama3-8b"
    assert kwargs["TargetVariant"] == "primary"
    assert kwargs["ContentType"] == kwargs["Accept"] == "application/json"
    assert json.loads(kwargs["Body"]) == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital of France?"},
        ],
        "max_tokens": 10,
        "stop": ["x"],
    }


def test_invoke_request_without_variant_lets_sagemaker_choose() -> None:
    assert "TargetVariant" not in to_invoke_endpoint_request(TGI_TARGET, chat())


def test_openai_body_keeps_sampling_values_as_given() -> None:
    body = openai_body(chat(temperature=0.0, top_p=1.0))
    assert (body["temperature"], body["top_p"]) == (0.0, 1.0)
    assert "max_tokens" not in body


def test_tgi_body_renders_the_template_and_asks_for_details() -> None:
    body = tgi_body(TGI_TARGET, chat(max_tokens=64, stop=("</s>",)))
    assert body["inputs"] == "[INST] Be brief.\n\nCapital of France? [/INST]"
    assert body["parameters"] == {
        "details": True,
        "return_full_text": False,
        "max_new_tokens": 64,
        "stop": ["</s>"],
    }


def test_tgi_zero_temperature_means_greedy_without_temperature() -> None:
    params = tgi_body(TGI_TARGET, chat(temperature=0.0))["parameters"]
    assert params["do_sample"] is False
    assert "temperature" not in params


def test_tgi_positive_temperature_samples() -> None:
    params = tgi_body(TGI_TARGET, chat(temperature=0.7))["parameters"]
    assert (params["do_sample"], params["temperature"]) == (True, 0.7)


@pytest.mark.parametrize(("top_p", "sent"), [(1.0, False), (0.0, False), (0.9, True)])
def test_tgi_top_p_is_sent_only_inside_the_open_interval(top_p: float, sent: bool) -> None:
    params = tgi_body(TGI_TARGET, chat(top_p=top_p))["parameters"]
    assert ("top_p" in params) is sent


def test_tgi_unknown_template_is_a_target_configuration_error() -> None:
    with pytest.raises(ProviderError) as info:
        tgi_body(replace(TGI_TARGET, chat_template="nope"), chat())
    assert info.value.kind is ProviderFailureKind.UNAVAILABLE
    assert info.value.target_id == "sm-mistral"


def openai_doc(finish: str, content: str | None = "Paris.") -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "llama3",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22},
        }
    ).encode()


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("stop", FinishReason.STOP),
        ("length", FinishReason.LENGTH),
        ("content_filter", FinishReason.CONTENT_FILTER),
        (None, FinishReason.STOP),
    ],
)
def test_openai_response_mapping(finish: str | None, expected: FinishReason) -> None:
    completion = from_invoke_endpoint_response(OPENAI_TARGET, chat(), openai_doc(finish))  # type: ignore[arg-type]
    assert completion.text == "Paris."
    assert completion.finish_reason is expected
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (20, 2)
    assert completion.raw_model == "llama3"


def test_openai_response_without_usage_or_content_is_estimated() -> None:
    doc = json.dumps({"choices": [{"message": {"content": None}, "finish_reason": "stop"}]}).encode()
    completion = from_invoke_endpoint_response(OPENAI_TARGET, chat(), doc)
    assert completion.text == ""
    assert completion.usage.input_tokens == estimate_tokens("Be brief.Capital of France?")


def tgi_doc(text: str, finish: str, **details: object) -> bytes:
    return json.dumps(
        [{"generated_text": text, "details": {"finish_reason": finish, "generated_tokens": 3, **details}}]
    ).encode()


@pytest.mark.parametrize(
    ("finish", "expected"),
    [("eos_token", FinishReason.STOP), ("stop_sequence", FinishReason.STOP), ("length", FinishReason.LENGTH)],
)
def test_tgi_response_finish_reasons(finish: str, expected: FinishReason) -> None:
    completion = from_invoke_endpoint_response(TGI_TARGET, chat(), tgi_doc("Paris", finish))
    assert completion.finish_reason is expected
    assert completion.usage.output_tokens == 3


def test_tgi_input_tokens_come_from_prefill_when_present_else_estimate() -> None:
    prompt = "[INST] Be brief.\n\nCapital of France? [/INST]"
    estimated = from_invoke_endpoint_response(TGI_TARGET, chat(), tgi_doc("Paris", "eos_token", prefill=[]))
    assert estimated.usage.input_tokens == estimate_tokens(prompt) == -(-len(prompt) // 3)
    counted = from_invoke_endpoint_response(
        TGI_TARGET, chat(), tgi_doc("Paris", "eos_token", prefill=[{"id": i} for i in range(9)])
    )
    assert counted.usage.input_tokens == 9


def test_tgi_strips_the_matched_stop_sequence() -> None:
    completion = from_invoke_endpoint_response(TGI_TARGET, chat(stop=("END",)), tgi_doc("Paris END", "stop_sequence"))
    assert completion.text == "Paris "


def test_tgi_bare_object_response_and_missing_details() -> None:
    doc = json.dumps({"generated_text": "one two three"}).encode()
    completion = from_invoke_endpoint_response(TGI_TARGET, chat(), doc)
    assert completion.text == "one two three"
    assert completion.usage.output_tokens == estimate_tokens("one two three")


@pytest.mark.parametrize("body", [b"not json", b"{}", b"[]", b'{"choices": []}'])
def test_unreadable_bodies_are_unavailable(body: bytes) -> None:
    for target in (OPENAI_TARGET, TGI_TARGET):
        with pytest.raises(ProviderError) as info:
            from_invoke_endpoint_response(target, chat(), body)
        assert info.value.kind is ProviderFailureKind.UNAVAILABLE


@pytest.mark.parametrize(
    ("code", "status", "original", "message", "expected"),
    [
        ("ModelError", 424, 429, "", ProviderFailureKind.THROTTLED),
        ("ModelError", 424, 400, "", ProviderFailureKind.INVALID_REQUEST),
        ("ModelError", 424, 422, "", ProviderFailureKind.INVALID_REQUEST),
        ("ModelError", 424, 408, "", ProviderFailureKind.TIMEOUT),
        ("ModelError", 424, 500, "", ProviderFailureKind.UNAVAILABLE),
        ("ModelError", 424, None, "", ProviderFailureKind.UNAVAILABLE),
        ("ThrottlingException", 429, None, "Rate exceeded", ProviderFailureKind.THROTTLED),
        ("ServiceUnavailable", 503, None, "", ProviderFailureKind.UNAVAILABLE),
        ("InternalFailure", 500, None, "", ProviderFailureKind.UNAVAILABLE),
        ("InternalDependencyException", 530, None, "", ProviderFailureKind.UNAVAILABLE),
        ("ModelNotReadyException", 429, None, "", ProviderFailureKind.UNAVAILABLE),
        ("ValidationError", 400, None, "Invalid payload", ProviderFailureKind.INVALID_REQUEST),
        (
            "ValidationError",
            400,
            None,
            "Endpoint llmops-x of account 123456789012 not found.",
            ProviderFailureKind.UNAVAILABLE,
        ),
        (
            "ValidationError",
            400,
            None,
            "Variant candidate not found for endpoint e.",
            ProviderFailureKind.UNAVAILABLE,
        ),
        ("Unknown", 502, None, "", ProviderFailureKind.UNAVAILABLE),
        ("Unknown", 429, None, "", ProviderFailureKind.THROTTLED),
        ("Unknown", 403, None, "", ProviderFailureKind.INVALID_REQUEST),
    ],
)
def test_error_mapping(
    code: str, status: int, original: int | None, message: str, expected: ProviderFailureKind
) -> None:
    error = ServiceError(code, status, message=message, original_status=original)
    assert failure_kind(error, ERROR_TABLE) is expected
