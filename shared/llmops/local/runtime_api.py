"""The Lambda Runtime API on loopback: one emulated execution environment for our runtime loop.

The local front door hands events to this server and reads the answers back from it, and
`llmops.lambda_runtime.loop` (the code the deployed gateway function runs) talks to it exactly as
it talks to Lambda's: `GET /2018-06-01/runtime/invocation/next`, `POST .../{id}/response` (buffered,
or streamed: chunked, with the error trailers), `POST .../{id}/error` and `POST .../init/error`.
A streamed answer reaches the front door chunk by chunk, as it is read off the socket.

Invocations are handed out one at a time, in order, as a Lambda execution environment runs them;
each gets its deadline when it is handed out. `PendingInvocation.abandon()` plays Lambda cutting
an invocation (its timeout, or API Gateway's client going away): the response connection is shut
down, so the loop's next write fails.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from llmops.lambda_runtime.loop import ERROR_TYPE_TRAILER, RESPONSE_MODE_HEADER

__all__ = ["BodyChunk", "FunctionFailed", "LocalRuntimeApi", "PendingInvocation", "StreamEnded"]

_PREFIX = "/2018-06-01/runtime"
_POLL_S = 0.05
_ACCOUNT = "000000000000"


@dataclass(frozen=True, slots=True)
class BodyChunk:
    data: bytes


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """The response is complete; `trailers` hold the error trailers if the stream failed."""

    trailers: Mapping[str, str] = field(default_factory=dict)

    @property
    def error_type(self) -> str | None:
        return self.trailers.get(ERROR_TYPE_TRAILER.lower())


@dataclass(frozen=True, slots=True)
class FunctionFailed:
    """`invocation/{id}/error`, an init error or a broken response: Lambda reports a function error."""

    error_type: str


ResponsePart = BodyChunk | StreamEnded | FunctionFailed


class PendingInvocation:
    def __init__(self, event: Mapping[str, Any]) -> None:
        self.request_id = str(uuid.uuid4())
        self.event = json.dumps(event).encode("utf-8")
        self.started = threading.Event()
        self.deadline_monotonic = float("inf")
        self.streamed: bool | None = None  # None until the response starts
        self.response_headers: dict[str, str] = {}
        self._parts: queue.Queue[ResponsePart] = queue.Queue()
        self._lock = threading.Lock()
        self._connection: socket.socket | None = None
        self._abandoned = False

    def _start(self, timeout_s: float) -> int:
        self.deadline_monotonic = time.monotonic() + timeout_s
        self.started.set()
        return int((time.time() + timeout_s) * 1000)

    def remaining_s(self) -> float:
        return max(0.0, self.deadline_monotonic - time.monotonic())

    def next_part(self, timeout_s: float) -> ResponsePart:
        """The next piece of the answer; raises `queue.Empty` after `timeout_s` without one."""
        return self._parts.get(timeout=timeout_s)

    def _put(self, part: ResponsePart) -> None:
        if not self._abandoned:
            self._parts.put(part)

    def _attach(self, connection: socket.socket) -> bool:
        with self._lock:
            if self._abandoned:
                return False
            self._connection = connection
            return True

    def _detach(self) -> None:
        with self._lock:
            self._connection = None

    def abandon(self) -> None:
        """Lambda stops taking this invocation's answer: the open response connection is cut."""
        with self._lock:
            self._abandoned = True
            connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(OSError):  # already closed by the other side
                connection.shutdown(socket.SHUT_RDWR)


class _RuntimeApiServer(ThreadingHTTPServer):
    daemon_threads = True
    api: LocalRuntimeApi


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the loop keeps its invocation/next connection open
    server: _RuntimeApiServer

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes (`end_headers`, then the event or the answer): with
        # Nagle's algorithm on, the body waited for the loop's delayed ACK of the headers, about 40 ms
        # per invocation. Lambda's Runtime API answers at once.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        if self.path != f"{_PREFIX}/invocation/next":
            self._answer(HTTPStatus.NOT_FOUND, {"errorType": "InvalidPath"})
            return
        api = self.server.api
        invocation = api._take_next()
        if invocation is None:  # shutting down: the loop ends on a non-200 answer
            self._answer(HTTPStatus.SERVICE_UNAVAILABLE, {"errorType": "Shutdown"})
            self.close_connection = True
            return
        deadline_ms = invocation._start(api.timeout_s)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(invocation.event)))
        self.send_header("Lambda-Runtime-Aws-Request-Id", invocation.request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(deadline_ms))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", api.function_arn)
        self.end_headers()
        self.wfile.write(invocation.event)

    def do_POST(self) -> None:
        path = self.path.removeprefix(_PREFIX)
        api = self.server.api
        if path == "/init/error":
            self._read_sized_body()
            api.init_failed.set()
            self._answer(HTTPStatus.ACCEPTED, {"status": "OK"})
            return
        parts = path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "invocation" or parts[2] not in {"response", "error"}:
            self._answer(HTTPStatus.NOT_FOUND, {"errorType": "InvalidPath"})
            return
        invocation = api._active(parts[1])
        if invocation is None:
            self._read_body_of_unknown()
            self._answer(HTTPStatus.BAD_REQUEST, {"errorType": "InvalidRequestID"})
            return
        if parts[2] == "error":
            self._read_sized_body()
            invocation._put(FunctionFailed(self.headers.get(ERROR_TYPE_TRAILER, "Unhandled")))
            api._finish(invocation)
            self._answer(HTTPStatus.ACCEPTED, {"status": "OK"})
            return
        self._response(invocation)

    def _response(self, invocation: PendingInvocation) -> None:
        api = self.server.api
        invocation.response_headers = {k.lower(): v for k, v in self.headers.items()}
        streamed = self.headers.get(RESPONSE_MODE_HEADER, "").lower() == "streaming"
        invocation.streamed = streamed
        try:
            if not streamed:
                invocation._put(BodyChunk(self._read_sized_body()))
                invocation._put(StreamEnded())
            elif not invocation._attach(self.connection):
                self.close_connection = True
                return
            else:
                self._relay_chunks(invocation)
        except (OSError, ValueError):
            # Cut by abandon(), or a malformed chunk: either way the function's answer is broken.
            invocation._put(FunctionFailed("Runtime.TruncatedResponse"))
            self.close_connection = True
            return
        finally:
            api._finish(invocation)
        self._answer(HTTPStatus.ACCEPTED, {"status": "OK"})

    def _relay_chunks(self, invocation: PendingInvocation) -> None:
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            raise ValueError("a streamed response must be chunked")
        while True:
            size_line = self.rfile.readline(1024)
            if not size_line:
                raise ConnectionAbortedError("the response connection closed mid-stream")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                trailers = self._read_trailers()
                invocation._detach()  # complete: abandon() must no longer cut the connection
                invocation._put(StreamEnded(trailers))
                return
            data = self.rfile.read(size)
            if len(data) != size or self.rfile.read(2) != b"\r\n":
                raise ConnectionAbortedError("the response connection closed mid-chunk")
            invocation._put(BodyChunk(data))

    def _read_trailers(self) -> dict[str, str]:
        trailers: dict[str, str] = {}
        while True:
            line = self.rfile.readline(65537)
            if line in (b"\r\n", b"\n", b""):
                return trailers
            name, _, value = line.decode("latin-1").partition(":")
            trailers[name.strip().lower()] = value.strip()

    def _read_sized_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))

    def _read_body_of_unknown(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True  # not worth draining: drop the connection after answering
        else:
            self._read_sized_body()

    def _answer(self, status: HTTPStatus, payload: Mapping[str, str]) -> None:
        body = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True


class LocalRuntimeApi:
    """One execution environment's Runtime API: `submit` events, a runtime loop serves them."""

    def __init__(self, function_name: str, timeout_s: float) -> None:
        self.function_name = function_name
        self.timeout_s = timeout_s
        self.function_arn = f"arn:aws:lambda:us-east-1:{_ACCOUNT}:function:{function_name}"
        self.init_failed = threading.Event()
        self._queue: queue.Queue[PendingInvocation] = queue.Queue()
        self._active_by_id: dict[str, PendingInvocation] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _RuntimeApiServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        """`host:port`, what the loop gets as `AWS_LAMBDA_RUNTIME_API`."""
        if self._server is None:
            raise RuntimeError("the Runtime API is not running")
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> LocalRuntimeApi:
        if self._server is None:
            server = _RuntimeApiServer(("127.0.0.1", 0), _Handler)
            server.api = self
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": _POLL_S}, name="runtime-api", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self._lock:
            active = list(self._active_by_id.values())
        for invocation in active:
            invocation.abandon()

    def submit(self, event: Mapping[str, Any]) -> PendingInvocation:
        invocation = PendingInvocation(event)
        self._queue.put(invocation)
        return invocation

    def _take_next(self) -> PendingInvocation | None:
        while not self._stopping.is_set():
            try:
                invocation = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if invocation._abandoned:
                continue  # its caller gave up before the environment was free
            with self._lock:
                self._active_by_id[invocation.request_id] = invocation
            return invocation
        return None

    def _active(self, request_id: str) -> PendingInvocation | None:
        with self._lock:
            return self._active_by_id.get(request_id)

    def _finish(self, invocation: PendingInvocation) -> None:
        with self._lock:
            self._active_by_id.pop(invocation.request_id, None)
