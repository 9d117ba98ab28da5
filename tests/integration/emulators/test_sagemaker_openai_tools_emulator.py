"""The SageMaker emulator's vLLM OpenAI dialect for issue 14, through real boto3 clients and the
gateway's SageMaker adapter: tool calls valid against their schemas (buffered and streamed the way
vLLM streams them), answers from tool results, structured output, images on a vision endpoint and
refused on a text-only one, and vLLM's 400s relayed as ModelError without echoing the request."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from llmops.adapters.sagemaker.client import SageMakerEndpointProvider
from llmops.application.wiring import build_providers
from llmops.config.env import Settings
from llmops.domain.chat import (
    ChatRequest,
    FinishReason,
    ImagePart,
    Message,
    ResponseFormat,
    Role,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolResult,
    ToolSpec,
)
from llmops.domain.errors import ProviderError, ProviderFailureKind
from llmops.domain.routing import Provider, RouteTable
from llmops.domain.streaming import StreamEnd, ToolCallDelta
from llmops.local.emulators import SageMakerRuntimeEmulator
from llmops.local.wsgi_server import LoopbackServer

ROUTES_FILE = Path(__file__).parents[3] / "shared" / "llmops" / "config" / "routes.json"
QWEN = "llmops-qwen25-vl-7b"  # tools, images, structured_output
LLAMA = "llmops-llama3-8b"  # tools, structured_output: no vision
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(32))
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
TIME_SCHEMA = {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": WEATHER_SCHEMA}},
    {"type": "function", "function": {"name": "get_time", "parameters": TIME_SCHEMA}},
]
SCHEMAS = {"get_weather": WEATHER_SCHEMA, "get_time": TIME_SCHEMA}
Emulator = tuple[SageMakerRuntimeEmulator, LoopbackServer]


@pytest.fixture
def shipped() -> Iterator[Emulator]:
    """The emulator as `llmops serve` builds it: endpoints and capabilities from routes.json."""
    table = RouteTable.from_document(json.loads(ROUTES_FILE.read_text()))
    app = SageMakerRuntimeEmulator.from_route_table(table)
    with LoopbackServer(app) as server:
        yield app, server


def invoke(client: Any, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.invoke_endpoint(
        EndpointName=endpoint, Body=json.dumps(body), ContentType="application/json", Accept="application/json"
    )
    doc: dict[str, Any] = json.loads(response["Body"].read())
    return doc


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def test_tools_offered_to_a_user_turn_are_called_with_schema_valid_arguments(
    shipped: Emulator, boto_client: Any
) -> None:
    client = boto_client("sagemaker-runtime", shipped[1].url)
    doc = invoke(client, QWEN, {"messages": [user("Will it rain in Oslo?")], "tools": TOOLS})
    choice = doc["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["id"].startswith("chatcmpl-tool-") and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"  # no tool named in the text: the first
    jsonschema.validate(json.loads(call["function"]["arguments"]), WEATHER_SCHEMA)
    # The same request gets the same call: answers are deterministic.
    again = invoke(client, QWEN, {"messages": [user("Will it rain in Oslo?")], "tools": TOOLS})
    assert again["choices"][0]["message"]["tool_calls"] == choice["message"]["tool_calls"]


def test_tools_named_in_the_question_are_called_in_parallel_unless_told_not_to(
    shipped: Emulator, boto_client: Any
) -> None:
    client = boto_client("sagemaker-runtime", shipped[1].url)
    body = {"messages": [user("Use get_time and then get_weather for Rome")], "tools": TOOLS}
    calls = invoke(client, QWEN, body)["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_time", "get_weather"]
    assert len({c["id"] for c in calls}) == 2
    for call in calls:
        jsonschema.validate(json.loads(call["function"]["arguments"]), SCHEMAS[call["function"]["name"]])
    single = invoke(client, QWEN, {**body, "parallel_tool_calls": False})["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in single] == ["get_time"]


def test_a_forced_tool_is_called_and_ends_stop_as_vllm_does(shipped: Emulator, boto_client: Any) -> None:
    client = boto_client("sagemaker-runtime", shipped[1].url)
    named = {"type": "function", "function": {"name": "get_time"}}
    doc = invoke(client, LLAMA, {"messages": [user("Weather?")], "tools": TOOLS, "tool_choice": named})
    choice = doc["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert [c["function"]["name"] for c in choice["message"]["tool_calls"]] == ["get_time"]
    none = invoke(client, LLAMA, {"messages": [user("Weather?")], "tools": TOOLS, "tool_choice": "none"})
    assert none["choices"][0]["message"]["tool_calls"] == []
    assert none["choices"][0]["message"]["content"].startswith("Emulated answer")


def test_after_tool_results_the_answer_is_text_that_uses_them(shipped: Emulator, boto_client: Any) -> None:
    client = boto_client("sagemaker-runtime", shipped[1].url)
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    messages = [
        user("Weather in Oslo?"),
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Rain, 7 degrees"},
    ]
    doc = invoke(client, QWEN, {"messages": messages, "tools": TOOLS})
    choice = doc["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["tool_calls"] == []
    assert "Tool results: Rain, 7 degrees" in choice["message"]["content"]


def test_structured_output_is_valid_json(shipped: Emulator, boto_client: Any) -> None:
    client = boto_client("sagemaker-runtime", shipped[1].url)
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}},
        "required": ["name", "tags"],
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}}
    doc = invoke(client, LLAMA, {"messages": [user("Describe Ada")], "response_format": response_format})
    jsonschema.validate(json.loads(doc["choices"][0]["message"]["content"]), schema)
    obj = invoke(client, LLAMA, {"messages": [user("Describe Ada")], "response_format": {"type": "json_object"}})
    assert isinstance(json.loads(obj["choices"][0]["message"]["content"]), dict)


def test_images_go_to_a_vision_endpoint(shipped: Emulator, boto_client: Any) -> None:
    client = boto_client("sagemaker-runtime", shipped[1].url)
    content = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": PNG_URL}}]
    doc = invoke(client, QWEN, {"messages": [{"role": "user", "content": content}]})
    assert "What is this? [1 image]" in doc["choices"][0]["message"]["content"]
    text_only = invoke(client, QWEN, {"messages": [user("What is this?")]})
    assert doc["usage"]["prompt_tokens"] > text_only["usage"]["prompt_tokens"] + 200  # the image's tokens


def _model_error(client: Any, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(client.exceptions.ModelError) as info:
        invoke(client, endpoint, body)
    response: dict[str, Any] = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    return response


SECRET = "Ask-about-Zanzibar-42"  # in each refused request; no refusal may quote it


@pytest.mark.parametrize(
    ("endpoint", "body", "fragment"),
    [
        (
            LLAMA,
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG_URL}}]}]},
            "is not a multimodal model",
        ),
        (
            QWEN,
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@" + SECRET}}],
                    }
                ]
            },
            "not valid base64",
        ),
        (
            QWEN,
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image_url",
                                "image_url": {
                                    "url": "data:image/png;base64," + base64.b64encode(SECRET.encode()).decode()
                                },
                            }
                        ],
                    }
                ]
            },
            "cannot identify image file",
        ),
        (QWEN, {"messages": [user(SECRET), {"role": "tool", "content": "x"}]}, "tool_call_id"),
        (
            QWEN,
            {
                "messages": [user("x")],
                "tools": TOOLS,
                "tool_choice": {"type": "function", "function": {"name": SECRET}},
            },
            "does not match any of the specified `tools`",
        ),
        (QWEN, {"messages": [user(SECRET)], "tool_choice": "required"}, "`tools` must be set"),
        (
            QWEN,
            {
                "messages": [
                    user("x"),
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": SECRET}}],
                    },
                ]
            },
            "not valid JSON",
        ),
        (
            QWEN,
            {"messages": [user(SECRET)], "response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
            "json_schema.schema",
        ),
    ],
)
def test_vllm_refusals_are_400s_relayed_as_model_errors_without_the_request(
    shipped: Emulator, boto_client: Any, endpoint: str, body: dict[str, Any], fragment: str
) -> None:
    response = _model_error(boto_client("sagemaker-runtime", shipped[1].url), endpoint, body)
    assert response["OriginalStatusCode"] == 400
    assert fragment in response["OriginalMessage"]
    assert SECRET not in json.dumps(response)


def test_an_endpoint_without_a_tool_parser_refuses_auto_tool_choice(boto_client: Any) -> None:
    app = SageMakerRuntimeEmulator()
    app.register({"name": "plain", "payload_format": "openai", "capabilities": ["structured_output"]})
    with LoopbackServer(app) as server:
        client = boto_client("sagemaker-runtime", server.url)
        response = _model_error(client, "plain", {"messages": [user("x")], "tools": TOOLS})
        assert "--enable-auto-tool-choice" in response["OriginalMessage"]
        # A named function is decoded against its schema, which needs no parser.
        named = {"type": "function", "function": {"name": "get_time"}}
        doc = invoke(client, "plain", {"messages": [user("x")], "tools": TOOLS, "tool_choice": named})
        assert doc["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_time"


def _sse_docs(parts: list[bytes]) -> list[Any]:
    text = b"".join(parts).decode()
    data = [e.removeprefix("data: ") for e in text.split("\n\n") if e.strip()]
    return [d if d == "[DONE]" else json.loads(d) for d in data]


def test_streamed_tool_calls_arrive_as_vllm_streams_them(shipped: Emulator, boto_client: Any) -> None:
    body = {
        "messages": [user("get_weather and get_time in Lima")],
        "tools": TOOLS,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = boto_client("sagemaker-runtime", shipped[1].url).invoke_endpoint_with_response_stream(
        EndpointName=QWEN, Body=json.dumps(body), ContentType="application/json"
    )
    docs = _sse_docs([e["PayloadPart"]["Bytes"] for e in response["Body"]])
    assert docs[-1] == "[DONE]"
    chunks = docs[:-1]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    pieces = [p for c in chunks for ch in c["choices"] for p in ch["delta"].get("tool_calls", [])]
    firsts = [p for p in pieces if "id" in p]
    assert [(p["index"], p["function"]["name"]) for p in firsts] == [(0, "get_weather"), (1, "get_time")]
    assert all("id" not in p and set(p["function"]) == {"arguments"} for p in pieces if p not in firsts)
    assert len(pieces) > 4  # arguments come in pieces, not whole
    for index, name in ((0, "get_weather"), (1, "get_time")):
        arguments = "".join(p["function"].get("arguments", "") for p in pieces if p["index"] == index)
        jsonschema.validate(json.loads(arguments), SCHEMAS[name])
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["completion_tokens"] == len(pieces)


# --- the gateway's adapter against the emulator -----------------------------------------------


@pytest.fixture
def provider(shipped: Emulator, monkeypatch: pytest.MonkeyPatch) -> SageMakerEndpointProvider:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", shipped[1].url)
    settings = Settings(provider_connect_timeout_s=1, provider_read_timeout_s=5, provider_max_attempts=1)
    built = build_providers(settings)[Provider.SAGEMAKER]
    assert isinstance(built, SageMakerEndpointProvider)
    return built


def _table() -> RouteTable:
    return RouteTable.from_document(json.loads(ROUTES_FILE.read_text()))


WEATHER = ToolSpec("get_weather", "Weather", WEATHER_SCHEMA)


def test_the_adapter_round_trips_an_agent_turn_with_an_image(provider: SageMakerEndpointProvider) -> None:
    target = _table().targets["sm-qwen25-vl-7b"]
    asked = Message(Role.USER, [TextPart("What city is this, and its weather?"), ImagePart("image/png", PNG)])
    first = provider.complete(target, ChatRequest(model="qwen2.5-vl-7b", messages=(asked,), tools=(WEATHER,)))
    assert first.finish_reason is FinishReason.TOOL_CALLS
    (call,) = first.tool_calls
    jsonschema.validate(json.loads(call.arguments), WEATHER_SCHEMA)
    history = (asked, Message(Role.ASSISTANT, [call]), Message(Role.TOOL, [ToolResult(call.id, "Sunny, 25 degrees")]))
    second = provider.complete(target, ChatRequest(model="qwen2.5-vl-7b", messages=history, tools=(WEATHER,)))
    assert second.finish_reason is FinishReason.STOP
    assert "Sunny, 25 degrees" in second.text


def test_the_adapter_streams_forced_tool_calls_as_deltas(provider: SageMakerEndpointProvider) -> None:
    target = _table().targets["sm-llama3-8b-primary"]
    request = ChatRequest(
        model="llama3-8b",
        messages=(Message(Role.USER, "Weather?"),),
        tools=(WEATHER,),
        tool_choice=ToolChoice("function", "get_weather"),
        stream=True,
    )
    events = list(provider.stream(target, request))
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert deltas[0].id and deltas[0].name == "get_weather"
    assert {d.index for d in deltas} == {0}
    jsonschema.validate(json.loads("".join(d.arguments for d in deltas)), WEATHER_SCHEMA)
    end = events[-1]
    # The container said "stop" (a forced call); the adapter reports the turn as ending in tool calls.
    assert isinstance(end, StreamEnd) and end.finish_reason is FinishReason.TOOL_CALLS
    assert end.usage is not None and end.usage.output_tokens == len(deltas)


def test_the_adapter_maps_structured_output(provider: SageMakerEndpointProvider) -> None:
    target = _table().targets["sm-llama3-8b-primary"]
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    request = ChatRequest(
        model="llama3-8b",
        messages=(Message(Role.USER, "A number"),),
        response_format=ResponseFormat("json_schema", schema, name="n", strict=True),
    )
    jsonschema.validate(json.loads(provider.complete(target, request).text), schema)


def test_an_image_sent_to_a_text_only_endpoint_is_the_request_s_fault(provider: SageMakerEndpointProvider) -> None:
    # Routing never does this (llama3-8b has no images capability); if it did, the container refuses.
    target = _table().targets["sm-llama3-8b-primary"]
    asked = Message(Role.USER, [TextPart("What is this?"), ImagePart("image/png", PNG)])
    with pytest.raises(ProviderError) as info:
        provider.complete(target, ChatRequest(model="llama3-8b", messages=(asked,)))
    assert info.value.kind is ProviderFailureKind.INVALID_REQUEST


def test_tool_calls_in_history_reach_the_container_as_valid_json(provider: SageMakerEndpointProvider) -> None:
    target = _table().targets["sm-llama3-8b-primary"]
    history = (
        Message(Role.USER, "Weather?"),
        Message(Role.ASSISTANT, [ToolCall("c1", "get_weather", '{"city": "Oslo", "unit": "celsius"}')]),
        Message(Role.TOOL, [ToolResult("c1", "Cold")]),
    )
    completion = provider.complete(target, ChatRequest(model="llama3-8b", messages=history, tools=(WEATHER,)))
    assert "Tool results: Cold" in completion.text
