"""The local front door runs the gateway through our runtime loop on an emulated Runtime API, and
relays a streamed answer to the HTTP client chunk by chunk, as API Gateway's STREAM integration does.

Orderings, not speeds: a producer waits until the client has seen its first chunk before it yields
the next, so a front door that buffered would fail by timing out, not by being a little slow.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from llmops.application.responses import ApiResponse
from llmops.config.edge_responses import edge_response
from llmops.lambda_runtime import StreamingResponse
from llmops.local.front_door import INTEGRATION_TIMEOUT_BODY, FrontDoor
from llmops.local.wsgi_server import LoopbackServer

WAIT_S = 5.0
SSE = {"Content-Type": "text/event-stream"}


def _serve(handler: Any, *, timeout_s: float = 30.0, authorizer: Any = None) -> LoopbackServer:
    front = FrontDoor(gateway_timeout_s=timeout_s)
    front._gateway = SimpleNamespace(handler=handler)  # type: ignore[assignment]
    if authorizer is not None:
        front._authorizer = SimpleNamespace(handler=authorizer)  # type: ignore[assignment]
    return LoopbackServer(front).start()


def _get(server: LoopbackServer, path: str = "/health", **kwargs: Any) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=WAIT_S * 2)
    connection.request(kwargs.pop("method", "GET"), path, **kwargs)
    return connection.getresponse()


@pytest.fixture
def servers() -> Iterator[list[LoopbackServer]]:
    started: list[LoopbackServer] = []
    yield started
    for server in started:
        server.stop()


def test_the_first_chunk_reaches_the_client_before_the_stream_ends(servers: list[LoopbackServer]) -> None:
    client_saw_first = threading.Event()
    waited: list[bool] = []

    def produce() -> Iterator[bytes]:
        yield b"data: 1\n\n"
        waited.append(client_saw_first.wait(WAIT_S))
        yield b"data: 2\n\n"

    servers.append(server := _serve(lambda event, context: StreamingResponse(200, {**SSE, "x-a": "b"}, produce())))
    response = _get(server)
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/event-stream"
    assert response.getheader("x-a") == "b"
    assert response.read1(65536) == b"data: 1\n\n"
    client_saw_first.set()
    assert response.read() == b"data: 2\n\n"
    assert waited == [True], "the second chunk was produced before the client had the first"


def test_a_buffered_proxy_result_is_answered_as_before(servers: list[LoopbackServer]) -> None:
    result = {
        "statusCode": 418,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"x-request-id": ["r-1"]},
        "body": '{"ok":true}',
        "isBase64Encoded": False,
    }
    servers.append(server := _serve(lambda event, context: result))
    response = _get(server)
    assert (response.status, response.getheader("x-request-id")) == (418, "r-1")
    assert json.loads(response.read()) == {"ok": True}


def test_the_function_timeout_before_the_prelude_is_api_gateways_504(servers: list[LoopbackServer]) -> None:
    def slow(event: Any, context: Any) -> dict[str, Any]:
        time.sleep(1.0)
        return {"statusCode": 200, "body": "too late"}

    servers.append(server := _serve(slow, timeout_s=0.3))
    started = time.monotonic()
    response = _get(server)
    assert response.status == 504
    assert json.loads(response.read()) == INTEGRATION_TIMEOUT_BODY
    assert time.monotonic() - started < 1.0, "answered at the deadline, not when the handler finished"


def test_a_handler_exception_is_api_gateways_502(servers: list[LoopbackServer]) -> None:
    def broken(event: Any, context: Any) -> dict[str, Any]:
        raise RuntimeError("boom")

    servers.append(server := _serve(broken))
    response = _get(server)
    assert response.status == 502
    assert json.loads(response.read()) == edge_response("DEFAULT_5XX").body()


def test_a_stream_failing_mid_way_is_cut_short_for_the_client(servers: list[LoopbackServer]) -> None:
    def produce() -> Iterator[bytes]:
        yield b"data: 1\n\n"
        raise ConnectionError("the provider went away")

    servers.append(server := _serve(lambda event, context: StreamingResponse(200, SSE, produce())))
    response = _get(server)
    assert response.status == 200
    with pytest.raises(http.client.IncompleteRead):
        response.read()


def test_a_client_that_goes_away_closes_the_producer(servers: list[LoopbackServer]) -> None:
    closed = threading.Event()

    def produce() -> Iterator[bytes]:
        try:
            for _ in range(500):
                yield b"data: token\n\n"
                time.sleep(0.02)
        finally:
            closed.set()

    servers.append(server := _serve(lambda event, context: StreamingResponse(200, SSE, produce())))
    response = _get(server)
    assert response.read1(65536).startswith(b"data: token")
    response.close()  # the client hangs up mid-stream
    assert closed.wait(WAIT_S), "the producer was not closed after the client went away"


def test_the_real_gateway_handler_streams_a_routes_stream(
    gateway: ModuleType, load_event: Any, monkeypatch: pytest.MonkeyPatch, servers: list[LoopbackServer]
) -> None:
    """functions/gateway/handler.py, through the loop and the front door: a route's ApiResponse.stream."""
    client_saw_first = threading.Event()
    waited: list[bool] = []

    def pieces() -> Iterator[str]:
        yield 'data: {"n":1}\n\n'
        waited.append(client_saw_first.wait(WAIT_S))
        yield "data: [DONE]\n\n"

    def handle(self: Any, *args: Any) -> ApiResponse:
        return ApiResponse(200, "", "text/event-stream", {"x-llmops-route": "fake"}, stream=pieces())

    monkeypatch.setattr(type(gateway.runtime().chat), "handle", handle)
    context = load_event("chat_completion")["requestContext"]["authorizer"]
    tenant = {k: v for k, v in context.items() if k != "principalId"}
    front = FrontDoor()
    front._authorizer = SimpleNamespace(  # type: ignore[assignment]
        handler=lambda event, ctx: {"principalId": context["principalId"], "context": tenant}
    )
    servers.append(server := LoopbackServer(front).start())
    body = json.dumps({"model": "chat", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    response = _get(server, "/v1/chat/completions", method="POST", body=body, headers={"Authorization": "Bearer k"})
    assert response.status == 200
    assert response.getheader("Content-Type", "").startswith("text/event-stream")
    assert response.getheader("x-llmops-route") == "fake"
    assert response.getheader("x-request-id")
    assert response.read1(65536) == b'data: {"n":1}\n\n'
    client_saw_first.set()
    assert response.read() == b"data: [DONE]\n\n"
    assert waited == [True]
