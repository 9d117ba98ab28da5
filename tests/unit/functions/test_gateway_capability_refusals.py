"""Issue 14 §4 through the gateway handler: a request needing what a SageMaker TGI target cannot
carry (tools, tool turns, images, structured output) never reaches it. When no target of the alias
has the capability the caller gets a 400 naming it; when a fallback has it, the fallback serves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from llmops.adapters.dynamodb.route_source import DEFAULT_ROUTES_FILE, FileRouteSource
from llmops.application.wiring import build_gateway
from llmops.config.env import Settings
from llmops.domain.chat import ChatRequest, Completion, FinishReason, Usage
from llmops.domain.routing import Provider, Target
from llmops.local.lambda_runtime import LocalLambdaContext, load_handler_module

TGI_ONLY = "mistral-7b-tgi-only"
PNG_URL = (  # a 1x1 PNG
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
)
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}


class RecordingProvider:
    """Answers every call and records which target each went to."""

    def __init__(self) -> None:
        self.targets: list[str] = []

    def complete(self, target: Target, request: ChatRequest, *args: Any, **kwargs: Any) -> Completion:
        self.targets.append(target.id)
        return Completion("A deterministic answer.", FinishReason.STOP, Usage(12, 8))


@pytest.fixture
def provider() -> RecordingProvider:
    return RecordingProvider()


@pytest.fixture
def gateway(provider: RecordingProvider, aws_settings: Settings, tmp_path: Path) -> Iterator[ModuleType]:
    # The shipped table plus an alias whose only target is the TGI one: no fallback can serve it.
    doc = json.loads(DEFAULT_ROUTES_FILE.read_text())
    doc["routes"][TGI_ONLY] = {"targets": [{"target": "sm-mistral-7b-tgi", "weight": 100}]}
    routes = tmp_path / "routes.json"
    routes.write_text(json.dumps(doc))
    module: Any = load_handler_module("gateway")
    module._runtime = build_gateway(
        aws_settings,
        routes=FileRouteSource(routes),
        providers={Provider.BEDROCK: provider, Provider.SAGEMAKER: provider},
    )
    yield module
    module._runtime = None


def _chat(gateway: ModuleType, load_event: Any, **fields: Any) -> tuple[int, dict[str, str], Any]:
    event: dict[str, Any] = load_event("chat_completion")
    body = {"messages": [{"role": "user", "content": "What is the weather in Paris?"}], **fields}
    event["body"] = json.dumps(body)
    result = gateway.handler(event, LocalLambdaContext("gateway"))
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    for k, values in (result.get("multiValueHeaders") or {}).items():
        headers[k.lower()] = values[-1]
    payload = result["body"]
    if headers.get("content-type", "").startswith("application/json"):
        payload = json.loads(payload)
    return result["statusCode"], headers, payload


ASSISTANT_CALL = {
    "role": "assistant",
    "content": None,
    "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}],
}


@pytest.mark.parametrize(
    ("fields", "capability", "param"),
    [
        ({"tools": [TOOL]}, "tools", "tools"),
        ({"tools": [TOOL], "stream": True}, "tools", "tools"),
        (
            {
                "messages": [
                    {"role": "user", "content": "Weather?"},
                    ASSISTANT_CALL,
                    {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
                ]
            },
            "tools",
            "tools",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG_URL}}]}]},
            "images",
            "messages",
        ),
        ({"response_format": {"type": "json_object"}}, "structured_output", "response_format"),
    ],
)
def test_a_tgi_alias_refuses_what_tgi_cannot_carry_naming_the_capability(
    gateway: ModuleType,
    provider: RecordingProvider,
    load_event: Any,
    fields: dict[str, Any],
    capability: str,
    param: str,
) -> None:
    status, _, body = _chat(gateway, load_event, model=TGI_ONLY, **fields)
    assert status == 400, body
    error = body["error"]
    assert error["code"] == "unsupported_capability"
    assert error["param"] == param
    assert f"supports {capability}, which the request needs" in error["message"]
    assert provider.targets == []  # refused before any model was called


def test_plain_text_on_the_tgi_alias_still_goes_to_tgi(
    gateway: ModuleType, provider: RecordingProvider, load_event: Any
) -> None:
    status, headers, _ = _chat(gateway, load_event, model=TGI_ONLY)
    assert status == 200
    assert provider.targets == ["sm-mistral-7b-tgi"]
    assert headers["x-llmops-target"] == "sagemaker:llmops-mistral-7b-tgi"


def test_the_shipped_tgi_alias_serves_tools_from_its_capable_fallback(
    gateway: ModuleType, provider: RecordingProvider, load_event: Any
) -> None:
    # mistral-7b falls back to Nova Lite, which has tools: the TGI target is skipped, not failed.
    status, headers, _ = _chat(gateway, load_event, model="mistral-7b", tools=[TOOL])
    assert status == 200
    assert provider.targets == ["bedrock-nova-lite"]
    assert headers["x-llmops-target"] == "bedrock:amazon.nova-lite-v1:0"
