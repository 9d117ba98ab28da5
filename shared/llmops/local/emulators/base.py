"""What both model emulators share: the WSGI entry, the admin routes and interruptible waits.

Admin routes (loopback tooling only, not part of any AWS API):

* `POST /_emulator/faults`: `{"key": K, <FaultSpec fields>}` sets one key, `{"faults": {K: spec}}`
  sets several, `{"key": K, "clear": true}` removes one, and an optional `"seed"` reseeds the RNG.
* `GET /_emulator/faults`: the current specs.
* `GET /_emulator/stats`: call counts per key and outcome.
* `POST /_emulator/reset`: clears faults and statistics (optional `{"seed": N}`) and releases calls
  that are hanging in a simulated timeout.

Streaming answers are generators of wire frames that the WSGI server writes (and flushes) one by
one as chunks; `pace` spaces their tokens out and injects the mid-stream faults.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Generator, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from llmops.local.emulators.answers import Generation
from llmops.local.emulators.faults import FaultDecision, FaultPlan, FaultSpec, Outcome
from llmops.local.emulators.forwarding import OpenAICompatibleForwarder

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["ADMIN_PREFIX", "EmulatorApp", "MidStreamFaultError", "json_response", "stream_response"]

ADMIN_PREFIX = "/_emulator/"

_Token = TypeVar("_Token")


class MidStreamFaultError(Exception):
    """Raised from `EmulatorApp.pace` where the call's drawn throttle or error strikes mid-stream;
    each emulator answers it with its service's modeled exception event."""

    def __init__(self, decision: FaultDecision) -> None:
        super().__init__(decision.outcome.value)
        self.decision = decision


def json_response(doc: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    response = Response(json.dumps(doc), status=status, mimetype="application/json")
    response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def stream_response(frames: Iterator[bytes], content_type: str, headers: Mapping[str, str] | None = None) -> Response:
    """A 200 whose body is written frame by frame: no Content-Length, so the server sends it chunked.

    Closing the iterable (the server does when the client goes away) closes `frames`, and through
    them whatever they read from, such as a forwarded upstream stream.
    """
    response = Response(frames, status=200, content_type=content_type, direct_passthrough=True)
    response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


class EmulatorApp:
    """Base WSGI app. Subclasses implement `handle` for the service's own routes."""

    def __init__(self, *, faults: FaultPlan | None = None, forwarder: OpenAICompatibleForwarder | None = None) -> None:
        self.faults = faults if faults is not None else FaultPlan()
        self.forwarder = forwarder
        self._wake_lock = threading.Lock()
        self._wake = threading.Event()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            is_admin = request.path.startswith(ADMIN_PREFIX)
            response = self._admin(request) if is_admin else self.handle(request)
        except HTTPException as exc:
            response = self.service_error(exc.code or 500, "UnknownOperationException", exc.description or "")
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def service_error(self, status: int, code: str, message: str, **fields: Any) -> Response:
        """An error in the service's wire shape; subclasses override the body's spelling."""
        return json_response({"message": message, **fields}, status, {"x-amzn-ErrorType": code})

    def release_waiters(self) -> None:
        """Wakes every request sleeping in simulated latency or a timeout (on reset and on stop)."""
        with self._wake_lock:
            self._wake.set()
            self._wake = threading.Event()

    def pause(self, seconds: float) -> None:
        if seconds > 0:
            with self._wake_lock:
                wake = self._wake
            wake.wait(seconds)

    def apply_faults(self, keys: list[str], *, streaming: bool = False) -> FaultDecision:
        """Draws and applies latency and a timeout's hang; throttles and errors are the caller's to
        answer in the service's own error shape. A streaming call whose failure strikes mid-stream
        (`FaultDecision.fails_mid_stream`) gets it from `pace` instead."""
        decision = self.faults.decide(keys)
        self.pause(decision.latency_s)
        if decision.outcome is Outcome.TIMEOUT and not (streaming and decision.fails_mid_stream()):
            self.pause(decision.timeout_s)
        return decision

    def pace(self, items: Iterator[_Token | Generation], decision: FaultDecision) -> Generator[_Token | Generation]:
        """`items` (tokens, then the `Generation`) at the decision's pace of generation.

        Where a mid-stream failure is due (after `fault_after_tokens` tokens, or at the end of a
        shorter answer) a timeout stops the stream for `timeout_s`, anything else raises
        `MidStreamFaultError`. Closing this iterator closes `items`.
        """
        tokens, struck = 0, not decision.fails_mid_stream()
        try:
            for item in items:
                is_token = not isinstance(item, Generation)
                if not struck and (tokens == decision.fault_after_tokens or not is_token):
                    struck = True
                    if decision.outcome is not Outcome.TIMEOUT:
                        raise MidStreamFaultError(decision)
                    self.pause(decision.timeout_s)
                if is_token:
                    self.pause(decision.token_latency_s + (decision.first_token_latency_s if tokens == 0 else 0.0))
                    tokens += 1
                yield item
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def register(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """Hook for subclasses' `POST /_emulator/endpoints`-style registration."""
        raise ValueError("this emulator has nothing to register")

    def _admin(self, request: Request) -> Response:
        route = request.path[len(ADMIN_PREFIX) :].strip("/")
        try:
            if route == "faults" and request.method == "GET":
                return json_response({"faults": self._spec_docs()})
            if route == "stats" and request.method == "GET":
                return json_response({"calls": self.faults.stats()})
            doc = self._json_object(request)
            if route == "faults" and request.method == "POST":
                self._set_faults(doc)
                return json_response({"faults": self._spec_docs()})
            if route == "reset" and request.method == "POST":
                self.faults.reset(_seed(doc, default=0))
                self.release_waiters()
                return json_response({"faults": {}, "calls": {}})
            if route == "endpoints" and request.method == "POST":
                return json_response(self.register(doc))
        except ValueError as exc:
            return json_response({"message": str(exc)}, 400)
        return json_response({"message": f"no admin route {request.method} {request.path}"}, 404)

    def _set_faults(self, doc: Mapping[str, Any]) -> None:
        if "seed" in doc:
            self.faults.reseed(_seed(doc, default=0))
        if "faults" in doc:
            entries = doc["faults"]
            if not isinstance(entries, Mapping):
                raise ValueError("'faults' must map keys to fault specs")
            parsed = {str(k): FaultSpec.from_dict(v) for k, v in entries.items()}
            for key, spec in parsed.items():
                self.faults.set(key, spec)
        if "key" in doc:
            key = str(doc["key"])
            if doc.get("clear"):
                self.faults.clear(key)
            else:
                fields = {k: v for k, v in doc.items() if k not in {"key", "seed", "clear"}}
                self.faults.set(key, FaultSpec.from_dict(fields))

    def _spec_docs(self) -> dict[str, dict[str, Any]]:
        return {key: spec.to_dict() for key, spec in self.faults.specs().items()}

    @staticmethod
    def _json_object(request: Request) -> dict[str, Any]:
        raw = request.get_data(cache=True)
        if not raw.strip():
            return {}
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise ValueError("admin body must be JSON") from exc
        if not isinstance(doc, dict):
            raise ValueError("admin body must be a JSON object")
        return doc


def _seed(doc: Mapping[str, Any], *, default: int) -> int | None:
    seed = doc.get("seed", default)
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError("'seed' must be an integer or null")
    return seed
