"""Issue 14 on the Bedrock emulator through real boto3 clients: tools, images, reasoning, prompt
caching and structured output on Converse's wire shapes, validated as Bedrock validates them; the
gateway's Bedrock adapter against it; and forwarding of all of it to an OpenAI-compatible upstream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from botocore.exceptions import ClientError
from werkzeug.wrappers import Request, Response

from llmops.adapters.bedrock.client import BedrockConverseProvider
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
    ToolResult,
    ToolSpec,
)
from llmops.domain.errors import ProviderError, ProviderFailureKind
from llmops.domain.model_ids import ModelFamily
from llmops.domain.routing import Provider, Quirk, Target
from llmops.domain.streaming import ReasoningDelta, StreamEnd, TextDelta, ToolCallDelta
from llmops.local.emulators import BedrockRuntimeEmulator, OpenAICompatibleForwarder
from llmops.local.emulators.converse import ModelTraits, PromptCache
from llmops.local.wsgi_server import LoopbackServer

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-lite-v1:0"
ALL = frozenset(Capability)
TRAITS = {
    HAIKU: ModelTraits(ModelFamily.ANTHROPIC_CLAUDE, frozenset({Capability.TOOLS, Capability.PROMPT_CACHING})),
    SONNET: ModelTraits(ModelFamily.ANTHROPIC_CLAUDE, ALL),
    NOVA: ModelTraits(ModelFamily.AMAZON_NOVA, ALL - {Capability.REASONING}),
}
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
    "required": ["city", "unit"],
}
TOOLS = {"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": WEATHER_SCHEMA}}}]}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emulator(clock: Clock) -> Iterator[tuple[BedrockRuntimeEmulator, LoopbackServer]]:
    app = BedrockRuntimeEmulator(known_models=TRAITS, traits=TRAITS, prompt_cache=PromptCache(clock=clock))
    with LoopbackServer(app) as server:
        yield app, server


@pytest.fixture
def client(emulator: tuple[BedrockRuntimeEmulator, LoopbackServer], boto_client: Any) -> Any:
    return boto_client("bedrock-runtime", emulator[1].url)


def user(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


def validation_error(client: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as info:
        client.converse(**kwargs)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    return str(info.value.response["Error"]["Message"])


# --- tools -----------------------------------------------------------------------------------------


def test_a_tool_round_trip(client: Any) -> None:
    question = user({"text": "What is the weather in Paris?"})
    first = client.converse(modelId=HAIKU, messages=[question], toolConfig=TOOLS)
    assert first["stopReason"] == "tool_use"
    (block,) = first["output"]["message"]["content"]
    use = block["toolUse"]
    assert use["name"] == "get_weather"
    jsonschema.validate(use["input"], WEATHER_SCHEMA)
    result = user({"toolResult": {"toolUseId": use["toolUseId"], "content": [{"text": "18 degrees and sunny"}]}})
    second = client.converse(modelId=HAIKU, messages=[question, first["output"]["message"], result], toolConfig=TOOLS)
    assert second["stopReason"] == "end_turn"
    assert "18 degrees and sunny" in second["output"]["message"]["content"][0]["text"]


def test_a_tool_result_without_its_tool_use_is_refused(client: Any) -> None:
    call = {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {}}}]}
    stray = user({"toolResult": {"toolUseId": "t2", "content": [{"text": "x"}]}})
    message = validation_error(client, modelId=NOVA, messages=[user({"text": "q"}), call, stray], toolConfig=TOOLS)
    assert "toolUseId" in message


def test_tool_blocks_need_a_tool_config_and_claude_wants_every_call_answered(client: Any) -> None:
    call = {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {}}}]}
    answered = user({"toolResult": {"toolUseId": "t1", "content": [{"text": "x"}]}})
    assert "toolConfig" in validation_error(client, modelId=NOVA, messages=[user({"text": "q"}), call, answered])
    message = validation_error(
        client, modelId=HAIKU, messages=[user({"text": "q"}), call, user({"text": "no result"})], toolConfig=TOOLS
    )
    assert "tool_result" in message


def test_tool_choice_must_name_an_offered_tool_and_a_model_without_tools_refuses_them(
    emulator: tuple[BedrockRuntimeEmulator, LoopbackServer], client: Any
) -> None:
    config = {**TOOLS, "toolChoice": {"tool": {"name": "other"}}}
    validation_error(client, modelId=HAIKU, messages=[user({"text": "q"})], toolConfig=config)
    emulator[0].traits[NOVA] = ModelTraits(ModelFamily.AMAZON_NOVA, frozenset())
    assert "tool use" in validation_error(client, modelId=NOVA, messages=[user({"text": "q"})], toolConfig=TOOLS)


# --- images --------------------------------------------------------------------------------------


def test_images_are_checked_for_format_size_and_model_support(client: Any) -> None:
    def image(data: bytes, fmt: str = "png") -> dict[str, Any]:
        return user({"text": "what is this?"}, {"image": {"format": fmt, "source": {"bytes": data}}})

    answer = client.converse(modelId=NOVA, messages=[image(PNG)])
    assert "[1 image]" in answer["output"]["message"]["content"][0]["text"]
    assert "not a valid jpeg" in validation_error(client, modelId=NOVA, messages=[image(PNG, "jpeg")])
    assert "3.75 MB" in validation_error(client, modelId=NOVA, messages=[image(PNG + b"\x00" * 3_750_000)])
    assert "image" in validation_error(client, modelId=HAIKU, messages=[image(PNG)])


# --- reasoning -------------------------------------------------------------------------------------


def thinking(budget: int = 1024) -> dict[str, Any]:
    return {"thinking": {"type": "enabled", "budget_tokens": budget}}


def test_thinking_is_signed_and_a_tampered_block_is_refused(client: Any) -> None:
    question = user({"text": "Why is the sky blue?"})
    first = client.converse(
        modelId=SONNET,
        messages=[question],
        inferenceConfig={"maxTokens": 2048},
        additionalModelRequestFields=thinking(),
    )
    reasoning, text = first["output"]["message"]["content"]
    assert reasoning["reasoningContent"]["reasoningText"]["signature"]
    assert "text" in text
    follow_up = [question, first["output"]["message"], user({"text": "And at sunset?"})]
    kwargs = {"modelId": SONNET, "inferenceConfig": {"maxTokens": 2048}, "additionalModelRequestFields": thinking()}
    assert client.converse(messages=follow_up, **kwargs)["stopReason"] == "end_turn"
    reasoning["reasoningContent"]["reasoningText"]["text"] += " (edited)"
    assert "signature" in validation_error(client, messages=follow_up, **kwargs)


def test_claude_thinking_rules(client: Any) -> None:
    question = [user({"text": "q"})]
    assert "budget_tokens" in validation_error(
        client,
        modelId=SONNET,
        messages=question,
        inferenceConfig={"maxTokens": 4096},
        additionalModelRequestFields=thinking(512),
    )
    assert "max_tokens" in validation_error(
        client,
        modelId=SONNET,
        messages=question,
        inferenceConfig={"maxTokens": 1024},
        additionalModelRequestFields=thinking(),
    )
    assert "temperature" in validation_error(
        client,
        modelId=SONNET,
        messages=question,
        inferenceConfig={"maxTokens": 2048, "temperature": 0.2},
        additionalModelRequestFields=thinking(),
    )
    assert "tool_choice" in validation_error(
        client,
        modelId=SONNET,
        messages=question,
        inferenceConfig={"maxTokens": 2048},
        toolConfig={**TOOLS, "toolChoice": {"any": {}}},
        additionalModelRequestFields=thinking(),
    )
    assert "thinking" in validation_error(
        client,
        modelId=HAIKU,
        messages=question,
        inferenceConfig={"maxTokens": 2048},
        additionalModelRequestFields=thinking(),
    )


# --- prompt caching --------------------------------------------------------------------------------


def test_a_cache_point_writes_then_reads_the_prefix_until_its_ttl_passes(client: Any, clock: Clock) -> None:
    system = [{"text": "You are a careful assistant. " * 200}, {"cachePoint": {"type": "default"}}]
    ask = {"modelId": HAIKU, "system": system, "messages": [user({"text": "first question"})]}
    first = client.converse(**ask)["usage"]
    assert first["cacheWriteInputTokens"] > 1024 and first["cacheReadInputTokens"] == 0
    clock.now += 200
    second = client.converse(**{**ask, "messages": [user({"text": "another question"})]})["usage"]
    assert (second["cacheReadInputTokens"], second["cacheWriteInputTokens"]) == (first["cacheWriteInputTokens"], 0)
    assert second["totalTokens"] == (
        second["inputTokens"]
        + second["cacheReadInputTokens"]
        + second["cacheWriteInputTokens"]
        + second["outputTokens"]
    )
    clock.now += 299  # each hit resets the 5-minute TTL
    assert client.converse(**ask)["usage"]["cacheReadInputTokens"] == first["cacheWriteInputTokens"]
    clock.now += 301
    assert client.converse(**ask)["usage"]["cacheWriteInputTokens"] == first["cacheWriteInputTokens"]


def test_a_prefix_below_the_minimum_is_not_cached_and_uncached_requests_report_no_cache_counts(client: Any) -> None:
    short = client.converse(
        modelId=HAIKU, system=[{"text": "short"}, {"cachePoint": {"type": "default"}}], messages=[user({"text": "q"})]
    )["usage"]
    assert (short["cacheReadInputTokens"], short["cacheWriteInputTokens"]) == (0, 0)
    plain = client.converse(modelId=HAIKU, messages=[user({"text": "q"})])["usage"]
    assert "cacheReadInputTokens" not in plain


# --- structured output -------------------------------------------------------------------------------


def test_output_config_json_schema_is_answered_with_an_instance(client: Any) -> None:
    fmt = {"type": "json_schema", "structure": {"jsonSchema": {"schema": json.dumps(WEATHER_SCHEMA), "name": "w"}}}
    answer = client.converse(modelId=SONNET, messages=[user({"text": "q"})], outputConfig={"textFormat": fmt})
    jsonschema.validate(json.loads(answer["output"]["message"]["content"][0]["text"]), WEATHER_SCHEMA)


# --- streams ---------------------------------------------------------------------------------------


def test_converse_stream_of_thinking_and_a_tool_call(client: Any) -> None:
    events = list(
        client.converse_stream(
            modelId=SONNET,
            messages=[user({"text": "weather in Rome?"})],
            toolConfig=TOOLS,
            inferenceConfig={"maxTokens": 2048},
            additionalModelRequestFields=thinking(),
        )["stream"]
    )
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    reasoning = [
        e["contentBlockDelta"] for e in events if "reasoningContent" in e.get("contentBlockDelta", {}).get("delta", {})
    ]
    assert {r["contentBlockIndex"] for r in reasoning} == {0}
    assert "signature" in reasoning[-1]["delta"]["reasoningContent"]
    (start,) = [e["contentBlockStart"] for e in events if "contentBlockStart" in e]
    assert start["contentBlockIndex"] == 1 and start["start"]["toolUse"]["name"] == "get_weather"
    pieces = [
        e["contentBlockDelta"]["delta"]["toolUse"]["input"]
        for e in events
        if "toolUse" in e.get("contentBlockDelta", {}).get("delta", {})
    ]
    jsonschema.validate(json.loads("".join(pieces)), WEATHER_SCHEMA)
    stops = [e["contentBlockStop"]["contentBlockIndex"] for e in events if "contentBlockStop" in e]
    assert stops == [0, 1]
    assert events[-2]["messageStop"]["stopReason"] == "tool_use"


# --- the gateway's adapter against the emulator --------------------------------------------------------


def target(model_id: str, **kwargs: Any) -> Target:
    return Target(
        id=f"t-{model_id}",
        provider=Provider.BEDROCK,
        model_id=model_id,
        price_per_1k_input_usd=0.003,
        price_per_1k_output_usd=0.015,
        context_window=200_000,
        max_output_tokens=64_000,
        **kwargs,
    )


WEATHER = ToolSpec("get_weather", "Weather for a city", WEATHER_SCHEMA)


def test_the_adapter_carries_a_tool_loop_with_thinking_through_the_emulator(client: Any) -> None:
    provider = BedrockConverseProvider(lambda timeout_s: client)
    sonnet = target(SONNET, quirks=frozenset({Quirk.NO_SAMPLING_WHILE_REASONING}))
    ask = Message(Role.USER, [TextPart("weather in Oslo?"), ImagePart("image/png", PNG)])
    request = ChatRequest(model="m", messages=(ask,), tools=(WEATHER,), reasoning_effort="low", temperature=0.3)
    first = provider.complete(sonnet, request)
    assert first.finish_reason is FinishReason.TOOL_CALLS
    (call,) = first.tool_calls
    jsonschema.validate(json.loads(call.arguments), WEATHER_SCHEMA)
    assert first.reasoning[0].signature
    history = (
        ask,
        Message(Role.ASSISTANT, [*first.reasoning, call]),
        Message(Role.TOOL, [ToolResult(call.id, "minus four")]),
    )
    second = provider.complete(
        sonnet, ChatRequest(model="m", messages=history, tools=(WEATHER,), reasoning_effort="low")
    )
    assert second.finish_reason is FinishReason.STOP and "minus four" in second.text
    tampered = (
        history[0],
        Message(Role.ASSISTANT, [Reasoning("forged", first.reasoning[0].signature), call]),
        history[2],
    )
    with pytest.raises(ProviderError) as info:
        provider.complete(sonnet, ChatRequest(model="m", messages=tampered, tools=(WEATHER,), reasoning_effort="low"))
    assert info.value.kind is ProviderFailureKind.INVALID_REQUEST


def test_the_adapter_streams_tool_calls_and_structured_output(client: Any) -> None:
    provider = BedrockConverseProvider(lambda timeout_s: client)
    haiku = target(HAIKU)
    events = list(
        provider.stream(haiku, ChatRequest(model="m", messages=(Message(Role.USER, "weather?"),), tools=(WEATHER,)))
    )
    assert isinstance(events[0], ToolCallDelta) and events[0].name == "get_weather" and events[0].id
    arguments = "".join(e.arguments for e in events if isinstance(e, ToolCallDelta))
    jsonschema.validate(json.loads(arguments), WEATHER_SCHEMA)
    assert isinstance(events[-1], StreamEnd) and events[-1].finish_reason is FinishReason.TOOL_CALLS

    structured = ChatRequest(
        model="m",
        messages=(Message(Role.USER, "report"),),
        response_format=ResponseFormat("json_schema", WEATHER_SCHEMA, "weather_report"),
    )
    completion = provider.complete(haiku, structured)
    assert (completion.tool_calls, completion.finish_reason) == ((), FinishReason.STOP)
    jsonschema.validate(json.loads(completion.text), WEATHER_SCHEMA)
    streamed = list(provider.stream(haiku, structured))
    assert all(isinstance(e, TextDelta | StreamEnd) for e in streamed)
    # Streamed, the JSON is the model's own text; whole, Bedrock re-serializes the parsed input.
    assert json.loads("".join(e.text for e in streamed if isinstance(e, TextDelta))) == json.loads(completion.text)
    assert streamed[-1] == StreamEnd(FinishReason.STOP, completion.usage)


def test_the_adapter_streams_reasoning_and_reports_cache_usage(client: Any) -> None:
    provider = BedrockConverseProvider(lambda timeout_s: client)
    sonnet = target(SONNET)
    system = Message(Role.SYSTEM, [TextPart("Style guide. " * 400, cache_point=True)])
    request = ChatRequest(model="m", messages=(system, Message(Role.USER, "q")), reasoning_effort="minimal")
    events = list(provider.stream(sonnet, request))
    reasoning = [e for e in events if isinstance(e, ReasoningDelta)]
    assert reasoning and reasoning[-1].signature
    end = events[-1]
    assert isinstance(end, StreamEnd) and end.usage is not None and end.usage.cache_write_tokens > 1024
    again = provider.complete(sonnet, request)
    assert again.usage.cache_read_tokens == end.usage.cache_write_tokens
    assert again.usage.input_tokens == end.usage.input_tokens


# --- forwarding ------------------------------------------------------------------------------------


class ToolCallingUpstream:
    """An OpenAI-compatible server that calls the first tool offered, or answers text after results."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, environ: Any, start_response: Any) -> Any:
        body = json.loads(Request(environ).get_data())
        self.bodies.append(body)
        calls = body.get("tools") and body["messages"][-1]["role"] == "user"
        message: dict[str, Any] = {"role": "assistant", "content": None if calls else "it is mild"}
        if calls:
            function = {"name": body["tools"][0]["function"]["name"], "arguments": '{"city": "Oslo", "unit": "c"}'}
            message["tool_calls"] = [{"id": "call_up1", "type": "function", "function": function}]
        usage = {"prompt_tokens": 40, "completion_tokens": 7}
        if body.get("stream"):
            chunks: list[dict[str, Any]] = []
            if calls:
                head = {
                    "index": 0,
                    "id": "call_up1",
                    "type": "function",
                    "function": {"name": message["tool_calls"][0]["function"]["name"]},
                }
                chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [head]}, "finish_reason": None}]})
                for piece in ('{"city": ', '"Oslo", "unit": "c"}'):
                    chunks.append(
                        {
                            "choices": [
                                {
                                    "index": 0,
                                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]},
                                    "finish_reason": None,
                                }
                            ]
                        }
                    )
            else:
                chunks.append({"choices": [{"index": 0, "delta": {"content": "it is mild"}, "finish_reason": None}]})
            chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls" if calls else "stop"}]})
            chunks.append({"choices": [], "usage": usage})
            payload = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            return Response(payload, mimetype="text/event-stream")(environ, start_response)
        doc = {"choices": [{"message": message, "finish_reason": "tool_calls" if calls else "stop"}], "usage": usage}
        return Response(json.dumps(doc), mimetype="application/json")(environ, start_response)


@pytest.fixture
def forwarded(boto_client: Any) -> Iterator[tuple[ToolCallingUpstream, Any]]:
    upstream = ToolCallingUpstream()
    with LoopbackServer(upstream) as up:
        app = BedrockRuntimeEmulator(forwarder=OpenAICompatibleForwarder(f"{up.url}/v1", model="qwen", timeout_s=5))
        with LoopbackServer(app) as server:
            yield upstream, boto_client("bedrock-runtime", server.url)


def test_forwarding_maps_tools_images_results_and_structured_output_both_ways(
    forwarded: tuple[ToolCallingUpstream, Any],
) -> None:
    upstream, client = forwarded
    question = user({"text": "weather?"}, {"image": {"format": "png", "source": {"bytes": PNG}}})
    first = client.converse(modelId=NOVA, messages=[question], toolConfig={**TOOLS, "toolChoice": {"any": {}}})
    assert first["stopReason"] == "tool_use"
    use = first["output"]["message"]["content"][0]["toolUse"]
    assert (use["toolUseId"], use["name"], use["input"]) == ("call_up1", "get_weather", {"city": "Oslo", "unit": "c"})
    sent = upstream.bodies[0]
    assert sent["model"] == "qwen" and sent["tool_choice"] == "required"
    assert sent["tools"][0]["function"] == {"name": "get_weather", "parameters": WEATHER_SCHEMA}
    parts = sent["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "weather?"}
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")

    result = user({"toolResult": {"toolUseId": "call_up1", "content": [{"text": "-4"}]}})
    fmt = {"type": "json_schema", "structure": {"jsonSchema": {"schema": json.dumps(WEATHER_SCHEMA), "name": "w"}}}
    second = client.converse(
        modelId=NOVA,
        messages=[question, first["output"]["message"], result],
        toolConfig=TOOLS,
        outputConfig={"textFormat": fmt},
    )
    assert second["output"]["message"]["content"] == [{"text": "it is mild"}]
    sent = upstream.bodies[1]
    assert sent["messages"][1]["tool_calls"][0]["id"] == "call_up1"
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": "call_up1", "content": "-4"}
    assert sent["response_format"]["json_schema"]["schema"] == WEATHER_SCHEMA


def test_forwarding_carries_claude_thinking_as_reasoning_effort(forwarded: tuple[ToolCallingUpstream, Any]) -> None:
    upstream, client = forwarded
    client.converse(
        modelId=SONNET,
        messages=[user({"text": "q"})],
        inferenceConfig={"maxTokens": 8000},
        additionalModelRequestFields=thinking(4096),
    )
    assert upstream.bodies[0]["reasoning_effort"] == "medium"


def test_forwarded_streams_come_back_as_converse_tool_use_events(forwarded: tuple[ToolCallingUpstream, Any]) -> None:
    _, client = forwarded
    events = list(
        client.converse_stream(modelId=NOVA, messages=[user({"text": "weather?"})], toolConfig=TOOLS)["stream"]
    )
    (start,) = [e["contentBlockStart"] for e in events if "contentBlockStart" in e]
    assert start["start"]["toolUse"] == {"toolUseId": "call_up1", "name": "get_weather"}
    pieces = [e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events if "contentBlockDelta" in e]
    assert json.loads("".join(pieces)) == {"city": "Oslo", "unit": "c"}
    assert events[-2]["messageStop"]["stopReason"] == "tool_use"
    assert events[-1]["metadata"]["usage"]["inputTokens"] == 40
