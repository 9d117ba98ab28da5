"""Issue 14's Converse mapping, both directions: tools, images, reasoning, prompt caching, structured
output, pass-through options, inference profiles; and the stream events of tool calls and reasoning."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest

from llmops.adapters.bedrock.transformation import (
    from_converse_response,
    from_converse_stream,
    merge_consecutive_roles,
    structured_output_tool,
    to_converse_request,
)
from llmops.domain.chat import (
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
    Usage,
)
from llmops.domain.errors import BadRequestError
from llmops.domain.model_ids import ModelFamily, foundation_model_id, model_family
from llmops.domain.routing import Provider, Quirk, RouteTable, Target
from llmops.domain.streaming import ReasoningDelta, StreamEnd, TextDelta, ToolCallDelta

HAIKU = Target(
    id="bedrock-haiku",
    provider=Provider.BEDROCK,
    model_id="anthropic.claude-3-5-haiku-20241022-v1:0",
    price_per_1k_input_usd=0.0008,
    price_per_1k_output_usd=0.004,
    context_window=200_000,
    max_output_tokens=8192,
)
SONNET = replace(
    HAIKU,
    id="bedrock-sonnet",
    model_id="us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    max_output_tokens=64_000,
    quirks=frozenset({Quirk.TEMPERATURE_XOR_TOP_P, Quirk.NO_SAMPLING_WHILE_REASONING}),
)
WEATHER = ToolSpec(
    "get_weather",
    "Weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def chat(*messages: Message, **kwargs: Any) -> ChatRequest:
    return ChatRequest(model="chat-default", messages=messages, **kwargs)


def user(text: str) -> Message:
    return Message(Role.USER, text)


# --- request: parts ------------------------------------------------------------------------------


def test_images_are_raw_bytes_with_their_format() -> None:
    req = to_converse_request(HAIKU, chat(Message(Role.USER, [TextPart("what is this?"), ImagePart("image/png", PNG)])))
    assert req["messages"][0]["content"] == [
        {"text": "what is this?"},
        {"image": {"format": "png", "source": {"bytes": PNG}}},
    ]


def test_tool_calls_and_results_round_trip_as_tool_use_and_a_merged_user_turn() -> None:
    request = chat(
        user("weather in Paris and Rome?"),
        Message(
            Role.ASSISTANT,
            [
                ToolCall("call_1", "get_weather", '{"city": "Paris"}'),
                ToolCall("call_2", "get_weather", '{"city":"Rome"}'),
            ],
        ),
        Message(Role.TOOL, [ToolResult("call_1", "sunny")]),
        Message(Role.TOOL, [ToolResult("call_2", "")]),
        user("and tomorrow?"),
        tools=(WEATHER,),
    )
    req = to_converse_request(HAIKU, request)
    assert req["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"toolUse": {"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Paris"}}},
                {"toolUse": {"toolUseId": "call_2", "name": "get_weather", "input": {"city": "Rome"}}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "call_1", "content": [{"text": "sunny"}]}},
                {"toolResult": {"toolUseId": "call_2", "content": [{"text": "(empty)"}]}},
                {"text": "and tomorrow?"},
            ],
        },
    ]
    assert req["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "inputSchema": {"json": dict(WEATHER.parameters)},
                }
            }
        ]
    }


def test_merging_keeps_every_part_and_drops_only_blank_text() -> None:
    turns = merge_consecutive_roles(
        [
            Message(Role.USER, [TextPart("a"), TextPart("  ")]),
            Message(Role.USER, [ImagePart("image/png", PNG)]),
            Message(Role.ASSISTANT, [TextPart(""), ToolCall("c", "f", "{}")]),
            Message(Role.TOOL, [ToolResult("c", "r")]),
        ]
    )
    assert turns == [
        (Role.USER, [TextPart("a"), ImagePart("image/png", PNG)]),
        (Role.ASSISTANT, [ToolCall("c", "f", "{}")]),
        (Role.USER, [ToolResult("c", "r")]),
    ]


def test_tool_use_ids_converse_rejects_are_mapped_the_same_way_on_both_sides() -> None:
    odd = "call/with spaces" + "x" * 80
    req = to_converse_request(
        HAIKU,
        chat(
            user("q"),
            Message(Role.ASSISTANT, [ToolCall(odd, "get_weather", "{}")]),
            Message(Role.TOOL, [ToolResult(odd, "r")]),
            tools=(WEATHER,),
        ),
    )
    use_id = req["messages"][1]["content"][0]["toolUse"]["toolUseId"]
    assert use_id == req["messages"][2]["content"][0]["toolResult"]["toolUseId"]
    assert len(use_id) <= 64 and " " not in use_id and "/" not in use_id


@pytest.mark.parametrize("arguments", ["not json", "[1, 2]"])
def test_tool_call_arguments_that_are_not_a_json_object_are_a_400_naming_messages(arguments: str) -> None:
    request = chat(user("q"), Message(Role.ASSISTANT, [ToolCall("c", "f", arguments)]), tools=(WEATHER,))
    with pytest.raises(BadRequestError) as info:
        to_converse_request(HAIKU, request)
    assert info.value.param == "messages"
    assert arguments not in info.value.message


def test_cache_points_follow_marked_parts_in_system_and_messages() -> None:
    req = to_converse_request(
        HAIKU,
        chat(
            Message(Role.SYSTEM, [TextPart("long instructions", cache_point=True)]),
            Message(Role.USER, [TextPart("document", cache_point=True), TextPart("question")]),
        ),
    )
    assert req["system"] == [{"text": "long instructions"}, {"cachePoint": {"type": "default"}}]
    assert req["messages"][0]["content"] == [
        {"text": "document"},
        {"cachePoint": {"type": "default"}},
        {"text": "question"},
    ]


def test_reasoning_blocks_are_carried_back_in_assistant_turns() -> None:
    redacted = base64.b64encode(b"opaque").decode()
    req = to_converse_request(
        SONNET,
        chat(
            user("q"),
            Message(
                Role.ASSISTANT,
                [Reasoning("think", signature="sig"), Reasoning(redacted=redacted), TextPart("answer")],
            ),
            user("more"),
        ),
    )
    assert req["messages"][1]["content"] == [
        {"reasoningContent": {"reasoningText": {"text": "think", "signature": "sig"}}},
        {"reasoningContent": {"redactedContent": b"opaque"}},
        {"text": "answer"},
    ]


# --- request: tool choice and structured output ----------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, None),
        (ToolChoice("auto"), None),
        (ToolChoice("required"), {"any": {}}),
        (ToolChoice("function", "get_weather"), {"tool": {"name": "get_weather"}}),
    ],
)
def test_tool_choice_maps_to_converse(choice: ToolChoice | None, expected: dict[str, Any] | None) -> None:
    config = to_converse_request(HAIKU, chat(user("q"), tools=(WEATHER,), tool_choice=choice))["toolConfig"]
    assert config.get("toolChoice") == expected


def test_tool_choice_none_withholds_the_tools_unless_the_history_has_tool_blocks() -> None:
    plain = to_converse_request(HAIKU, chat(user("q"), tools=(WEATHER,), tool_choice=ToolChoice("none")))
    assert "toolConfig" not in plain
    history = chat(
        user("q"),
        Message(Role.ASSISTANT, [ToolCall("c", "get_weather", "{}")]),
        Message(Role.TOOL, [ToolResult("c", "r")]),
        tools=(WEATHER,),
        tool_choice=ToolChoice("none"),
    )
    config = to_converse_request(HAIKU, history)["toolConfig"]
    assert [t["toolSpec"]["name"] for t in config["tools"]] == ["get_weather"]
    assert "toolChoice" not in config


def test_history_with_tool_calls_but_no_tools_declares_the_tools_it_called() -> None:
    history = chat(
        user("q"),
        Message(Role.ASSISTANT, [ToolCall("c", "get_weather", "{}"), ToolCall("d", "get_weather", "{}")]),
        Message(Role.TOOL, [ToolResult("c", "r")]),
        Message(Role.TOOL, [ToolResult("d", "s")]),
        user("summarize"),
    )
    (tool,) = to_converse_request(HAIKU, history)["toolConfig"]["tools"]
    assert tool["toolSpec"]["name"] == "get_weather"
    assert tool["toolSpec"]["inputSchema"]["json"]["type"] == "object"


SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def test_json_schema_is_a_forced_tool_whose_input_comes_back_as_text() -> None:
    request = chat(user("q"), response_format=ResponseFormat("json_schema", SCHEMA, name="final answer"))
    req = to_converse_request(HAIKU, request)
    assert structured_output_tool(HAIKU, request) == "final_answer"
    assert req["toolConfig"]["toolChoice"] == {"tool": {"name": "final_answer"}}
    assert req["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"] == {"json": SCHEMA}
    completion = from_converse_response(
        {
            "output": {
                "message": {
                    "role": "assistant",
                    "content": [{"toolUse": {"toolUseId": "t1", "name": "final_answer", "input": {"answer": "42"}}}],
                }
            },
            "stopReason": "tool_use",
            "usage": {"inputTokens": 3, "outputTokens": 4},
        },
        structured_tool="final_answer",
    )
    assert (completion.text, completion.tool_calls, completion.finish_reason) == (
        '{"answer":"42"}',
        (),
        FinishReason.STOP,
    )


def test_json_object_is_a_forced_tool_with_any_object_and_beside_tools_any_tool_must_be_called() -> None:
    request = chat(user("q"), tools=(WEATHER,), response_format=ResponseFormat("json_object"))
    config = to_converse_request(HAIKU, request)["toolConfig"]
    assert [t["toolSpec"]["name"] for t in config["tools"]] == ["get_weather", "response"]
    assert config["tools"][1]["toolSpec"]["inputSchema"]["json"]["type"] == "object"
    assert config["toolChoice"] == {"any": {}}


def test_structured_output_with_the_callers_tools_withheld_forces_the_format_tool() -> None:
    history = chat(
        user("q"),
        Message(Role.ASSISTANT, [ToolCall("c", "get_weather", "{}")]),
        Message(Role.TOOL, [ToolResult("c", "r")]),
        tools=(WEATHER,),
        tool_choice=ToolChoice("none"),
        response_format=ResponseFormat("json_schema", SCHEMA, "final"),
    )
    config = to_converse_request(HAIKU, history)["toolConfig"]
    assert [t["toolSpec"]["name"] for t in config["tools"]] == ["get_weather", "final"]
    assert config["toolChoice"] == {"tool": {"name": "final"}}


def test_with_claude_thinking_structured_output_uses_converse_output_config() -> None:
    request = chat(user("q"), reasoning_effort="low", response_format=ResponseFormat("json_schema", SCHEMA, "r"))
    req = to_converse_request(SONNET, request)
    assert structured_output_tool(SONNET, request) is None
    assert "toolConfig" not in req
    fmt = req["outputConfig"]["textFormat"]
    assert fmt["type"] == "json_schema"
    assert json.loads(fmt["structure"]["jsonSchema"]["schema"]) == SCHEMA


# --- request: reasoning, quirks, pass-through ------------------------------------------------------


@pytest.mark.parametrize(("effort", "budget"), [("minimal", 1024), ("low", 1024), ("medium", 4096), ("high", 16384)])
def test_claude_thinking_budget_per_effort_with_max_tokens_above_it(effort: str, budget: int) -> None:
    req = to_converse_request(SONNET, chat(user("q"), reasoning_effort=effort, max_tokens=500))
    assert req["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": budget}}
    assert req["inferenceConfig"]["maxTokens"] == budget + 500


def test_claude_thinking_stays_within_the_targets_max_output() -> None:
    small = replace(SONNET, max_output_tokens=8192)
    req = to_converse_request(small, chat(user("q"), reasoning_effort="high"))
    budget = req["additionalModelRequestFields"]["thinking"]["budget_tokens"]
    assert budget < req["inferenceConfig"]["maxTokens"] <= 8192


@pytest.mark.parametrize(
    ("model_id", "effort", "fields"),
    [
        (
            "us.amazon.nova-2-lite-v1:0",
            "minimal",
            {"reasoningConfig": {"type": "enabled", "maxReasoningEffort": "low"}},
        ),
        ("amazon.nova-2-lite-v1:0", "high", {"reasoningConfig": {"type": "enabled", "maxReasoningEffort": "high"}}),
        ("openai.gpt-oss-120b-1:0", "medium", {"reasoning_effort": "medium"}),
        ("us.deepseek.r1-v1:0", "high", None),
    ],
)
def test_reasoning_fields_by_model_family(model_id: str, effort: str, fields: dict[str, Any] | None) -> None:
    req = to_converse_request(replace(HAIKU, model_id=model_id), chat(user("q"), reasoning_effort=effort))
    assert req.get("additionalModelRequestFields") == fields


def test_an_application_inference_profile_takes_its_family_from_the_configured_foundation_model() -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"
    table = RouteTable.from_document(
        {
            "targets": {
                "app-profile": {
                    "provider": "bedrock",
                    "model_id": arn,
                    "foundation_model": "anthropic.claude-sonnet-4-5-20250929-v1:0",
                    "price_per_1k_input_usd": 0.003,
                    "price_per_1k_output_usd": 0.015,
                    "context_window": 200000,
                    "max_output_tokens": 64000,
                }
            },
            "routes": {"a": {"targets": [{"target": "app-profile"}]}},
        }
    )
    target = table.targets["app-profile"]
    req = to_converse_request(target, chat(user("q"), reasoning_effort="medium"))
    assert req["modelId"] == arn
    assert req["additionalModelRequestFields"]["thinking"]["budget_tokens"] == 4096
    assert model_family(arn) is ModelFamily.OTHER


@pytest.mark.parametrize(
    ("model_id", "base"),
    [
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("us-gov.anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-3-haiku-20240307-v1:0"),
        ("apac.amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0"),
        ("arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0"),
        ("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0"),
        ("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc", None),
        ("amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0"),
    ],
)
def test_foundation_model_ids_behind_profiles(model_id: str, base: str | None) -> None:
    assert foundation_model_id(model_id) == base


def test_temperature_xor_top_p_keeps_the_temperature() -> None:
    req = to_converse_request(SONNET, chat(user("q"), temperature=0.3, top_p=0.9))
    assert req["inferenceConfig"] == {"temperature": 0.3}
    assert to_converse_request(HAIKU, chat(user("q"), temperature=0.3, top_p=0.9))["inferenceConfig"] == {
        "temperature": 0.3,
        "topP": 0.9,
    }


def test_no_sampling_while_reasoning_drops_temperature_and_top_p() -> None:
    req = to_converse_request(SONNET, chat(user("q"), temperature=0.3, top_p=0.9, reasoning_effort="low"))
    assert "temperature" not in req["inferenceConfig"] and "topP" not in req["inferenceConfig"]


def test_provider_options_never_override_what_the_gateway_sets() -> None:
    options = {
        "guardrailConfig": {"guardrailIdentifier": "g1", "guardrailVersion": "1"},
        "serviceTier": {"type": "priority"},
        "performanceConfig": {"latency": "optimized"},
        "modelId": "someone-else",
        "inferenceConfig": {"maxTokens": 999999},
        "additionalModelRequestFields": {"thinking": {"type": "disabled"}, "top_k": 5},
    }
    req = to_converse_request(SONNET, chat(user("q"), max_tokens=10, reasoning_effort="low", provider_options=options))
    assert req["modelId"] == SONNET.model_id
    assert req["inferenceConfig"]["maxTokens"] == 1024 + 10
    assert req["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 1024}, "top_k": 5}
    assert req["guardrailConfig"] == options["guardrailConfig"]
    assert req["serviceTier"] == {"type": "priority"}
    assert req["performanceConfig"] == {"latency": "optimized"}


# --- response ------------------------------------------------------------------------------------


def test_response_tool_use_reasoning_and_cache_usage() -> None:
    completion = from_converse_response(
        {
            "output": {
                "message": {
                    "role": "assistant",
                    "content": [
                        {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "s1"}}},
                        {"reasoningContent": {"redactedContent": b"\x00\x01"}},
                        {"text": "Let me check."},
                        {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}},
                    ],
                }
            },
            "stopReason": "tool_use",
            "usage": {
                "inputTokens": 10,
                "outputTokens": 5,
                "totalTokens": 115,
                "cacheReadInputTokens": 60,
                "cacheWriteInputTokens": 40,
            },
        }
    )
    assert completion.text == "Let me check."
    assert completion.tool_calls == (ToolCall("tooluse_1", "get_weather", '{"city":"Paris"}'),)
    assert completion.reasoning == (Reasoning("hmm", "s1"), Reasoning(redacted=base64.b64encode(b"\x00\x01").decode()))
    assert completion.finish_reason is FinishReason.TOOL_CALLS
    assert completion.usage == Usage(input_tokens=110, output_tokens=5, cache_read_tokens=60, cache_write_tokens=40)


# --- stream --------------------------------------------------------------------------------------


def test_stream_of_reasoning_text_and_interleaved_tool_calls() -> None:
    events = list(
        from_converse_stream(
            [
                {"messageStart": {"role": "assistant"}},
                {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "think"}}}},
                {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "sig"}}}},
                {"contentBlockStop": {"contentBlockIndex": 0}},
                {"contentBlockDelta": {"contentBlockIndex": 1, "delta": {"text": "Checking"}}},
                {"contentBlockStop": {"contentBlockIndex": 1}},
                {"contentBlockStart": {"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "a", "name": "f"}}}},
                {"contentBlockStart": {"contentBlockIndex": 3, "start": {"toolUse": {"toolUseId": "b", "name": "g"}}}},
                {"contentBlockDelta": {"contentBlockIndex": 2, "delta": {"toolUse": {"input": '{"x":'}}}},
                {"contentBlockDelta": {"contentBlockIndex": 3, "delta": {"toolUse": {"input": "{}"}}}},
                {"contentBlockDelta": {"contentBlockIndex": 2, "delta": {"toolUse": {"input": "1}"}}}},
                {"contentBlockStop": {"contentBlockIndex": 2}},
                {"contentBlockStop": {"contentBlockIndex": 3}},
                {"messageStop": {"stopReason": "tool_use"}},
                {"metadata": {"usage": {"inputTokens": 5, "outputTokens": 9, "cacheReadInputTokens": 7}}},
            ]
        )
    )
    assert events == [
        ReasoningDelta("think"),
        ReasoningDelta(signature="sig"),
        TextDelta("Checking"),
        ToolCallDelta(0, "", "a", "f"),
        ToolCallDelta(1, "", "b", "g"),
        ToolCallDelta(0, '{"x":'),
        ToolCallDelta(1, "{}"),
        ToolCallDelta(0, "1}"),
        StreamEnd(FinishReason.TOOL_CALLS, Usage(12, 9, cache_read_tokens=7)),
    ]


def test_stream_of_the_structured_output_tool_is_text() -> None:
    events = list(
        from_converse_stream(
            [
                {"contentBlockStart": {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t", "name": "r"}}}},
                {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '{"a":'}}}},
                {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"toolUse": {"input": "1}"}}}},
                {"messageStop": {"stopReason": "tool_use"}},
            ],
            structured_tool="r",
        )
    )
    assert events == [TextDelta('{"a":'), TextDelta("1}"), StreamEnd(FinishReason.STOP, None)]


def test_stream_redacted_reasoning_is_base64() -> None:
    events = list(
        from_converse_stream(
            [
                {
                    "contentBlockDelta": {
                        "contentBlockIndex": 0,
                        "delta": {"reasoningContent": {"redactedContent": b"xy"}},
                    }
                },
                {"messageStop": {"stopReason": "end_turn"}},
            ]
        )
    )
    assert events[0] == ReasoningDelta(redacted=base64.b64encode(b"xy").decode())
