"""The local API Gateway: turns HTTP requests into REST API proxy events, runs the real authorizer,
then the real gateway handler, and writes the proxy result back as HTTP.

It mirrors what the deployed API does: the public routes (`llmops.config.public_routes`, e.g.
`/health`) need no key, everything else under `/v1` goes through the authorizer (with a result
cache like API Gateway's), and an authorizer refusal is a 401 in the OpenAI error shape, as the
CDK stack's UNAUTHORIZED gateway response renders it.

Each handler runs one event at a time, as a Lambda container does. That is not only faithful but
required: Powertools keeps the current event (and the metric set) in class attributes, so two
events in one process at once would read each other's request id and tenant.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wrappers import Request, Response

from llmops.config.edge_responses import EdgeResponse, edge_response
from llmops.config.public_routes import PUBLIC_PATHS
from llmops.config.timeouts import AUTHORIZER_TIMEOUT_S, GATEWAY_TIMEOUT_S
from llmops.local.lambda_runtime import LocalLambdaContext, invoke, load_handler_module

__all__ = ["INTEGRATION_TIMEOUT_BODY", "UNAUTHORIZED_BODY", "FrontDoor"]

# API Gateway's own answers, from the definitions the CDK stack renders (llmops.config.edge_responses).
_UNAUTHORIZED = edge_response("UNAUTHORIZED")
_AUTHORIZER_FAILURE = edge_response("AUTHORIZER_FAILURE")
_REQUEST_TOO_LARGE = edge_response("REQUEST_TOO_LARGE")
UNAUTHORIZED_BODY = _UNAUTHORIZED.body()
# What the deployed API answers when the gateway function outlives API Gateway's integration timeout.
INTEGRATION_TIMEOUT_BODY = edge_response("INTEGRATION_TIMEOUT").body()
STAGE = "local"
_log = logging.getLogger("llmops.local")
_METHOD_ARN = "arn:aws:execute-api:us-east-1:000000000000:local/{stage}/{method}{path}"


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
        self._gateway_container = threading.Lock()
        self._authorizer_container = threading.Lock()

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
        with self._gateway_container:
            # The context starts counting once the container is free, as a Lambda invocation does.
            invocation = LocalLambdaContext("llmops-gateway", timeout_s=self._gateway_timeout_s)
            result = invoke(self._gateway, event, invocation)
        if invocation.timed_out:
            # Lambda would have killed the function: the caller gets API Gateway's answer, not the handler's.
            _log.warning("gateway invocation outlived its %.0f s timeout", self._gateway_timeout_s)
            return _json_response(504, INTEGRATION_TIMEOUT_BODY)
        return _proxy_response(result)

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


def _proxy_response(result: dict[str, Any]) -> Response:
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    response = Response(data, status=int(result.get("statusCode", 502)))
    for name, value in (result.get("headers") or {}).items():
        response.headers[name] = str(value)
    for name, values in (result.get("multiValueHeaders") or {}).items():
        response.headers.remove(name)
        for value in values:
            response.headers.add(name, str(value))
    return response
