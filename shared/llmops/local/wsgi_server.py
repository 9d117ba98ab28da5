"""Runs a WSGI app on loopback in a background thread: the emulators, moto and the front door.

Connections are kept alive, as API Gateway, DynamoDB and Bedrock keep an SDK's connections alive.
werkzeug's server answers every request with `Connection: close` (http.server cannot tell where a
request body it did not read ends), so each boto3 call to moto or an emulator, and each client
request to the front door, used to pay a new TCP connection and a new server thread.
`NoDelayRequestHandler` keeps the connection open when the response is framed (Content-Length or
chunked, HTTP/1.1) and completed, after draining whatever the application left of the request
body; a response cut short, an application error or a client's `Connection: close` still closes it.
`LoopbackServer.stop()` closes the idle connections too, so a stopped server is unreachable at once.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wsgi import LimitedStream

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["LoopbackServer", "NoDelayRequestHandler", "PortInUseError", "ensure_port_free"]


@runtime_checkable
class _HoldsWaiters(Protocol):
    def release_waiters(self) -> None: ...


# Where the handler serving a request puts itself in the WSGI environ, for `_KeepAliveApp`.
_HANDLER_KEY = "llmops.request_handler"
# A request body the application left unread is drained up to this size; a larger one closes the connection.
_MAX_DRAIN_BYTES = 16 * 1024 * 1024


class _OpenConnections:
    """The connections a server holds open, so that stopping it can cut the idle ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()

    def add(self, connection: socket.socket) -> None:
        with self._lock:
            self._sockets.add(connection)

    def discard(self, connection: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(connection)

    def cut_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for connection in sockets:
            with contextlib.suppress(OSError):  # already closed by the other side
                connection.shutdown(socket.SHUT_RDWR)


class _SocketReader:
    """The connection's reader, which reads nothing while werkzeug "drains" the socket after a
    response: werkzeug reads whatever arrives within 10 ms, which on a kept-alive connection is the
    client's next request."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.after_response = False

    def read(self, size: int | None = -1) -> bytes:
        return b"" if self.after_response else bytes(self._stream.read(size))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class NoDelayRequestHandler(WSGIRequestHandler):
    """Nagle's algorithm off and keep-alive on every accepted connection (see the module docstring).

    werkzeug writes a response's headers and its body in separate sends (and each chunk of a
    streamed one as its size line, data and CRLF); with Nagle's algorithm on, a small write waits
    for the client's (delayed) ACK of the previous one.
    """

    _reader: _SocketReader
    _body: LimitedStream | Iterable[bytes] | None = None
    _keep_alive = False

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader = _SocketReader(self.rfile)
        self.rfile = self._reader  # type: ignore[assignment]
        connections = getattr(self.server, "open_connections", None)
        if isinstance(connections, _OpenConnections):
            connections.add(self.connection)

    def finish(self) -> None:
        connections = getattr(self.server, "open_connections", None)
        if isinstance(connections, _OpenConnections):
            connections.discard(self.connection)
        super().finish()

    def make_environ(self) -> WSGIEnvironment:
        environ = super().make_environ()
        environ[_HANDLER_KEY] = self
        if not environ.get("wsgi.input_terminated"):
            # A sized body, counted so that what the application leaves of it can be drained.
            body = LimitedStream(environ["wsgi.input"], int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = body
            self._body = body
        else:
            self._body = environ["wsgi.input"]  # chunked: werkzeug's reader ends at the last chunk
        return environ

    def run_wsgi(self) -> None:
        # Whether this response may leave the connection open: `_KeepAliveApp` says so once the
        # application's response is complete; anything that goes wrong leaves it False.
        self._keep_alive = False
        self._body = None
        try:
            super().run_wsgi()
        finally:
            self._reader.after_response = False
        if not self._keep_alive or not self._drain_body():
            self.close_connection = True

    def response_complete(self) -> None:
        self._keep_alive = True
        self._reader.after_response = True

    def keep_no_connection(self) -> None:
        self._keep_alive = False
        self.close_connection = True

    def response_failed(self) -> None:
        """The application failed: the connection closes, and werkzeug's drain (which reads until
        10 MB or the client's EOF once the socket is readable) must not wait on an unread body."""
        self.keep_no_connection()
        self._reader.after_response = True

    def send_header(self, keyword: str, value: str) -> None:
        # werkzeug's own `Connection: close`, sent with every response; a client's or an
        # application's wish to close is honoured (`close_connection`, `keep_no_connection`).
        if keyword.lower() == "connection" and value.lower() == "close" and not self.close_connection:
            return
        super().send_header(keyword, value)

    def connection_dropped(self, error: BaseException, environ: WSGIEnvironment | None = None) -> None:
        self.keep_no_connection()

    def _drain_body(self) -> bool:
        """Reads what the application left of the request body; False if that is not possible."""
        body, self._body = self._body, None
        if body is None:
            return True
        try:
            if isinstance(body, LimitedStream):
                if body.limit - body.tell() > _MAX_DRAIN_BYTES:
                    return False
                body.exhaust()
                return True
            drained = 0
            read = getattr(body, "read", None)
            while read is not None and (data := read(65536)):
                drained += len(data)
                if drained > _MAX_DRAIN_BYTES:
                    return False
            return True
        except Exception:  # the client went away or sent a broken body: nothing to keep open
            return False


class _KeepAliveApp:
    """Wraps the served application: tells the request handler when a response is complete, and
    that the connection must close when the application failed or asked for it."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        handler = environ.get(_HANDLER_KEY)
        if not isinstance(handler, NoDelayRequestHandler):
            return self.app(environ, start_response)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if any(k.lower() == "connection" and v.lower() == "close" for k, v in headers):
                handler.keep_no_connection()
            return start_response(status, headers, exc_info)

        try:
            body = self.app(environ, start)
        except BaseException:
            handler.response_failed()
            raise
        return _Completion(body, handler)


class _Completion:
    """The application's body, passed through; the handler learns when it has been sent whole."""

    def __init__(self, body: Iterable[bytes], handler: NoDelayRequestHandler) -> None:
        self._body = body
        self._handler = handler

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._body
        except BaseException:
            self._handler.response_failed()
            raise
        if not self._handler.close_connection:
            self._handler.response_complete()

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()


class _QuietRequestHandler(NoDelayRequestHandler):
    """No per-request access log: the paths carry model ids and would drown the serve output."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class PortInUseError(OSError):
    """The port another process listens on: said before anything starts, in words a user can act on."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(
            errno.EADDRINUSE,
            f"{host}:{port} is in use by another process: a `llmops serve` still running, or front-door "
            "workers left by one that was killed (`pkill -f llmops.local.front_door_workers`). "
            "Stop it, or pick another --port.",
        )
        self.host = host
        self.port = port


def ensure_port_free(host: str, port: int) -> None:
    """Raises PortInUseError if a process listens on `host:port` (port 0: any free one, nothing to check).

    The front door's workers share their port (SO_REUSEPORT), and so would any stale process that set
    it too: binding next to one succeeds, and the kernel then spreads requests over both stacks. A
    bind without SO_REUSEPORT fails while anyone listens there, which is the check wanted."""
    if port == 0:
        return
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(host, port) from None
        raise
    finally:
        probe.close()


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
            _KeepAliveApp(self.app),
            threaded=True,
            request_handler=self._request_handler,
            fd=listener.fileno() if listener else None,
        )
        server.open_connections = _OpenConnections()  # type: ignore[attr-defined]
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
        connections = getattr(server, "open_connections", None)
        if isinstance(connections, _OpenConnections):
            connections.cut_all()  # idle kept-alive connections end with the server
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
