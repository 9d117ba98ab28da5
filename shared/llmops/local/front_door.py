"""The local API Gateway: turns HTTP requests into REST API proxy events, runs the real authorizer,
then the real gateway handler, and writes the proxy result back as HTTP.

It mirrors what the deployed API does: the public routes (`llmops.config.public_routes`, e.g.
`/health`) need no key, everything else under `/v1` goes through the authorizer (with a result
cache like API Gateway's), and an authorizer refusal is a 401 in the OpenAI error shape, as the
CDK stack's UNAUTHORIZED gateway response renders it.

The gateway function runs as it runs in AWS: our runtime loop (`llmops.lambda_runtime.loop`, the
deployed function's entry point) serves it from an emulated Lambda Runtime API
(`llmops.local.runtime_api`), in a thread of this process, and its answer comes back in the
streaming response mode of the STREAM integration: the front door reads the prelude up to the
8-NUL delimiter, answers the status and headers, then relays each body chunk to the client as it
arrives. As API Gateway does, it answers 504 when no prelude came within the function's timeout,
502 when the function failed before one, and cuts the client's response short when the stream
fails or stalls after it; a client that goes away cuts the function's response connection.

Each handler runs one event at a time, as a Lambda container does. That is not only faithful but
required: Powertools keeps the current event (and the metric set) in class attributes, so two
events in one process at once would read each other's request id and tenant.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from werkzeug.wrappers import Request, Response

from llmops.config.edge_responses import EdgeResponse, edge_response
from llmops.config.public_routes import PUBLIC_PATHS
from llmops.config.timeouts import AUTHORIZER_TIMEOUT_S, GATEWAY_TIMEOUT_S, STREAM_IDLE_TIMEOUT_S
from llmops.lambda_runtime import PRELUDE_DELIMITER
from llmops.lambda_runtime.loop import FunctionIdentity, run
from llmops.local.lambda_runtime import LocalLambdaContext, invoke, load_handler_module
from llmops.local.runtime_api import BodyChunk, FunctionFailed, LocalRuntimeApi, PendingInvocation, StreamEnded

__all__ = ["INTEGRATION_TIMEOUT_BODY", "UNAUTHORIZED_BODY", "FrontDoor"]

# API Gateway's own answers, from the definitions the CDK stack renders (llmops.config.edge_responses).
_UNAUTHORIZED = edge_response("UNAUTHORIZED")
_AUTHORIZER_FAILURE = edge_response("AUTHORIZER_FAILURE")
_REQUEST_TOO_LARGE = edge_response("REQUEST_TOO_LARGE")
# A function error (an exception, a failed init, a broken prelude) is API Gateway's 502 Bad Gateway,
# rendered by the DEFAULT_5XX gateway response.
_FUNCTION_ERROR = edge_response("DEFAULT_5XX")
UNAUTHORIZED_BODY = _UNAUTHORIZED.body()
# What the deployed API answers when the gateway function outlives API Gateway's integration timeout.
INTEGRATION_TIMEOUT_BODY = edge_response("INTEGRATION_TIMEOUT").body()
STAGE = "local"
_log = logging.getLogger("llmops.local")
_METHOD_ARN = "arn:aws:execute-api:us-east-1:000000000000:local/{stage}/{method}{path}"
_GATEWAY_FUNCTION = "llmops-gateway"
_POLL_S = 0.05
# A prelude is a status and headers: far below this, unless the function never sends the delimiter.
_MAX_PRELUDE_BYTES = 1024 * 1024


class FrontDoor:
    def __init__(
        self,
        authorizer_cache_ttl_s: float = 60.0,
        max_body_bytes: int = 10 * 1024 * 1024,
        gateway_timeout_s: float = GATEWAY_TIMEOUT_S,
    ) -> None:
        self._gateway = load_handler_module("gateway")
        self._authorizer = load_handler_module("authorizer")
        self._cache_ttl_s = authorizer_cache_ttl_s
        self._max_body_bytes = max_body_bytes  # API Gateway's own hard payload limit is 10 MB
        self._gateway_timeout_s = gateway_timeout_s
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._authorizer_container = threading.Lock()
        self._environment_lock = threading.Lock()
        self._runtime_api: LocalRuntimeApi | None = None
        self._runtime_loop: threading.Thread | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        response = self.handle(request)
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        body = request.get_data(cache=False)
        if len(body) > self._max_body_bytes:
            return _edge(_REQUEST_TOO_LARGE)
        event = self._event(request, body)
        if request.path not in PUBLIC_PATHS:
            try:
                context = self._authorize(event)
            except _AuthorizerFailedError:
                return _edge(_AUTHORIZER_FAILURE)
            if context is None:
                return _edge(_UNAUTHORIZED)
            event["requestContext"]["authorizer"] = context
        runtime_api = self._gateway_environment()
        return self._streamed_answer(runtime_api, runtime_api.submit(event))

    def release_waiters(self) -> None:
        """Ends the gateway's execution environment (LoopbackServer.stop calls this)."""
        with self._environment_lock:
            runtime_api, self._runtime_api = self._runtime_api, None
        if runtime_api is not None:
            runtime_api.stop()

    def _gateway_environment(self) -> LocalRuntimeApi:
        """The gateway's execution environment: the Runtime API and our loop serving it.

        Started on first use, and again after an init error, as Lambda retries a failed init.
        """
        with self._environment_lock:
            if self._runtime_api is None:
                self._runtime_api = LocalRuntimeApi(_GATEWAY_FUNCTION, self._gateway_timeout_s).start()
            runtime_api = self._runtime_api
            if self._runtime_loop is None or not self._runtime_loop.is_alive():
                runtime_api.init_failed.clear()
                gateway = self._gateway
                self._runtime_loop = threading.Thread(
                    target=run,
                    args=(runtime_api.endpoint, lambda: gateway.handler),
                    kwargs={"identity": FunctionIdentity(_GATEWAY_FUNCTION, memory_mb=512)},
                    name="gateway-runtime-loop",
                    daemon=True,
                )
                self._runtime_loop.start()
            return runtime_api

    def _streamed_answer(self, runtime_api: LocalRuntimeApi, invocation: PendingInvocation) -> Response:
        # The deadline starts once the environment takes the event, as a Lambda invocation's does.
        while not invocation.started.wait(_POLL_S):
            if runtime_api.init_failed.is_set():
                invocation.abandon()
                _log.warning("the gateway function failed to initialize")
                return _function_error()
        received = b""
        while (delimiter_at := received.find(PRELUDE_DELIMITER)) < 0:
            try:
                part = invocation.next_part(invocation.remaining_s())
            except queue.Empty:
                # Lambda would have killed the function: the caller gets API Gateway's answer.
                invocation.abandon()
                _log.warning("gateway invocation outlived its %.0f s timeout", self._gateway_timeout_s)
                return _json_response(504, INTEGRATION_TIMEOUT_BODY)
            if not isinstance(part, BodyChunk) or len(received) > _MAX_PRELUDE_BYTES:
                invocation.abandon()
                _log.warning("the gateway function failed before its response prelude: %s", _failure_of(part))
                return _function_error()
            received += part.data
        try:
            prelude = json.loads(received[:delimiter_at])
        except ValueError:
            invocation.abandon()
            _log.warning("the gateway function sent an unreadable response prelude")
            return _function_error()
        first = received[delimiter_at + len(PRELUDE_DELIMITER) :]
        return _streamed_response(prelude, _relayed_body(invocation, first))

    def _authorize(self, event: dict[str, Any]) -> dict[str, Any] | None:
        header = next((v for k, v in event["headers"].items() if k.lower() == "authorization"), "")
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(header)
            if cached and now - cached[0] < self._cache_ttl_s:
                return cached[1]
        auth_event = {
            "type": "REQUEST",
            "methodArn": _METHOD_ARN.format(stage=STAGE, method=event["httpMethod"], path=event["path"]),
            "headers": event["headers"],
            "requestContext": event["requestContext"],
        }
        try:
            with self._authorizer_container:
                policy = invoke(
                    self._authorizer,
                    auth_event,
                    LocalLambdaContext("llmops-authorizer", timeout_s=AUTHORIZER_TIMEOUT_S),
                )
        except PermissionError:
            return None
        except Exception as exc:
            # API Gateway's AUTHORIZER_FAILURE: the authorizer failed (e.g. the ApiKeys table is
            # unreachable), which is not a refused key. One line, no traceback, as a 503 is expected.
            _log.warning("authorizer failed: %s", type(exc).__name__)
            raise _AuthorizerFailedError from None
        context = {**policy.get("context", {}), "principalId": policy["principalId"]}
        with self._lock:
            self._cache[header] = (now, context)
        return context

    @staticmethod
    def _event(request: Request, body: bytes) -> dict[str, Any]:
        headers = dict(request.headers.items())
        try:
            text, is_base64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, is_base64 = base64.b64encode(body).decode("ascii"), True
        query = {k: v for k, v in request.args.items()} or None
        request_id = str(uuid.uuid4())
        # A public route has its own API Gateway resource; any other /v1 path is the greedy proxy's.
        behind_proxy = request.path.startswith("/v1/") and request.path not in PUBLIC_PATHS
        proxy = request.path.removeprefix("/v1/") if behind_proxy else None
        return {
            "resource": "/v1/{proxy+}" if proxy is not None else request.path,
            "path": request.path,
            "httpMethod": request.method,
            "headers": headers,
            "multiValueHeaders": {k: request.headers.getlist(k) for k in request.headers.keys()},  # noqa: SIM118
            "queryStringParameters": query,
            "multiValueQueryStringParameters": {k: request.args.getlist(k) for k in request.args} or None,
            "pathParameters": {"proxy": proxy} if proxy is not None else None,
            "stageVariables": None,
            "requestContext": {
                "accountId": "000000000000",
                "apiId": "local",
                "stage": STAGE,
                "requestId": request_id,
                "extendedRequestId": request_id,
                "httpMethod": request.method,
                "path": f"/{STAGE}{request.path}",
                "resourcePath": "/v1/{proxy+}" if proxy is not None else request.path,
                "protocol": "HTTP/1.1",
                "requestTimeEpoch": int(time.time() * 1000),
                "identity": {
                    "sourceIp": request.remote_addr or "127.0.0.1",
                    "userAgent": request.user_agent.string,
                },
            },
            "body": text or None,
            "isBase64Encoded": is_base64,
        }


class _AuthorizerFailedError(Exception):
    pass


def _edge(response: EdgeResponse) -> Response:
    if response.status is None:
        raise ValueError(f"{response.response_type} keeps API Gateway's own status; give one")
    answer = _json_response(response.status, response.body())
    answer.headers.update(response.headers())
    return answer


def _json_response(status: int, payload: Any) -> Response:
    return Response(json.dumps(payload), status=status, content_type="application/json")


class _StreamCutError(ConnectionAbortedError):
    """Ends the client's response without its last chunk, as API Gateway cuts a failed stream.

    A connection error, so the WSGI server drops the connection quietly instead of logging a
    traceback and trying to answer 500 after the headers went out.
    """


def _failure_of(part: object) -> str:
    if isinstance(part, FunctionFailed):
        return part.error_type
    if isinstance(part, StreamEnded):
        return part.error_type or "no delimiter"
    return "prelude too large"


def _relayed_body(invocation: PendingInvocation, first: bytes) -> Iterator[bytes]:
    """The body as the function streams it; stops when the client goes away (werkzeug closes us)."""
    finished = False
    try:
        if first:
            yield first
        while True:
            wait_s = min(invocation.remaining_s(), STREAM_IDLE_TIMEOUT_S)
            try:
                part = invocation.next_part(wait_s)
            except queue.Empty:
                _log.warning("gateway stream cut: it outlived the function timeout or the idle timeout")
                raise _StreamCutError("stream timed out") from None
            if isinstance(part, BodyChunk):
                yield part.data
                continue
            if isinstance(part, StreamEnded) and part.error_type is None:
                finished = True
                return
            _log.warning("gateway stream failed mid-way: %s", _failure_of(part))
            raise _StreamCutError("stream failed")
    finally:
        if not finished:
            # The client is gone or the stream is cut: so is the function's response connection.
            invocation.abandon()


def _streamed_response(prelude: Mapping[str, Any], body: Iterator[bytes]) -> Response:
    response = Response(body, status=int(prelude.get("statusCode", 200)), direct_passthrough=True)
    for name, value in (prelude.get("headers") or {}).items():
        response.headers[name] = str(value)
    for name, values in (prelude.get("multiValueHeaders") or {}).items():
        response.headers.remove(name)
        for value in values:
            response.headers.add(name, str(value))
    for cookie in prelude.get("cookies") or []:
        response.headers.add("Set-Cookie", str(cookie))
    return response


def _function_error() -> Response:
    answer = _json_response(502, _FUNCTION_ERROR.body())
    answer.headers.update(_FUNCTION_ERROR.headers())
    return answer
