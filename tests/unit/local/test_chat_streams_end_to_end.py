"""Issue 13's "done when": a slow streaming upstream through the entry point Lambda runs (the local front
door -> the emulated Runtime API -> our runtime loop -> functions/gateway/handler.py -> the chat
endpoint) reaches the client token by token, not at the end.

The upstream sends its first token at ~100 ms and 20 tokens 100 ms apart, so the whole answer takes
over 2 s; the first chunk must arrive within 0.5 s, and the text must keep arriving while the
upstream is still generating: the output guard holds prose back by one word (the next one could
still pull it into a finding), so each token frees the one before it.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from llmops.local.front_door import FrontDoor
from llmops.local.wsgi_server import LoopbackServer
from tests.fakes import FakeStreamingProvider

_WORDS = ("the", "gateway", "streams", "every", "token", "of", "this", "slow", "answer", "as", "it", "comes")
TOKENS = [f"{_WORDS[i % len(_WORDS)]} " for i in range(20)]
FIRST_TOKEN_S = TOKEN_GAP_S = 0.1


@pytest.fixture
def fake_provider() -> FakeStreamingProvider:
    return FakeStreamingProvider(deltas=TOKENS, first_delay_s=FIRST_TOKEN_S, delay_s=TOKEN_GAP_S)


@pytest.fixture
def server(gateway: ModuleType, load_event: Any) -> Iterator[LoopbackServer]:
    context = load_event("chat_completion")["requestContext"]["authorizer"]
    tenant = {k: v for k, v in context.items() if k != "principalId"}
    front = FrontDoor()
    front._authorizer = SimpleNamespace(  # type: ignore[assignment]
        handler=lambda event, ctx: {"principalId": context["principalId"], "context": tenant}
    )
    started = LoopbackServer(front).start()
    yield started
    started.stop()


def _timed_events(response: http.client.HTTPResponse, started: float) -> list[tuple[float, Any]]:
    """Each SSE event with the moment (seconds after `started`) its bytes reached the client."""
    events: list[tuple[float, Any]] = []
    buffer = b""
    while chunk := response.read1(65536):
        at = time.monotonic() - started
        buffer += chunk
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            data = event.decode().removeprefix("data: ")
            events.append((at, data if data == "[DONE]" else json.loads(data)))
    return events


def _post(server: LoopbackServer, body: dict[str, Any]) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    connection.request("POST", "/v1/chat/completions", body=json.dumps(body), headers={"Authorization": "Bearer k"})
    return connection.getresponse()


def test_a_slow_upstream_streams_through_the_lambda_entry_point(server: LoopbackServer) -> None:
    messages = [{"role": "user", "content": "hi"}]
    # A warm environment, as Lambda's after its first invocation (the buffered answer is instant).
    assert _post(server, {"model": "chat-default", "messages": messages}).read()
    started = time.monotonic()
    response = _post(server, {"model": "chat-default", "stream": True, "messages": messages})
    assert response.status == 200
    assert response.getheader("Content-Type", "").startswith("text/event-stream")
    events = _timed_events(response, started)

    first_at, first = events[0]
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert first_at < 0.5, f"the first chunk took {first_at:.2f} s"
    done_at, done = events[-1]
    assert done == "[DONE]"
    assert done_at >= FIRST_TOKEN_S + TOKEN_GAP_S * (len(TOKENS) - 1), "the upstream's pace was not kept"

    content = [(at, e["choices"][0]["delta"]["content"]) for at, e in events[1:-1] if e["choices"][0]["delta"]]
    assert "".join(text for _, text in content) == "".join(TOKENS)
    # Text arrives while the upstream is still generating, a word behind it.
    assert content[0][0] < 0.5, f"the first text took {content[0][0]:.2f} s"
    assert len({round(at, 1) for at, _ in content}) >= 15, "the text arrived in a few bursts, not token by token"
