"""Runs a WSGI app on loopback in a background thread: the emulators, moto and the front door."""

from __future__ import annotations

import socket
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = ["LoopbackServer"]


@runtime_checkable
class _HoldsWaiters(Protocol):
    def release_waiters(self) -> None: ...


class _QuietRequestHandler(WSGIRequestHandler):
    """No per-request access log: the paths carry model ids and would drown the serve output."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None

    def setup(self) -> None:
        super().setup()
        # werkzeug writes each chunk of a streamed response (its size line, data, CRLF) and flushes
        # it; without this, Nagle's algorithm would hold the small writes back for the client's ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _shared_listener(host: str, port: int) -> socket.socket:
    """A listening socket other processes may bind too (SO_REUSEPORT): the kernel spreads incoming
    connections over them, which is how several front-door workers share one port."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((host, port))
    listener.listen(128)
    return listener


class LoopbackServer:
    """`start()` binds (port 0 picks a free one) and serves in a daemon thread; `stop()` ends it."""

    def __init__(
        self,
        app: WSGIApplication,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        request_handler: type[WSGIRequestHandler] | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.app = app
        self._reuse_port = reuse_port
        self._request_handler = request_handler or _QuietRequestHandler
        self.host = host
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not running")
        return int(self._server.port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LoopbackServer:
        if self._server is not None:
            return self
        listener = _shared_listener(self.host, self._port) if self._reuse_port else None
        server = make_server(
            self.host,
            self._port,
            self.app,
            threaded=True,
            request_handler=self._request_handler,
            fd=listener.fileno() if listener else None,
        )
        # A short poll interval keeps stop(), which waits for the next poll, fast.
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"wsgi-{server.port}",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        if isinstance(self.app, _HoldsWaiters):
            # Requests hanging in a simulated timeout would otherwise outlive the server.
            self.app.release_waiters()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state: Any = self.url if self._server is not None else "stopped"
        return f"LoopbackServer({type(self.app).__name__}, {state})"
