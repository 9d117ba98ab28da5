"""The local stack's servers keep connections alive, as the AWS endpoints and API Gateway do, and
close them whenever a response could leave the connection in an unknown state."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from llmops.local.wsgi_server import LoopbackServer


class Echo:
    """Answers with the client's port; `/ignore-body` never reads the body, `/broken` fails mid-stream."""

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        port = str(environ["REMOTE_PORT"]).encode()
        if request.path == "/broken":
            return Response(self._broken(port), direct_passthrough=True)(environ, start_response)
        if request.path != "/ignore-body":
            request.get_data()
        return Response(port)(environ, start_response)

    @staticmethod
    def _broken(port: bytes) -> Iterator[bytes]:
        yield port
        raise RuntimeError("the stream fails after its first chunk")


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(Echo()) as running:
        yield running


def _post(connection: http.client.HTTPConnection, path: str, body: bytes = b"{}") -> tuple[bytes, bool]:
    connection.request("POST", path, body=body)
    response = connection.getresponse()
    return response.read(), response.will_close


def test_one_connection_carries_many_requests(server: LoopbackServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    answers = [_post(connection, "/") for _ in range(3)]
    assert len({port for port, _ in answers}) == 1
    assert not any(will_close for _, will_close in answers)


def test_a_body_the_app_did_not_read_is_drained_before_the_next_request(server: LoopbackServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    first, _ = _post(connection, "/ignore-body", b"x" * 100_000)
    second, _ = _post(connection, "/")
    assert first == second  # same connection, and the next request line was read correctly


def test_a_client_asking_to_close_gets_its_connection_closed(server: LoopbackServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("POST", "/", body=b"{}", headers={"Connection": "close"})
    response = connection.getresponse()
    response.read()
    assert response.will_close


def test_a_stream_that_fails_midway_closes_its_connection(server: LoopbackServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("POST", "/broken", body=b"x" * 100_000)  # left unread by the failing app
    response = connection.getresponse()
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        response.read()


def test_stopping_the_server_cuts_its_idle_connections() -> None:
    running = LoopbackServer(Echo()).start()
    connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=5)
    _post(connection, "/")
    running.stop()
    with pytest.raises((ConnectionError, http.client.HTTPException, socket.timeout)):
        _post(connection, "/")
