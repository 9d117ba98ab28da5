"""The official openai SDK streaming through `llmops serve`: the emulators stream (ConverseStream,
InvokeEndpointWithResponseStream), the front door relays the gateway function's streamed response
chunk by chunk, and a failure mid-stream reaches the SDK as `openai.APIError`."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local_stack")]

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
# Twelve words: the emulators echo up to twelve, then add 12-24 of their own, one token each.
QUESTION = "Please list the colours of the rainbow in order from red to violet"


def _messages(question: str = QUESTION) -> list[Any]:
    return [{"role": "system", "content": "You are a concise assistant."}, {"role": "user", "content": question}]


@contextmanager
def _faults(emulator_url: str, key: str, **plan: Any) -> Iterator[None]:
    def post(payload: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"{emulator_url}/_emulator/faults",
            data=json.dumps({"key": key, **payload}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5):
            pass

    post(plan)
    try:
        yield
    finally:
        post({"clear": True})


@pytest.mark.parametrize("alias", ["chat-default", "llama3-8b", "mistral-7b"])
def test_a_stream_assembles_the_non_streamed_answer(client: openai.OpenAI, alias: str) -> None:
    plain = client.chat.completions.create(model=alias, messages=_messages())
    chunks = list(
        client.chat.completions.create(
            model=alias, messages=_messages(), stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == plain.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        plain.choices[0].finish_reason
    ]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert plain.usage is not None and chunks[-1].usage.completion_tokens == plain.usage.completion_tokens


def test_a_slow_upstream_streams_token_by_token(client: openai.OpenAI, local_stack: dict[str, Any]) -> None:
    with _faults(local_stack["bedrock_runtime_url"], HAIKU, first_token_latency_ms=0, token_latency_ms=100):
        started = time.monotonic()
        arrivals: list[tuple[float, str]] = []
        for chunk in client.chat.completions.create(model="chat-default", messages=_messages(), stream=True):
            if chunk.choices:
                arrivals.append((time.monotonic() - started, chunk.choices[0].delta.content or ""))
    total = arrivals[-1][0]
    tokens = len("".join(text for _, text in arrivals).split())
    assert tokens >= 20 and total >= 0.1 * tokens, "the emulator's pace was not kept"
    assert arrivals[0][0] < 0.5 + 0.1, f"the first chunk took {arrivals[0][0]:.2f} s of {total:.2f} s"
    first_text = next(at for at, text in arrivals if text)
    assert first_text < total - 0.5, "the text arrived only at the end"


def test_a_mid_stream_failure_raises_api_error_in_the_sdk(client: openai.OpenAI, local_stack: dict[str, Any]) -> None:
    with _faults(local_stack["bedrock_runtime_url"], HAIKU, error_rate=1.0, fault_after_tokens=5):
        stream = client.chat.completions.create(model="chat-default", messages=_messages(), stream=True)
        received: list[str] = []
        with pytest.raises(openai.APIError) as raised:
            for chunk in stream:
                received.extend(c.delta.content or "" for c in chunk.choices)
    assert "failed while streaming" in raised.value.message
    assert "chat-default" in raised.value.message


def test_a_failure_before_the_first_token_falls_back(client: openai.OpenAI, local_stack: dict[str, Any]) -> None:
    with _faults(local_stack["bedrock_runtime_url"], HAIKU, throttle_rate=1.0):
        raw = client.chat.completions.with_raw_response.create(model="chat-default", messages=_messages(), stream=True)
        assert raw.headers["x-llmops-target"] == "bedrock:amazon.nova-lite-v1:0"
        assert "x-llmops-cost-usd" not in raw.headers
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text.startswith("Emulated answer from")
