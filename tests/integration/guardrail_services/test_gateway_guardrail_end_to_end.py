"""End to end through the gateway's Lambda handler, its real composition root and real botocore
clients, against the local Bedrock Runtime (Converse and ApplyGuardrail): a tenant policy naming a
guardrail changes the verdict. Its ApplyGuardrail check refuses what the guardrail blocks in the
prompt, in one call for all of a request's texts; and the same guardrail on the Converse call
(`guardrailConfig`) ending the answer is the caller's finish_reason "content_filter", in the audit
record as the provider's own verdict, streamed or not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import moto  # noqa: F401 - before any botocore session (an earlier test's): moto mocks only sessions made after
import pytest

from llmops.adapters.dynamodb.route_source import FileRouteSource
from llmops.application.wiring import build_gateway
from llmops.config.env import Settings
from llmops.local.emulators import BedrockRuntimeEmulator
from llmops.local.emulators.guardrail_services import EmulatedGuardrail, GuardrailServicesEmulator
from llmops.local.lambda_runtime import LocalLambdaContext, load_handler_module
from llmops.local.wsgi_server import LoopbackServer
from tests.fakes import read_to_end

GUARDRAIL_ID = "grstrict"
# It blocks a denied topic, and every emulated answer (they all start "Emulated answer from ...").
GUARDRAILS = {
    GUARDRAIL_ID: EmulatedGuardrail(
        denied_topics={"investment advice": ("which stocks",)},
        blocked_words=("emulated answer",),
        blocked_message="The guardrail stopped this answer.",
        versions=frozenset({"1"}),
    )
}
POLICY = {"bedrock_guardrail": {"guardrail_id": GUARDRAIL_ID, "version": "1"}}


class CountingEmulator:
    """The emulator, counting the ApplyGuardrail calls and the text blocks of each, by source."""

    def __init__(self) -> None:
        self.app = GuardrailServicesEmulator(
            guardrails=GUARDRAILS, fallback=BedrockRuntimeEmulator(guardrails=GUARDRAILS)
        )
        self.apply_calls: list[tuple[str, int]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if str(environ.get("PATH_INFO", "")).startswith("/guardrail/"):
            import io

            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            doc = json.loads(body)
            self.apply_calls.append((doc["source"], len(doc["content"])))
        return self.app(environ, start_response)


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingEmulator]:
    counting = CountingEmulator()
    server = LoopbackServer(counting).start()  # type: ignore[arg-type]
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", server.url)
    try:
        yield counting
    finally:
        server.stop()


def _gateway(aws_settings: Settings, policy: dict[str, Any]) -> Any:
    settings = aws_settings.model_copy(
        update={"guard_policies": json.dumps({"default": policy}), "granted_guardrails": GUARDRAIL_ID}
    )
    module: Any = load_handler_module("gateway")
    module._runtime = build_gateway(settings, routes=FileRouteSource())  # real Bedrock clients
    return module


def _chat(module: Any, load_event: Any, messages: list[dict[str, str]], **body: Any) -> tuple[int, Any]:
    event = load_event("chat_completion")
    event["body"] = json.dumps({"model": "chat-default", "messages": messages, "max_tokens": 64, **body})
    result = read_to_end(module.handler(event, LocalLambdaContext("gateway")))
    return result["statusCode"], result["body"]


def _audit_guard(module: Any, load_event: Any) -> list[tuple[str, str, dict[str, int]]]:
    """The request's audit record's guard verdicts: (stage, action, findings)."""
    request_id = load_event("chat_completion")["requestContext"]["requestId"]
    (record,) = module._runtime.audit.find_any_tenant(request_id)
    return [(v.stage, v.action, dict(v.findings)) for v in record.guard]


HELLO = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}]


def test_without_the_policy_the_answer_is_the_models(
    aws_settings: Settings, emulator: CountingEmulator, load_event: Any
) -> None:
    status, body = _chat(_gateway(aws_settings, {}), load_event, HELLO)
    assert status == 200
    choice = json.loads(body)["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["content"].startswith("Emulated answer")
    assert emulator.apply_calls == []


def test_the_guardrail_on_the_converse_call_ends_the_answer_with_content_filter(
    aws_settings: Settings, emulator: CountingEmulator, load_event: Any
) -> None:
    module = _gateway(aws_settings, POLICY)
    status, body = _chat(module, load_event, HELLO)
    assert status == 200
    choice = json.loads(body)["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["content"] == "The guardrail stopped this answer."
    # The prompt's two texts in one ApplyGuardrail call; the completion in another.
    assert emulator.apply_calls == [("INPUT", 2), ("OUTPUT", 1)]
    assert _audit_guard(module, load_event) == [
        ("input", "allow", {}),
        ("provider", "intervened", {}),
        ("output", "allow", {}),
    ]


def test_a_streamed_answer_ends_so_too(aws_settings: Settings, emulator: CountingEmulator, load_event: Any) -> None:
    module = _gateway(aws_settings, POLICY)
    status, body = _chat(module, load_event, HELLO, stream=True)
    assert status == 200
    chunks = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: {")]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    reasons = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert text == "The guardrail stopped this answer."
    assert reasons == ["content_filter"]
    assert ("provider", "intervened", {}) in _audit_guard(module, load_event)


def test_the_apply_guardrail_check_refuses_a_blocked_prompt_before_the_model(
    aws_settings: Settings, emulator: CountingEmulator, load_event: Any
) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hello."},
        {"role": "assistant", "content": "Hi."},
        {"role": "user", "content": "Which stocks should I buy?"},
    ]
    module = _gateway(aws_settings, POLICY)
    status, body = _chat(module, load_event, messages)
    assert status == 400
    assert json.loads(body)["error"]["code"] == "content_blocked"
    assert emulator.apply_calls == [("INPUT", 4)]  # one call for the four texts; no model call, no output
    # One assessment per block came back, so the denied topic is the last message's alone.
    assert _audit_guard(module, load_event) == [("input", "block", {"DENIED_TOPIC": 1})]
