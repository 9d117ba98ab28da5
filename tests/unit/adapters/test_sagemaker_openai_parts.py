"""SageMaker OpenAI-format (LMI / vLLM) payloads for issue 14: images, tool calls and results, tools,
tool_choice, response_format and reasoning, both ways and streamed; TGI refuses what it cannot carry."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest

from llmops.adapters.sagemaker.transformation import (
    from_invoke_endpoint_response,
    from_response_stream,
    openai_body,
    to_invoke_endpoint_request,
)
from llmops.domain.chat import (
    Capability,
    ChatRequest,
    FinishReason,
    ImagePart,
    Message,
    Reasoning,
    ResponseFormat,
    Role,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolResult,
    ToolSpec,
)
from llmops.domain.errors import ProviderError, ProviderFailureKind
from llmops.domain.routing import PayloadFormat, Provider, Target
from llmops.domain.streaming import ReasoningDelta, StreamEnd, TextDelta, ToolCallDelta

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
WEATHER = ToolSpec(
    "get_weather",
    "Current weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
TARGET = Target(
    id="sm-qwen",
    provider=Provider.SAGEMAKER,
    endpoint_name="llmops-qwen25-vl-7b",
    price_per_1k_input_usd=0.0002,
    price_per_1k_output_usd=0.0002,
    context_window=32768,
    capabilities=frozenset({Capability.TOOLS, Capability.IMAGES, Capability.STRUCTURED_OUTPUT}),
)
TGI = replace(
    TARGET, id="sm-mistral", payload_format=PayloadFormat.TGI, chat_template="mistral", capabilities=frozenset()
)


def request(*messages: Message, **kwargs: Any) -> ChatRequest:
    return ChatRequest(model="qwen2.5-vl-7b", messages=messages, **kwargs)


def agent_history() -> tuple[Message, ...]:
    return (
        Message(Role.SYSTEM, "Use tools."),
        Message(Role.USER, [TextPart("What is in this picture, and the weather?"), ImagePart("image/png", PNG)]),
        Message(
            Role.ASSISTANT,
            [
                Reasoning("The user wants weather.", signature="sig"),
                TextPart("Checking."),
                ToolCall("call_1", "get_weather", '{"city": "Paris"}'),
            ],
        ),
        Message(Role.TOOL, [ToolResult("call_1", "18 C and sunny")]),
    )


def test_parts_become_openai_messages_in_order() -> None:
    body = openai_body(request(*agent_history(), tools=(WEATHER,)))
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert body["messages"] == [
        {"role": "system", "content": "Use tools."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture, and the weather?"},
                {"type": "image_url", "image_url": {"url": data_url}},
            ],
        },
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C and sunny"},
    ]
    # Earlier reasoning is not sent: vLLM's templates drop it from the prompt anyway.
    assert "reasoning" not in json.dumps(body["messages"])


def test_an_assistant_turn_of_only_tool_calls_has_null_content() -> None:
    body = openai_body(request(Message(Role.ASSISTANT, [ToolCall("c", "get_weather", "{}")])))
    assert body["messages"][0]["content"] is None


def test_tool_results_in_a_user_turn_become_tool_messages_before_it() -> None:
    turn = Message(Role.USER, [ToolResult("c1", "one"), ToolResult("c2", "two"), TextPart("And now?")])
    assert openai_body(request(turn))["messages"] == [
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": "two"},
        {"role": "user", "content": "And now?"},
    ]


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        (ToolChoice("auto"), "auto"),
        (ToolChoice("none"), "none"),
        (ToolChoice("required"), "required"),
        (ToolChoice("function", "get_weather"), {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_tools_and_every_tool_choice(choice: ToolChoice, wire: Any) -> None:
    strict = replace(WEATHER, strict=True)
    body = openai_body(
        request(Message(Role.USER, "Weather?"), tools=(strict,), tool_choice=choice, parallel_tool_calls=False)
    )
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": dict(WEATHER.parameters),
                "description": "Current weather for a city",
                "strict": True,
            },
        }
    ]
    assert body["tool_choice"] == wire
    assert body["parallel_tool_calls"] is False


def test_response_formats_and_reasoning_effort() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    json_schema = openai_body(
        request(
            Message(Role.USER, "x"),
            response_format=ResponseFormat("json_schema", schema, name="answer", strict=True),
            reasoning_effort="low",
        )
    )
    assert json_schema["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }
    assert json_schema["reasoning_effort"] == "low"
    json_object = openai_body(request(Message(Role.USER, "x"), response_format=ResponseFormat("json_object")))
    assert json_object["response_format"] == {"type": "json_object"}
    minimal = openai_body(request(Message(Role.USER, "x"), reasoning_effort="minimal"))
    assert minimal["reasoning_effort"] == "low"  # vLLM takes low, medium or high only
    assert "tools" not in json_object and "tool_choice" not in json_object
    no_tools = openai_body(request(Message(Role.USER, "x"), tool_choice=ToolChoice("auto")))
    assert "tool_choice" not in no_tools  # vLLM: "When using `tool_choice`, `tools` must be set."


def test_text_only_content_stays_a_string_and_cache_points_are_not_sent() -> None:
    body = openai_body(request(Message(Role.USER, [TextPart("a", cache_point=True), TextPart("b")])))
    assert body["messages"] == [{"role": "user", "content": "ab"}]


def test_response_tool_calls_reasoning_and_cached_tokens() -> None:
    doc = {
        "model": "qwen",
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": None,
                    "reasoning_content": "Need the weather.",
                    "tool_calls": [
                        {
                            "id": "chatcmpl-tool-1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                        },
                        {
                            "id": "chatcmpl-tool-2",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": {"city": "Rome"}},
                        },
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 300, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 256}},
    }
    completion = from_invoke_endpoint_response(TARGET, request(Message(Role.USER, "x")), json.dumps(doc).encode())
    assert completion.text == ""
    assert completion.finish_reason is FinishReason.TOOL_CALLS
    assert completion.tool_calls == (
        ToolCall("chatcmpl-tool-1", "get_weather", '{"city": "Oslo"}'),
        ToolCall("chatcmpl-tool-2", "get_weather", '{"city": "Rome"}'),
    )
    assert completion.reasoning == (Reasoning("Need the weather."),)
    assert (completion.usage.input_tokens, completion.usage.cache_read_tokens) == (300, 256)


def test_forced_tool_calls_ending_stop_finish_as_tool_calls_and_reasoning_field_is_read() -> None:
    # vLLM ends calls forced by "required" or a named function with "stop"; vLLM 0.11 says "reasoning".
    doc = {
        "choices": [
            {
                "message": {
                    "content": "",
                    "reasoning": "Think.",
                    "tool_calls": [{"id": "t", "function": {"name": "get_weather", "arguments": "{}"}}],
                },
                "finish_reason": "stop",
            }
        ]
    }
    completion = from_invoke_endpoint_response(TARGET, request(Message(Role.USER, "x")), json.dumps(doc).encode())
    assert completion.finish_reason is FinishReason.TOOL_CALLS
    assert completion.reasoning == (Reasoning("Think."),)
    assert completion.usage.cache_read_tokens == 0


def test_a_tool_call_without_an_id_is_a_provider_fault() -> None:
    doc = {"choices": [{"message": {"tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}}]}
    with pytest.raises(ProviderError) as info:
        from_invoke_endpoint_response(TARGET, request(Message(Role.USER, "x")), json.dumps(doc).encode())
    assert info.value.kind is ProviderFailureKind.UNAVAILABLE


def sse(*docs: Any) -> list[bytes]:
    return [f"data: {json.dumps(d)}\n\n".encode() for d in docs] + [b"data: [DONE]\n\n"]


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"model": "qwen", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def test_stream_of_parallel_tool_calls_as_vllm_sends_them() -> None:
    parts = sse(
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning_content": "Two cities."}),
        chunk({"tool_calls": [{"index": 0, "id": "a", "type": "function", "function": {"name": "get_weather"}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}),
        chunk(
            {
                "tool_calls": [
                    {"index": 1, "id": "b", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
                ]
            }
        ),
        chunk({}, "tool_calls"),
        {
            "choices": [],
            "usage": {"prompt_tokens": 50, "completion_tokens": 9, "prompt_tokens_details": {"cached_tokens": 32}},
        },
    )
    # Cut the bytes anywhere: SageMaker's PayloadParts do not respect event boundaries.
    joined = b"".join(parts)
    events = list(
        from_response_stream(
            TARGET, request(Message(Role.USER, "x")), [joined[i : i + 7] for i in range(0, len(joined), 7)]
        )
    )
    assert events[:5] == [
        ReasoningDelta("Two cities."),
        ToolCallDelta(0, "", id="a", name="get_weather"),
        ToolCallDelta(0, '{"city": '),
        ToolCallDelta(0, '"Oslo"}'),
        ToolCallDelta(1, "{}", id="b", name="get_weather"),
    ]
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.finish_reason is FinishReason.TOOL_CALLS
    assert end.usage is not None and (end.usage.output_tokens, end.usage.cache_read_tokens) == (9, 32)


def test_stream_calls_reusing_index_zero_with_new_ids_are_separate_calls() -> None:
    # ollama's OpenAI endpoint sends each call of a parallel batch at index 0.
    parts = sse(
        chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}]}),
        chunk({"tool_calls": [{"index": 0, "id": "b", "function": {"name": "g", "arguments": "{}"}}]}),
        chunk({"content": "", "reasoning": "r"}, "stop"),
    )
    events = list(from_response_stream(TARGET, request(Message(Role.USER, "x")), parts))
    assert [e.index for e in events if isinstance(e, ToolCallDelta)] == [0, 1]
    assert ReasoningDelta("r") in events
    assert events[-1] == StreamEnd(FinishReason.TOOL_CALLS, None, raw_model="qwen")


def test_text_stream_without_calls_still_ends_stop() -> None:
    events = list(from_response_stream(TARGET, request(Message(Role.USER, "x")), sse(chunk({"content": "hi"}, "stop"))))
    assert events == [TextDelta("hi"), StreamEnd(FinishReason.STOP, None, raw_model="qwen")]


@pytest.mark.parametrize(
    ("req", "named"),
    [
        (request(Message(Role.USER, "Weather?"), tools=(WEATHER,)), "tools"),
        (request(Message(Role.USER, [TextPart("What is this?"), ImagePart("image/png", PNG)])), "images"),
        (request(Message(Role.USER, "x"), response_format=ResponseFormat("json_object")), "structured_output"),
        (request(*agent_history()[2:]), "tools"),
    ],
)
def test_tgi_refuses_what_its_prompt_cannot_carry(req: ChatRequest, named: str) -> None:
    # Routing refuses these first (TGI targets have no capabilities); this is the backstop.
    with pytest.raises(ProviderError) as info:
        to_invoke_endpoint_request(TGI, req)
    assert info.value.kind is ProviderFailureKind.UNAVAILABLE
    assert named in info.value.message and "routes.json" in info.value.message
    assert info.value.error_code == "UnsupportedCapability"


def test_tgi_still_takes_plain_text() -> None:
    assert "inputs" in json.loads(to_invoke_endpoint_request(TGI, request(Message(Role.USER, "Hi")))["Body"])
