"""`--forward-url` for the SageMaker emulator's OpenAI dialect: tools, images, tool turns and
response_format go to the OpenAI-compatible upstream as they are, and its tool calls, reasoning and
cached-token counts come back in vLLM's shapes, buffered and streamed."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from llmops.adapters.sagemaker.client import SageMakerEndpointProvider
from llmops.application.wiring import build_providers
from llmops.config.env import Settings
from llmops.domain.chat import (
    Capability,
    ChatRequest,
    FinishReason,
    ImagePart,
    Message,
    Reasoning,
    Role,
    TextPart,
    ToolCall,
    ToolSpec,
)
from llmops.domain.routing import Provider, Target
from llmops.domain.streaming import ReasoningDelta, StreamEnd, ToolCallDelta
from llmops.local.emulators import OpenAICompatibleForwarder, SageMakerRuntimeEmulator
from llmops.local.wsgi_server import LoopbackServer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 8
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]
ANSWER = {
    "model": "upstream-model",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "reasoning_content": "Look it up.",
                "tool_calls": [
                    {"id": "call_up", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 40, "completion_tokens": 6, "prompt_tokens_details": {"cached_tokens": 16}},
}
# As ollama streams a parallel batch: every call at index 0, told apart by its id.
CHUNKS = [
    {"choices": [{"index": 0, "delta": {"role": "assistant", "reasoning": "Two lookups."}, "finish_reason": None}]},
    {
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "a",
                            "type": "function",
                            "function": {"name": "lookup", "arguments": '{"q": '},
                        }
                    ]
                },
                "finish_reason": None,
            }
        ]
    },
    {
        "choices": [
            {
                "index": 0,
                "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '"x"}'}}]},
                "finish_reason": None,
            }
        ]
    },
    {
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {"index": 0, "id": "b", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
                    ]
                },
                "finish_reason": None,
            }
        ]
    },
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    {"choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 5}},
]


class ToolCallingUpstream:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        body = json.loads(request.get_data())
        self.bodies.append(body)
        if body.get("stream"):
            events = [f"data: {json.dumps(c)}\n\n".encode() for c in CHUNKS] + [b"data: [DONE]\n\n"]
            response = Response(iter(events), mimetype="text/event-stream", direct_passthrough=True)
        else:
            response = Response(json.dumps(ANSWER), mimetype="application/json")
        return response(environ, start_response)


@pytest.fixture
def forwarded(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ToolCallingUpstream, LoopbackServer]]:
    fake = ToolCallingUpstream()
    with LoopbackServer(fake) as upstream:
        forwarder = OpenAICompatibleForwarder(f"{upstream.url}/v1", model="qwen2.5vl:7b", timeout_s=5)
        with LoopbackServer(SageMakerRuntimeEmulator(forwarder=forwarder)) as server:
            monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", server.url)
            yield fake, server


def test_the_body_goes_upstream_as_it_is_and_the_answer_comes_back(
    forwarded: tuple[ToolCallingUpstream, LoopbackServer], boto_client: Any
) -> None:
    fake, server = forwarded
    image_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Find it"},
                    {"type": "image_url", "image_url": {"url": image_url}},
                ],
            },
        ],
        "tools": TOOLS,
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "response_format": {"type": "json_object"},
        "max_tokens": 50,
    }
    response = boto_client("sagemaker-runtime", server.url).invoke_endpoint(
        EndpointName="any", Body=json.dumps(body), ContentType="application/json", Accept="application/json"
    )
    doc = json.loads(response["Body"].read())
    (sent,) = fake.bodies
    assert sent == {**body, "model": "qwen2.5vl:7b", "stream": False}
    message = doc["choices"][0]["message"]
    assert message["tool_calls"] == ANSWER["choices"][0]["message"]["tool_calls"]  # type: ignore[index]
    assert message["content"] is None and message["reasoning_content"] == "Look it up."
    assert doc["choices"][0]["finish_reason"] == "tool_calls"
    assert doc["usage"]["prompt_tokens_details"] == {"cached_tokens": 16}


def _target() -> Target:
    return Target(
        id="sm-any",
        provider=Provider.SAGEMAKER,
        endpoint_name="any",
        price_per_1k_input_usd=0.0,
        price_per_1k_output_usd=0.0,
        context_window=8192,
        capabilities=frozenset({Capability.TOOLS, Capability.IMAGES}),
    )


def _provider() -> SageMakerEndpointProvider:
    settings = Settings(provider_connect_timeout_s=1, provider_read_timeout_s=5, provider_max_attempts=1)
    built = build_providers(settings)[Provider.SAGEMAKER]
    assert isinstance(built, SageMakerEndpointProvider)
    return built


def test_the_adapter_reads_a_forwarded_answer(forwarded: tuple[ToolCallingUpstream, LoopbackServer]) -> None:
    asked = Message(Role.USER, [TextPart("Find it"), ImagePart("image/png", PNG)])
    request = ChatRequest(model="m", messages=(asked,), tools=(ToolSpec("lookup"),))
    completion = _provider().complete(_target(), request)
    assert completion.tool_calls == (ToolCall("call_up", "lookup", '{"q": "x"}'),)
    assert completion.reasoning == (Reasoning("Look it up."),)
    assert completion.finish_reason is FinishReason.TOOL_CALLS
    assert completion.usage.cache_read_tokens == 16
    sent = forwarded[0].bodies[0]
    assert sent["messages"][0]["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert sent["tools"][0]["function"]["name"] == "lookup"


def test_a_forwarded_stream_of_tool_calls_reaches_the_adapter_as_deltas(
    forwarded: tuple[ToolCallingUpstream, LoopbackServer],
) -> None:
    request = ChatRequest(
        model="m", messages=(Message(Role.USER, "Find both"),), tools=(ToolSpec("lookup"),), stream=True
    )
    events = list(_provider().stream(_target(), request))
    assert forwarded[0].bodies[0]["stream"] is True
    assert events[0] == ReasoningDelta("Two lookups.")
    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    assert [(c.index, c.id, c.name, c.arguments) for c in calls] == [
        (0, "a", "lookup", '{"q": '),
        (0, None, None, '"x"}'),
        (1, "b", "lookup", "{}"),
    ]
    end = events[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason is FinishReason.TOOL_CALLS
    assert end.usage is not None and (end.usage.input_tokens, end.usage.output_tokens) == (30, 5)
