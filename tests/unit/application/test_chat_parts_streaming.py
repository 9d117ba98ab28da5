"""Streamed tool calls and reasoning: chunks exactly as the openai SDK assembles them (its own
`ChatCompletionStreamState` rebuilds the same message the non-streamed path returns), reasoning
through the streaming output guard, tool calls released per call once guarded whole."""

from __future__ import annotations

import json
from typing import Any, cast

import httpx2
import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessageFunctionToolCall

from llmops.application.rendering import DONE, ChunkRenderer, chat_completion, sse_stream
from llmops.config.env import Settings
from llmops.domain.chat import (
    ChatRequest,
    Completion,
    FinishReason,
    Message,
    Reasoning,
    ResponseFormat,
    Role,
    ToolCall,
    ToolSpec,
    Usage,
)
from llmops.domain.streaming import StreamEnd, TextDelta, ToolCallDelta
from tests.fakes import FakeStreamingProvider, gateway_runtime
from tests.unit.application.chat_parts_harness import Harness, sse_events

WEATHER = ToolSpec("get_weather", "Current weather for a city.")
CALLS = (
    ToolCall("call_1", "get_weather", '{"city": "Paris", "unit": "celsius"}'),
    ToolCall("call_2", "get_weather", '{"city": "Rome", "unit": "celsius"}'),
)
THOUGHT = Reasoning("The user asks for two cities, so I will call the tool twice.", "c2lnbmF0dXJl")


def _request(text: str = "Weather in Paris and Rome?", **fields: Any) -> ChatRequest:
    return ChatRequest(model="chat-default", messages=(Message(Role.USER, text),), tools=(WEATHER,), **fields)


def _assembled(body: str) -> ChatCompletion:
    """What the openai SDK's stream helper makes of the SSE body: the message it accumulates."""
    state = ChatCompletionStreamState()
    for event in sse_events(body):
        if event == "[DONE]":
            break
        state.handle_chunk(ChatCompletionChunk.model_validate(event))
    return state.get_final_completion()


def _function_calls(completion: ChatCompletion) -> list[ChatCompletionMessageFunctionToolCall]:
    calls = completion.choices[0].message.tool_calls or []
    assert all(isinstance(c, ChatCompletionMessageFunctionToolCall) for c in calls)
    return cast(list[ChatCompletionMessageFunctionToolCall], calls)


def _body(harness: Harness, request: ChatRequest, **wire: Any) -> str:
    response = harness.send(request, **wire)
    assert response.stream is not None
    return "".join(response.stream)


@pytest.fixture
def provider() -> FakeStreamingProvider:
    return FakeStreamingProvider("Let me check both.", Usage(50, 30), tool_calls=CALLS, reasoning=(THOUGHT,))


@pytest.fixture
def harness(aws_settings: Settings, provider: FakeStreamingProvider) -> Harness:
    return Harness(gateway_runtime(aws_settings, provider), provider)


def test_the_sdk_assembles_the_streamed_answer_into_the_non_streamed_one(
    harness: Harness, provider: FakeStreamingProvider
) -> None:
    plain = harness.json(_request())["choices"][0]["message"]
    body = _body(harness, _request(stream=True), stream_options={"include_usage": True})
    message = _assembled(body).choices[0].message
    assert message.content == plain["content"] == "Let me check both."
    assert [c.model_dump(include={"id", "type", "function"}) for c in message.tool_calls or []] == [
        {"id": c["id"], "type": "function", "function": {**c["function"], "parsed_arguments": None}}
        for c in plain["tool_calls"]
    ]
    extra = cast(dict[str, Any], message.model_extra)
    assert extra["reasoning_content"] == plain["reasoning_content"] == THOUGHT.text
    assert [{k: v for k, v in b.items() if k != "index"} for b in extra["thinking_blocks"]] == plain["thinking_blocks"]
    assert _assembled(body).choices[0].finish_reason == "tool_calls"

    chunks = [e for e in sse_events(body) if isinstance(e, dict) and e.get("choices")]
    tool_chunks = [
        c["choices"][0]["delta"]["tool_calls"][0] for c in chunks if "tool_calls" in c["choices"][0]["delta"]
    ]
    assert tool_chunks[0] == {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }, "the first chunk of a call carries its id, type and name, as OpenAI's"
    assert all(set(c) == {"index", "function"} and set(c["function"]) == {"arguments"} for c in tool_chunks[1:2])
    assert len([c for c in chunks if "reasoning_content" in c["choices"][0]["delta"]]) > 1, "reasoning streams"


def test_the_official_client_streams_tool_calls(harness: Harness) -> None:
    """openai-python's `Stream` over the gateway's bytes, as `chat.completions.create(stream=True)` reads them."""
    body = _body(harness, _request(stream=True))
    response = httpx2.Response(200, content=body.encode(), request=httpx2.Request("POST", "http://gw/v1/chat"))
    client = openai.OpenAI(api_key="k", base_url="http://gw/v1")
    stream = openai.Stream(cast_to=ChatCompletionChunk, response=response, client=client)
    arguments: dict[int, str] = {}
    for chunk in stream:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            arguments[call.index] = arguments.get(call.index, "") + (
                call.function.arguments or "" if call.function else ""
            )
    assert {i: json.loads(a) for i, a in arguments.items()} == {i: json.loads(c.arguments) for i, c in enumerate(CALLS)}


def test_usage_with_cached_tokens_ends_the_stream(harness: Harness, provider: FakeStreamingProvider) -> None:
    provider.usage = Usage(1200, 30, cache_read_tokens=1024, cache_write_tokens=100)
    events = sse_events(_body(harness, _request(stream=True), stream_options={"include_usage": True}))
    assert events[-1] == "[DONE]"
    assert events[-2]["usage"]["prompt_tokens_details"] == {"cached_tokens": 1024, "cache_write_tokens": 100}


def test_pii_in_streamed_tool_arguments_is_redacted_per_call(harness: Harness, provider: FakeStreamingProvider) -> None:
    provider.tool_calls = (ToolCall("call_1", "send_mail", '{"to": "jane.doe@example.com", "body": "hi"}'),)
    provider.argument_piece_chars = 3  # the address arrives split over many deltas
    body = _body(harness, _request(stream=True))
    (call,) = _function_calls(_assembled(body))
    assert json.loads(call.function.arguments) == {"to": "[EMAIL_1]", "body": "hi"}
    assert "jane.doe" not in body
    record = harness.records[-1]
    assert record.guard[-1].findings == {"EMAIL": 1} and record.tool_calls == 1


def test_a_blocked_streamed_tool_call_ends_the_stream_with_content_filter(
    harness: Harness, provider: FakeStreamingProvider
) -> None:
    harness.use_policy({"output_actions": {"PHONE_NUMBER": "block"}})
    provider.tool_calls = (CALLS[0], ToolCall("call_2", "dial", '{"number": 4155550199}'))
    events = sse_events(_body(harness, _request(stream=True)))
    assert events[-1] == "[DONE]"
    finish = [e["choices"][0]["finish_reason"] for e in events if isinstance(e, dict) and e.get("choices")]
    assert finish[-1] == "content_filter"
    sent = [
        e["choices"][0]["delta"]["tool_calls"][0]
        for e in events[:-1]
        if e["choices"] and "tool_calls" in e["choices"][0]["delta"]
    ]
    assert {c.get("id") for c in sent} == {"call_1", None}, "the first call went out whole, the broken one not at all"
    assert "4155550199" not in json.dumps(events)
    assert harness.records[-1].guard[-1].action == "block"


def test_pii_in_streamed_reasoning_is_redacted_and_its_signature_withheld(
    harness: Harness, provider: FakeStreamingProvider
) -> None:
    provider.reasoning = (Reasoning("The card 4111 1111 1111 1111 is on file; I will not repeat it here.", "c2ln"),)
    body = _body(harness, _request(stream=True))
    extra = cast(dict[str, Any], _assembled(body).choices[0].message.model_extra)
    assert "4111" not in body
    assert "[CREDIT_CARD_1]" in extra["reasoning_content"]
    assert "signature" not in extra["thinking_blocks"][0]
    assert harness.records[-1].guard[-1].findings.get("CREDIT_CARD") == 1


def test_a_blocked_reasoning_block_ends_the_stream_before_anything_else(
    harness: Harness, provider: FakeStreamingProvider
) -> None:
    harness.use_policy({"output_actions": {"EMAIL": "block"}})
    provider.reasoning = (Reasoning("I could mail jane.doe@example.com about it, or just answer.", "c2ln"),)
    events = sse_events(_body(harness, _request(stream=True)))
    deltas = [e["choices"][0]["delta"] for e in events if isinstance(e, dict) and e.get("choices")]
    assert not any("tool_calls" in d or d.get("content") for d in deltas), "nothing after the block is released"
    assert [e["choices"][0]["finish_reason"] for e in events if isinstance(e, dict) and e.get("choices")][-1] == (
        "content_filter"
    )
    assert provider.closed == 1, "the provider read stops at the block"


def test_a_streamed_answer_that_is_not_the_structured_output_asked_for_ends_with_an_error(
    harness: Harness, provider: FakeStreamingProvider
) -> None:
    provider.text, provider.tool_calls, provider.reasoning = "Paris, of course.", (), ()
    request = _request(stream=True, response_format=ResponseFormat("json_object"))
    events = sse_events(_body(harness, request))
    assert events[-1]["error"]["code"] == "invalid_structured_output" and "[DONE]" not in events
    record = harness.records[-1]
    assert (record.status, record.error_code) == (502, "invalid_structured_output")
    provider.text = '{"city": "Paris"}'
    assert sse_events(_body(harness, request))[-1] == "[DONE]"


def test_a_streamed_answer_with_tool_calls_is_not_cached(harness: Harness, provider: FakeStreamingProvider) -> None:
    request = _request(stream=True, temperature=0)
    _body(harness, request)
    assert harness.send(request).headers["x-llmops-cache"] == "miss"


def test_a_stream_cut_inside_a_tool_call_counts_its_tokens(harness: Harness, provider: FakeStreamingProvider) -> None:
    response = harness.send(_request(stream=True))
    assert response.stream is not None
    pieces = iter(response.stream)
    taken = [next(pieces) for _ in range(3)]
    cast(Any, response.stream).close()
    assert not any("tool_calls" in p for p in taken)
    record = harness.records[-1]
    assert record.status == 499 and record.output_tokens > 0


def test_a_whole_answer_sent_at_once_assembles_like_a_stream() -> None:
    """`sse_stream` (a cache hit, or any whole completion) sends every part as the live stream does."""
    completion = Completion(
        "Checking.",
        FinishReason.TOOL_CALLS,
        Usage(10, 5, cache_read_tokens=4),
        tool_calls=CALLS,
        reasoning=(THOUGHT, Reasoning(redacted="ZW5j")),
    )
    renderer = ChunkRenderer("chatcmpl-1", 1, "chat-default")
    streamed = _assembled(sse_stream(renderer, completion, include_usage=True))
    whole = chat_completion("chatcmpl-1", 1, "chat-default", completion)
    assert streamed.choices[0].message.content == whole["choices"][0]["message"]["content"]
    assert [c.function.arguments for c in _function_calls(streamed)] == [c.arguments for c in CALLS]
    extra = cast(dict[str, Any], streamed.choices[0].message.model_extra)
    assert [{k: v for k, v in b.items() if k != "index"} for b in extra["thinking_blocks"]] == whole["choices"][0][
        "message"
    ]["thinking_blocks"]
    assert streamed.usage is not None and streamed.usage.prompt_tokens_details is not None
    assert streamed.usage.prompt_tokens_details.cached_tokens == 4
    assert sse_stream(renderer, completion, include_usage=False).endswith(DONE)


def test_a_tool_call_continued_after_the_next_started_fails_the_stream(
    harness: Harness, provider: FakeStreamingProvider
) -> None:
    """Arguments are guarded whole, per call: a call reopened after its release could not be."""

    def stream(*_args: Any, **_kwargs: Any) -> Any:
        yield TextDelta("ok")
        yield ToolCallDelta(0, '{"a":', "call_1", "f")
        yield ToolCallDelta(1, "{}", "call_2", "g")
        yield ToolCallDelta(0, "1}")
        yield StreamEnd(FinishReason.TOOL_CALLS, Usage(1, 1))

    provider.stream = stream  # type: ignore[method-assign]
    events = sse_events(_body(harness, _request(stream=True)))
    assert events[-1]["error"]["code"] == "upstream_error"
    assert harness.records[-1].status == 502


def test_a_tool_call_blocked_at_the_end_is_settled_to_the_reported_usage(
    harness: Harness, provider: FakeStreamingProvider
) -> None:
    harness.use_policy({"output_actions": {"PHONE_NUMBER": "block"}})
    provider.tool_calls = (ToolCall("call_2", "dial", '{"number": 4155550199}'),)
    events = sse_events(_body(harness, _request(stream=True), stream_options={"include_usage": True}))
    assert events[-2]["usage"]["completion_tokens"] == 30
    assert harness.records[-1].output_tokens == 30
