"""The gateway handler with a guard policy naming a guardrail the stack does not grant: the real
composition root never calls it, and the policy's fail mode answers (503 guard_unavailable in the
OpenAI error shape with Retry-After, or the answer with the failure audited)."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from llmops.config.env import Settings
from llmops.local.lambda_runtime import LocalLambdaContext
from tests.fakes import FakeProvider, read_to_end

GUARDRAIL = {"guardrail_id": "gr1abc", "version": "1"}


def _settings(aws_settings: Settings, fail_mode: str) -> Settings:
    policy = {"default": {"bedrock_guardrail": {**GUARDRAIL, "fail_mode": fail_mode}}}
    # The stack grants no guardrail (CDK's "none"): the gateway must not call this one.
    return aws_settings.model_copy(update={"guard_policies": json.dumps(policy), "granted_guardrails": "none"})


@pytest.fixture(params=["closed"])
def gateway_settings(aws_settings: Settings, request: pytest.FixtureRequest) -> Settings:
    return _settings(aws_settings, request.param)


def _invoke(module: ModuleType, event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    result = read_to_end(module.handler(event, LocalLambdaContext("gateway")))
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    for k, values in (result.get("multiValueHeaders") or {}).items():
        headers[k.lower()] = values[-1]
    return result["statusCode"], headers, json.loads(result["body"])


def test_fail_closed_is_a_503_guard_unavailable_in_the_openai_shape(
    gateway: ModuleType, fake_provider: FakeProvider, load_event: Any
) -> None:
    status, headers, body = _invoke(gateway, load_event("chat_completion"))
    assert status == 503
    assert headers["retry-after"] == "1"
    assert body["error"]["code"] == "guard_unavailable"
    assert body["error"]["type"] == "api_error"
    assert "bedrock_guardrail" in body["error"]["message"]
    assert fake_provider.calls == []  # the model never saw the unchecked prompt


@pytest.mark.parametrize("gateway_settings", ["open"], indirect=True)
def test_fail_open_answers(gateway: ModuleType, fake_provider: FakeProvider, load_event: Any) -> None:
    status, _, body = _invoke(gateway, load_event("chat_completion"))
    assert status == 200
    assert body["choices"][0]["message"]["content"]
    assert len(fake_provider.calls) == 1
    # not granted: no guardrailConfig on the model call either (Bedrock would deny the whole call)
    assert "guardrailConfig" not in fake_provider.requests[0].provider_options
