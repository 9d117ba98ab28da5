"""The pure mapping of provider streams to `StreamEvent`s: no network, events as botocore parses them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmops.adapters.bedrock.transformation import ERROR_TABLE as BEDROCK_ERRORS
from llmops.adapters.bedrock.transformation import from_converse_stream
from llmops.adapters.provider_errors import failure_kind, service_error
from llmops.adapters.sagemaker.transformation import ERROR_TABLE as SAGEMAKER_ERRORS
from llmops.adapters.sagemaker.transformation import (
    from_response_stream,
    sse_data,
    to_invoke_endpoint_request,
)
from llmops.domain.chat import ChatRequest, FinishReason, Message, Role, Usage
from llmops.domain.errors import ProviderError, ProviderFailureKind
from llmops.domain.routing import PayloadFormat, Provider, Target
from llmops.domain.streaming import StreamEnd, StreamEvent, TextDelta

PRICES: dict[str, Any] = {"price_per_1k_input_usd": 0.0, "price_per_1k_output_usd": 0.0, "context_window": 8192}
OPENAI_TARGET = Target(id="sm-llama", provider=Provider.SAGEMAKER, endpoint_name="llama", variant="candidate", **PRICES)
TGI_TARGET = Target(
    id="sm-mistral",
    provider=Provider.SAGEMAKER,
    endpoint_name="mistral",
    payload_format=PayloadFormat.TGI,
    chat_template="mistral",
    **PRICES,
)
REQUEST = ChatRequest(model="alias", messages=(Message(Role.USER, "hi"),))


def _text(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


# --- Bedrock ConverseStream ----------------------------------------------------------------------


def test_converse_stream_maps_deltas_stop_reason_and_usage() -> None:
    events = list(
        from_converse_stream(
            [
                {"messageStart": {"role": "assistant"}},
                {"contentBlockDelta": {"delta": {"text": "Hel"}, "contentBlockIndex": 0}},
                {"contentBlockDelta": {"delta": {"toolUse": {"input": "{}"}}, "contentBlockIndex": 1}},
                {"contentBlockDelta": {"delta": {"text": "lo"}, "contentBlockIndex": 0}},
                {"contentBlockStop": {"contentBlockIndex": 0}},
                {"messageStop": {"stopReason": "max_tokens"}},
                {"metadata": {"usage": {"inputTokens": 5, "outputTokens": 2, "totalTokens": 7}, "metrics": {}}},
            ]
        )
    )
    assert events == [TextDelta("Hel"), TextDelta("lo"), StreamEnd(FinishReason.LENGTH, Usage(5, 2))]


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", FinishReason.STOP),
        ("guardrail_intervened", FinishReason.CONTENT_FILTER),
        ("new", FinishReason.STOP),
    ],
)
def test_converse_stream_stop_reasons_map_as_without_streaming(stop_reason: str, finish: FinishReason) -> None:
    (end,) = list(from_converse_stream([{"messageStop": {"stopReason": stop_reason}}]))
    assert end == StreamEnd(finish, None)


def test_a_converse_stream_cut_before_message_stop_is_a_provider_fault() -> None:
    events = from_converse_stream([{"contentBlockDelta": {"delta": {"text": "Hi"}}}], target_id="t")
    assert next(events) == TextDelta("Hi")
    with pytest.raises(ProviderError) as info:
        next(events)
    assert (info.value.kind, info.value.target_id) == (ProviderFailureKind.UNAVAILABLE, "t")


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("throttlingException", ProviderFailureKind.THROTTLED),
        ("modelStreamErrorException", ProviderFailureKind.UNAVAILABLE),
        ("serviceUnavailableException", ProviderFailureKind.UNAVAILABLE),
        ("internalServerException", ProviderFailureKind.UNAVAILABLE),
        ("validationException", ProviderFailureKind.INVALID_REQUEST),
    ],
)
def test_converse_streams_modeled_exceptions_classify(code: str, kind: ProviderFailureKind) -> None:
    # botocore's EventStreamError.response for a modeled exception event: a code, no HTTP status.
    assert failure_kind(service_error({"Error": {"Code": code, "Message": "m"}}), BEDROCK_ERRORS) is kind


# --- SageMaker: SSE across PayloadParts ----------------------------------------------------------


def _chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> bytes:
    delta = {} if content is None else {"content": content}
    doc = {"object": "chat.completion.chunk", "model": "llama", **extra}
    doc.setdefault("choices", [{"index": 0, "delta": delta, "finish_reason": finish}])
    return f"data: {json.dumps(doc)}\n\n".encode()


OPENAI_STREAM = b"".join(
    [
        _chunk(""),
        _chunk("Bonjour"),
        _chunk(" à"),
        _chunk(" vous"),
        _chunk(None, "length"),
        _chunk(choices=[], usage={"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}),
        b"data: [DONE]\n\n",
    ]
)


@pytest.mark.parametrize("size", [1, 2, 5, 64, len(OPENAI_STREAM)])
def test_openai_sse_maps_the_same_however_payload_parts_cut_lines_and_characters(size: int) -> None:
    parts = [OPENAI_STREAM[i : i + size] for i in range(0, len(OPENAI_STREAM), size)]
    events = list(from_response_stream(OPENAI_TARGET, REQUEST, parts))
    assert _text(events) == "Bonjour à vous"
    assert events[-1] == StreamEnd(FinishReason.LENGTH, Usage(4, 3), raw_model="llama")


def test_sse_data_accepts_crlf_no_space_multiline_data_and_jsonlines() -> None:
    raw = [b'data:{"a":1}\r\n\r\n: a comment\n\ndata: x\ndata: y\n\n', b'{"token": 1}\n', b"data: tail"]
    assert list(sse_data(raw)) == ['{"a":1}', "x\ny", '{"token": 1}', "tail"]


def test_openai_stream_without_usage_leaves_usage_to_be_counted() -> None:
    events = list(
        from_response_stream(OPENAI_TARGET, REQUEST, [_chunk("Hi"), _chunk(None, "stop"), b"data: [DONE]\n\n"])
    )
    assert events[-1] == StreamEnd(FinishReason.STOP, None, raw_model="llama")


def test_an_openai_stream_cut_off_before_its_finish_is_a_provider_fault() -> None:
    with pytest.raises(ProviderError) as info:
        list(from_response_stream(OPENAI_TARGET, REQUEST, [_chunk("Hi")]))
    assert (info.value.kind, info.value.target_id) == (ProviderFailureKind.UNAVAILABLE, "sm-llama")


def test_a_chunk_that_is_not_json_is_a_provider_fault() -> None:
    with pytest.raises(ProviderError):
        list(from_response_stream(OPENAI_TARGET, REQUEST, [b"data: {nope\n\n"]))


def _tgi(text: str, *, special: bool = False, final: str | None = None, details: Any = None) -> bytes:
    doc = {"token": {"id": 1, "text": text, "special": special}, "generated_text": final, "details": details}
    return f"data:{json.dumps(doc)}\n\n".encode()


def test_tgi_tokens_map_to_deltas_and_the_last_event_to_the_end() -> None:
    parts = [
        _tgi("Hello"),
        _tgi(" world"),
        _tgi("</s>", special=True, final="Hello world", details={"finish_reason": "eos_token", "generated_tokens": 3}),
    ]
    events = list(from_response_stream(TGI_TARGET, REQUEST, parts))
    assert _text(events) == "Hello world"
    end = events[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason is FinishReason.STOP
    assert end.usage is not None and end.usage.output_tokens == 3 and end.usage.input_tokens > 0
    assert len([e for e in events if isinstance(e, TextDelta)]) == 2  # streamed, not buffered to the end


def test_tgi_length_without_details_has_no_usage() -> None:
    events = list(from_response_stream(TGI_TARGET, REQUEST, [_tgi("Hi"), _tgi(" there", final="Hi there")]))
    assert _text(events) == "Hi there"
    assert events[-1] == StreamEnd(FinishReason.STOP, None)


def test_tgi_drops_the_matched_stop_sequence_as_without_streaming() -> None:
    request = ChatRequest(model="alias", messages=(Message(Role.USER, "hi"),), stop=("\nUser:",))
    details = {"finish_reason": "stop_sequence", "generated_tokens": 5}
    parts = [_tgi("Sure"), _tgi(", done."), _tgi("\nUser"), _tgi(":", final="Sure, done.\nUser:", details=details)]
    events = list(from_response_stream(TGI_TARGET, request, parts))
    assert _text(events) == "Sure, done."
    assert events[-1].finish_reason is FinishReason.STOP  # type: ignore[union-attr]
    # Text that can no longer be part of the stop sequence is released as soon as the next token comes.
    assert events[0] == TextDelta("Sure,")


def test_a_tgi_stream_without_its_last_event_is_a_provider_fault() -> None:
    with pytest.raises(ProviderError):
        list(from_response_stream(TGI_TARGET, REQUEST, [_tgi("Hi")]))


def test_the_stream_request_is_the_buffered_one_with_stream_true() -> None:
    buffered = to_invoke_endpoint_request(OPENAI_TARGET, REQUEST)
    streamed = to_invoke_endpoint_request(OPENAI_TARGET, REQUEST, stream=True)
    body = json.loads(streamed.pop("Body"))
    assert body == {**json.loads(buffered.pop("Body")), "stream": True, "stream_options": {"include_usage": True}}
    assert streamed == {k: v for k, v in buffered.items() if k != "Accept"}
    assert streamed["TargetVariant"] == "candidate"
    tgi = json.loads(to_invoke_endpoint_request(TGI_TARGET, REQUEST, stream=True)["Body"])
    assert tgi["stream"] is True and "stream_options" not in tgi


@pytest.mark.parametrize("code", ["ModelStreamError", "InternalStreamFailure"])
def test_sagemaker_stream_exceptions_allow_fallback(code: str) -> None:
    kind = failure_kind(service_error({"Error": {"Code": code, "Message": "m"}}), SAGEMAKER_ERRORS)
    assert kind is ProviderFailureKind.UNAVAILABLE
