"""The gateway handler end to end on API Gateway proxy events, with scripted providers."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from llmops.adapters.dynamodb.call_counter import DynamoCallCounter
from llmops.config.env import Settings
from llmops.local.lambda_runtime import LocalLambdaContext
from tests.fakes import DEFAULT_ANSWER, FakeProvider, read_to_end


@pytest.fixture
def gateway_settings(aws_settings: Settings) -> Settings:
    # Small enough for test_oversized_body_is_413 to build its body quickly.
    return aws_settings.model_copy(update={"max_body_bytes": 4096})


def _invoke(module: ModuleType, event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    result = read_to_end(module.handler(event, LocalLambdaContext("gateway")))
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    for k, values in (result.get("multiValueHeaders") or {}).items():
        headers[k.lower()] = values[-1]
    body = result["body"]
    if headers.get("content-type", "").startswith("application/json"):
        body = json.loads(body)
    return result["statusCode"], headers, body


def _with_body(event: dict[str, Any], body: Any) -> dict[str, Any]:
    return {**event, "body": body if isinstance(body, str) else json.dumps(body)}


def test_chat_completion_has_openai_shape_and_provenance(gateway: ModuleType, load_event: Any) -> None:
    status, headers, body = _invoke(gateway, load_event("chat_completion"))
    assert status == 200
    assert body["object"] == "chat.completion"
    assert body["model"] == "chat-default"
    # The model's answer, unchanged: it holds nothing the output guard redacts.
    assert body["choices"][0]["message"] == {"role": "assistant", "content": DEFAULT_ANSWER, "refusal": None}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20}
    assert headers["x-request-id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    assert headers["x-llmops-route"] == "chat-default"
    assert headers["x-llmops-target"] == "bedrock:anthropic.claude-3-5-haiku-20241022-v1:0"
    assert float(headers["x-llmops-cost-usd"]) > 0


def test_streaming_returns_well_formed_sse(gateway: ModuleType, load_event: Any) -> None:
    status, headers, body = _invoke(gateway, load_event("chat_completion_stream"))
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    events = [line.removeprefix("data: ") for line in body.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == DEFAULT_ANSWER
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["total_tokens"] == 20


def test_models_lists_aliases(gateway: ModuleType, load_event: Any) -> None:
    status, _, body = _invoke(gateway, load_event("list_models"))
    assert status == 200
    assert {m["id"] for m in body["data"]} >= {"chat-default", "llama3-8b"}


def test_health_needs_no_tenant(gateway: ModuleType, load_event: Any) -> None:
    status, _, body = _invoke(gateway, load_event("health"))
    assert (status, body) == (200, {"status": "ok"})


def test_throttled_primary_falls_back(gateway: ModuleType, fake_provider: FakeProvider, load_event: Any) -> None:
    fake_provider.failing.add("bedrock-claude-haiku")
    status, headers, _ = _invoke(gateway, load_event("chat_completion"))
    assert status == 200
    assert headers["x-llmops-target"] == "bedrock:amazon.nova-lite-v1:0"
    assert fake_provider.calls == ["bedrock-claude-haiku", "bedrock-nova-lite"]


def test_all_targets_throttled_is_503_with_retry_after(
    gateway: ModuleType, fake_provider: FakeProvider, load_event: Any
) -> None:
    fake_provider.failing.update({"bedrock-claude-haiku", "bedrock-nova-lite"})
    status, headers, body = _invoke(gateway, load_event("chat_completion"))
    assert status == 503
    assert headers["retry-after"] == "1"
    assert "chat-default" in body["error"]["message"]


BAD_BODIES = [
    ("{not json", 400, None, "invalid_json"),
    ({"messages": [{"role": "user", "content": "x"}]}, 400, "model", "missing_required_parameter"),
    ({"model": "chat-default", "messages": []}, 400, "messages", "invalid_request"),
    (
        {"model": "chat-default", "messages": [{"role": "wizard", "content": "x"}]},
        400,
        "messages[0].role",
        "invalid_value",
    ),
    ({"model": "chat-default", "messages": "hello"}, 400, "messages", "invalid_value"),
    (
        {"model": "chat-default", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
        400,
        "temperature",
        "invalid_value",
    ),
    (
        {"model": "chat-default", "messages": [{"role": "user", "content": "x"}], "n": 2},
        400,
        "n",
        "invalid_request",
    ),
    (
        {
            "model": "chat-default",
            "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function"}],
        },
        400,
        "tools[0].function",
        "missing_required_parameter",
    ),
    (
        {
            "model": "chat-default",
            "messages": [{"role": "user", "content": "x"}],
            "tool_choice": {"type": "function", "function": {"name": "nope"}},
            "tools": [{"type": "function", "function": {"name": "get_weather"}}],
        },
        400,
        "tool_choice",
        "invalid_value",
    ),
    (
        {
            "model": "chat-default",
            # Remote image URLs are refused unless the tenant's content policy allows them.
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]}],
        },
        400,
        "messages[0].content[0].image_url",
        "invalid_request",
    ),
    (
        {"model": "chat-default", "messages": [{"role": "system", "content": "only system"}]},
        400,
        "messages",
        "invalid_request",
    ),
    (
        {"model": "gpt-unknown", "messages": [{"role": "user", "content": "x"}]},
        404,
        "model",
        "model_not_found",
    ),
    (
        {"model": "chat-default", "messages": [{"role": "user", "content": "x"}], "max_tokens": 10_000_000},
        400,
        "max_tokens",
        "context_length_exceeded",
    ),
    (
        {"model": "chat-default", "messages": [{"role": "user", "content": "x"}], "bogus": 1},
        400,
        "bogus",
        "unknown_parameter",
    ),
]


@pytest.mark.parametrize(("body", "status", "param", "code"), BAD_BODIES)
def test_bad_input_gets_openai_error_shape(
    gateway: ModuleType, load_event: Any, body: Any, status: int, param: str | None, code: str
) -> None:
    got_status, _, got = _invoke(gateway, _with_body(load_event("chat_completion"), body))
    assert got_status == status, got
    assert set(got["error"]) == {"message", "type", "code", "param"}
    assert got["error"]["code"] == code
    assert got["error"]["param"] == param


def test_oversized_body_is_413(gateway: ModuleType, load_event: Any) -> None:
    big = {"model": "chat-default", "messages": [{"role": "user", "content": "x" * 5000}]}
    status, headers, body = _invoke(gateway, _with_body(load_event("chat_completion"), big))
    assert status == 413
    assert body["error"]["code"] == "request_too_large"
    assert headers["x-request-id"]


def test_missing_tenant_context_is_401(gateway: ModuleType, load_event: Any) -> None:
    event = load_event("chat_completion")
    event["requestContext"]["authorizer"] = None
    status, _, body = _invoke(gateway, event)
    assert status == 401
    assert body["error"]["code"] == "invalid_api_key"


def test_unknown_route_is_openai_404(gateway: ModuleType, load_event: Any) -> None:
    status, _, body = _invoke(gateway, {**load_event("list_models"), "path": "/v1/nope"})
    assert status == 404
    assert body["error"]["code"] == "not_found"


def test_unexpected_failure_is_500_without_details(
    gateway: ModuleType, fake_provider: FakeProvider, load_event: Any
) -> None:
    raised: list[RuntimeError] = []

    def explode() -> None:
        raised.append(RuntimeError("secret internal detail"))
        raise raised[-1]

    fake_provider.on_call = explode
    status, _, body = _invoke(gateway, load_event("chat_completion"))
    assert raised, "the provider raised the unexpected error (not some other failure on the way)"
    assert status == 500
    assert "secret" not in json.dumps(body)
    assert set(body["error"]) == {"message", "type", "code", "param"}
    assert body["error"]["code"] == "internal_error"


@pytest.mark.parametrize("event_name", ["chat_completion", "chat_completion_stream"])
def test_an_admitted_request_writes_the_reserve_then_its_settle_with_its_audit_record(
    gateway: ModuleType, load_event: Any, event_name: str
) -> None:
    counter = DynamoCallCounter().attach(gateway._runtime.ledger._client)
    event = load_event(event_name)
    body = {**json.loads(event["body"]), "temperature": 0.7}  # not cacheable: no cache write to count
    event["body"] = json.dumps(body)
    event["requestContext"]["authorizer"]["limits"] = json.dumps({"rpm": 100, "tpm": 100_000})
    status, _, _ = _invoke(gateway, event)
    assert status == 200
    assert counter.calls.get("TransactWriteItems") == 2, counter.calls  # the reserve; the settle + the record
    assert counter.writes == 2, counter.calls
    record = gateway._runtime.audit.get("dev", event["requestContext"]["requestId"])
    assert record is not None and not record.settle_pending


def test_a_refused_request_writes_its_audit_record_alone(gateway: ModuleType, load_event: Any) -> None:
    counter = DynamoCallCounter().attach(gateway._runtime.ledger._client)
    status, _, _ = _invoke(gateway, _with_body(load_event("chat_completion"), {"model": "chat-default"}))
    assert status == 400
    assert counter.writes == 1 and counter.calls.get("TransactWriteItems") == 1, counter.calls
