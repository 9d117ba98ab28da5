"""Every gateway answer carries Server-Timing, and a model call's time is apart from the gateway's."""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

from llmops.local.lambda_runtime import LocalLambdaContext
from tests.fakes import read_to_end

_METRIC = re.compile(r"(\w+);dur=([0-9.]+)")


def _timing(module: ModuleType, event: dict[str, Any]) -> tuple[int, dict[str, float]]:
    result = read_to_end(module.handler(event, LocalLambdaContext("gateway")))
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    for k, values in (result.get("multiValueHeaders") or {}).items():
        headers[k.lower()] = values[-1]
    return result["statusCode"], {name: float(ms) for name, ms in _METRIC.findall(headers["server-timing"])}


def test_a_chat_completion_splits_gateway_and_provider_time(gateway: ModuleType, load_event: Any) -> None:
    status, timing = _timing(gateway, load_event("chat_completion"))
    assert status == 200
    assert set(timing) == {"gateway", "provider"}
    assert timing["gateway"] > 0 and timing["provider"] >= 0


def test_routes_that_call_no_model_and_refusals_carry_the_gateway_time(gateway: ModuleType, load_event: Any) -> None:
    for event in (
        load_event("health"),
        {**load_event("chat_completion"), "path": "/v1/nope", "resource": "/v1/{proxy+}"},
    ):
        status, timing = _timing(gateway, event)
        assert set(timing) == {"gateway"}, status
    refused = {**load_event("chat_completion"), "body": "{not json"}
    status, timing = _timing(gateway, refused)
    assert status == 400 and set(timing) == {"gateway"}


def test_a_stream_says_when_its_first_token_was_in_hand(gateway: ModuleType, load_event: Any) -> None:
    # The headers go out before the body: provider is the wait for the model's first event, and
    # ttft the invocation's time until then (gateway + provider).
    status, timing = _timing(gateway, load_event("chat_completion_stream"))
    assert status == 200
    assert set(timing) == {"gateway", "provider", "ttft"}
    assert abs(timing["ttft"] - (timing["gateway"] + timing["provider"])) <= 0.2
