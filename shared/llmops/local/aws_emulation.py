"""moto in server mode on a loopback port: the AWS half of the local stack.

Server mode (not in-process mocks) so the CLI, tests and any boto3 client in another process see
the same state. Request handling is serialized by one lock because moto races concurrent
conditional writes, which would make exact quotas look inexact locally.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

from llmops.local.moto_transactions import install as install_item_level_rollback
from llmops.local.wsgi_server import LoopbackServer, NoDelayRequestHandler

__all__ = ["MotoService", "SerializedWsgi"]

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SerializedWsgi:
    """Runs one request at a time through `app`, including reading its whole response body."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self._lock:
            return list(self._app(environ, start_response))


class _QuietMotoRequestHandler(NoDelayRequestHandler, MotoRequestHandler):
    """moto's handler (with Nagle's algorithm off, as every local server) minus its per-request log:
    the local stack's console is for the gateway."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class MotoService:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, serialized: bool = True) -> None:
        app: WsgiApp = DomainDispatcherApplication(create_backend_app)
        self._server = LoopbackServer(
            SerializedWsgi(app) if serialized else app,
            host=host,
            port=port,
            request_handler=_QuietMotoRequestHandler,
        )

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> MotoService:
        install_item_level_rollback()
        self._server.start()
        # moto calls itself (e.g. Step Functions service integrations) at MOTO_PORT.
        os.environ["MOTO_PORT"] = str(self._server.port)
        self._configure({"stepfunctions": {"execute_state_machine": True}})
        return self

    def _configure(self, config: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"{self.url}/moto-api/config",
            data=json.dumps(config).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5):
            pass

    def stop(self) -> None:
        self._server.stop()
