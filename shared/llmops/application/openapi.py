"""The gateway's published OpenAPI document, generated from the handler's routes.

Powertools derives request schemas from the route signatures (its resolver is built here from the
gateway's `ProxyRouter` routes, for the document only), but it cannot know what the
gateway promises beyond them: the bearer authentication in front of every `/v1` route, the
OpenAI error shape for every 4xx and 5xx (validation errors are 400s here, never FastAPI-style
422s), and the bodies of routes that return a prebuilt `Response` (chat completions answer JSON or
SSE). This module layers those promises on top, so the document clients and the fuzzer read is
the contract (the README's HTTP API, docs/architecture.md), not a guess from type hints.

The gateway serves it at `GET /v1/openapi.json` (`openapi_json`, built on the first request, not
at import, so a cold start does not pay for it). The router is passed in (rather than imported)
because the handler lives outside the package; `load_handler_module("gateway").app` from
`llmops.local.lambda_runtime` is the usual argument outside the Lambda.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import typing
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

from llmops.application.proxy_router import ProxyRoute, ProxyRouter
from llmops.application.responses import ApiResponse
from llmops.config.public_routes import PUBLIC_ROUTES as _PUBLIC

__all__ = [
    "BEARER_SCHEME",
    "DOCUMENTED_ERRORS",
    "ERROR_SCHEMA_NAME",
    "PUBLIC_ROUTES",
    "openapi_document",
    "openapi_json",
    "resolver_routes",
]

BEARER_SCHEME = "bearerAuth"
ERROR_SCHEMA_NAME = "ErrorResponse"
PUBLIC_ROUTES = frozenset((route.method, route.path) for route in _PUBLIC)

_JSON = "application/json"
_SSE = "text/event-stream"

# The statuses each route may answer besides 200 (the README's "HTTP API" errors). Every /v1 route can be
# refused by the authorizer (401) or find it failing (503 `service_unavailable`), and any route can
# fail unexpectedly (a 500 that is still in the OpenAI shape); the fuzz tests assert separately
# that no 5xx ever happens on valid traffic.
_AUTHENTICATED_ERRORS = (401, 500, 503)
_BODY_ERRORS = (400, 413)
DOCUMENTED_ERRORS: Mapping[tuple[str, str], tuple[int, ...]] = {
    ("GET", "/health"): (500,),
    ("GET", "/v1/openapi.json"): (500,),
    ("GET", "/v1/models"): _AUTHENTICATED_ERRORS,
    ("GET", "/v1/usage"): _AUTHENTICATED_ERRORS,
    ("POST", "/v1/guardrails/scan"): (*_BODY_ERRORS, *_AUTHENTICATED_ERRORS),
    ("POST", "/v1/feedback"): (*_BODY_ERRORS, *_AUTHENTICATED_ERRORS, 404),
    ("POST", "/v1/chat/completions"): (*_BODY_ERRORS, *_AUTHENTICATED_ERRORS, 403, 404, 429, 502, 504),
    ("POST", "/v1/embeddings"): (*_BODY_ERRORS, *_AUTHENTICATED_ERRORS, 404, 429, 502, 504),
}
_DEFAULT_ERRORS = (*_BODY_ERRORS, *_AUTHENTICATED_ERRORS)
_RETRY_AFTER_STATUSES = frozenset({429, 503})

_ERROR_DESCRIPTIONS = {
    400: "Invalid request (OpenAI `invalid_request_error`; `param` names the offending field).",
    401: "Missing, malformed, revoked or expired API key (`invalid_api_key`).",
    403: "The key may not use this model.",
    404: "Unknown model (`model_not_found`) or resource.",
    413: "Request body too large (`request_too_large`).",
    429: "A rate window (`rate_limit_exceeded`) or budget (`insufficient_quota`) is full.",
    500: "Unexpected failure (`internal_error`), never with details.",
    502: (
        "Every target of the alias failed with a model or service error (`upstream_error`), or the "
        "answer is not the JSON `response_format` asked for (`invalid_structured_output`)."
    ),
    503: (
        "Temporarily unavailable, retry after `Retry-After`: every target was throttled "
        "(`upstream_throttled`), a store is unreachable (`quota_unavailable`, `audit_unavailable`, "
        "`feedback_unavailable`), keys cannot be checked (`service_unavailable`) or a guard detector "
        "the tenant's policy fails closed on is unavailable (`guard_unavailable`)."
    ),
    504: "Every target timed out (`upstream_timeout`).",
}

_NULLABLE_STRING: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "null"}]}

_ERROR_SCHEMA: dict[str, Any] = {
    "title": ERROR_SCHEMA_NAME,
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "code", "param"],
            "additionalProperties": False,
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "code": _NULLABLE_STRING,
                "param": _NULLABLE_STRING,
            },
        }
    },
}

_TOKEN_USAGE: dict[str, Any] = {
    "type": "object",
    "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
    "properties": {
        "prompt_tokens": {"type": "integer", "minimum": 0},
        "completion_tokens": {"type": "integer", "minimum": 0},
        "total_tokens": {"type": "integer", "minimum": 0},
        # Only when the provider's prompt cache took part; both counts are part of prompt_tokens.
        "prompt_tokens_details": {
            "type": "object",
            "properties": {
                "cached_tokens": {"type": "integer", "minimum": 0},
                "cache_write_tokens": {"type": "integer", "minimum": 0},
            },
        },
    },
}

_TOOL_CALL: dict[str, Any] = {
    "type": "object",
    "required": ["id", "type", "function"],
    "properties": {
        "id": {"type": "string"},
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name", "arguments"],
            "properties": {"name": {"type": "string"}, "arguments": {"type": "string"}},
        },
    },
}

# LiteLLM's shape: a signed thinking block (signature only when the guard left it as the model
# wrote it) or an encrypted one.
_THINKING_BLOCK: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"enum": ["thinking", "redacted_thinking"]},
        "thinking": {"type": "string"},
        "signature": {"type": "string"},
        "data": {"type": "string"},
    },
}

_CHAT_COMPLETION: dict[str, Any] = {
    "title": "ChatCompletion",
    "type": "object",
    "required": ["id", "object", "created", "model", "choices", "usage"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "chat.completion"},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "choices": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["index", "message", "finish_reason"],
                "properties": {
                    "index": {"type": "integer", "minimum": 0},
                    "message": {
                        "type": "object",
                        "required": ["role", "content"],
                        "properties": {
                            "role": {"const": "assistant"},
                            "content": _NULLABLE_STRING,
                            "refusal": _NULLABLE_STRING,
                            "tool_calls": {"type": "array", "items": _TOOL_CALL},
                            "reasoning_content": {"type": "string"},
                            "thinking_blocks": {"type": "array", "items": _THINKING_BLOCK},
                        },
                    },
                    "finish_reason": {"enum": ["stop", "length", "content_filter", "tool_calls"]},
                    "logprobs": {"type": "null"},
                },
            },
        },
        "usage": _TOKEN_USAGE,
    },
}

_SCAN_RESPONSE: dict[str, Any] = {
    "title": "ScanResponse",
    "type": "object",
    "required": ["action", "redacted_text", "findings", "scores"],
    "properties": {
        "action": {"enum": ["allow", "redact", "block"]},
        "redacted_text": {"type": "string"},
        "findings": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "start", "end", "score", "detector"],
                "properties": {
                    "type": {"type": "string"},
                    "start": {"type": "integer", "minimum": 0},
                    "end": {"type": "integer", "minimum": 0},
                    "score": {"type": "number", "minimum": 0, "maximum": 1},
                    "detector": {"type": "string"},
                },
            },
        },
        "scores": {"type": "object", "additionalProperties": {"type": "number"}},
    },
}

_USAGE_REPORT: dict[str, Any] = {
    "title": "UsageReport",
    "type": "object",
    "required": ["object", "tenant", "key", "windows"],
    "properties": {
        "object": {"const": "usage"},
        "tenant": {"type": "string"},
        "key": {"type": "string"},
        "windows": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["scope", "window", "unit", "limit", "used", "remaining", "resets_at"],
                "properties": {
                    "scope": {"enum": ["key", "tenant"]},
                    "window": {"enum": ["rpm", "tpm", "tpd", "usd_month"]},
                    "description": {"type": "string"},
                    "unit": {"type": "string"},
                    "limit": {"type": "number", "minimum": 0},
                    "used": {"type": "number", "minimum": 0},
                    "remaining": {"type": "number", "minimum": 0},
                    "resets_at": {"type": "integer"},
                },
            },
        },
    },
}

_HEALTH: dict[str, Any] = {
    "title": "Health",
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"const": "ok"}},
}

_OPENAPI: dict[str, Any] = {
    "title": "OpenAPIDocument",
    "type": "object",
    "required": ["openapi", "info", "paths"],
    "properties": {"openapi": {"type": "string", "pattern": "^3\\."}},
}

# Success bodies the handler's return annotations cannot express; keyed like DOCUMENTED_ERRORS.
_SUCCESS_CONTENT: Mapping[tuple[str, str], dict[str, Any]] = {
    ("GET", "/health"): {_JSON: {"schema": _HEALTH}},
    ("GET", "/v1/openapi.json"): {_JSON: {"schema": _OPENAPI}},
    ("POST", "/v1/chat/completions"): {
        _JSON: {"schema": _CHAT_COMPLETION},
        # `stream: true`: chat.completion.chunk events as the answer is produced, then `[DONE]`.
        _SSE: {"schema": {"type": "string"}},
    },
    ("POST", "/v1/guardrails/scan"): {_JSON: {"schema": _SCAN_RESPONSE}},
    ("GET", "/v1/usage"): {_JSON: {"schema": _USAGE_REPORT}},
}

_STRING_HEADER: dict[str, Any] = {"schema": {"type": "string"}}
_SUCCESS_HEADERS: Mapping[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/chat/completions"): {
        **{
            name: {**_STRING_HEADER, "required": True} for name in ("x-request-id", "x-llmops-route", "x-llmops-target")
        },
        # A streamed answer's cost is known only after its last byte (audit record, /v1/usage).
        "x-llmops-cost-usd": {**_STRING_HEADER, "description": "USD; absent on a streamed answer"},
        # On every response of the gateway function (llmops.application.server_timing).
        "Server-Timing": {
            **_STRING_HEADER,
            "required": True,
            "description": "gateway;dur=<ms>, provider;dur=<ms>, and ttft;dur=<ms> on a streamed answer",
        },
    },
}

# Explicit examples: fuzzers run these first, so the success path is always exercised.
_REQUEST_EXAMPLES: Mapping[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/chat/completions"): {
        "model": "chat-default",
        "messages": [{"role": "user", "content": "Say hello in five words."}],
        "max_tokens": 64,
    },
    ("POST", "/v1/guardrails/scan"): {"text": "Mail jane.doe@example.com about the order.", "direction": "input"},
}

_POWERTOOLS_ONLY_SCHEMAS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")


def resolver_routes(router: ProxyRouter) -> set[tuple[str, str]]:
    """(METHOD, path) of every route registered on the router."""
    return {(route.method, route.path) for route in router.routes}


def _documented(route: ProxyRoute) -> Callable[..., Any]:
    """What Powertools reads of an endpoint to document it: its name (the operationId), docstring and
    signature, types resolved; an `ApiResponse` answer is documented as Powertools' `Response[str]`."""
    hints = typing.get_type_hints(route.endpoint)
    returns = hints.get("return", inspect.Signature.empty)
    body = [inspect.Parameter("body", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=route.body)]

    def endpoint(**_: Any) -> None:
        raise NotImplementedError("documentation only")  # pragma: no cover - never routed to

    endpoint.__name__ = endpoint.__qualname__ = route.endpoint.__name__
    endpoint.__doc__ = route.endpoint.__doc__
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        body if route.body is not None else [],
        return_annotation=Response[str] if returns is ApiResponse else returns,
    )
    return endpoint


def _powertools_resolver(router: ProxyRouter) -> APIGatewayRestResolver:
    resolver = APIGatewayRestResolver(enable_validation=True)
    for route in router.routes:
        resolver.route(route.path, route.method)(_documented(route))
    return resolver


def _error_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _ERROR_DESCRIPTIONS.get(status, "Error in the OpenAI shape."),
        "content": {_JSON: {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}}},
    }
    if status in _RETRY_AFTER_STATUSES:
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before retrying.",
                "required": True,
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            }
        }
    return response


def _document_operation(key: tuple[str, str], operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)  # validation failures are OpenAI-shaped 400s, never 422s
    success = responses.setdefault("200", {"description": "Successful Response"})
    if key in _SUCCESS_CONTENT:
        success["content"] = copy.deepcopy(_SUCCESS_CONTENT[key])
    if key in _SUCCESS_HEADERS:
        success["headers"] = copy.deepcopy(_SUCCESS_HEADERS[key])
    for status in DOCUMENTED_ERRORS.get(key, _DEFAULT_ERRORS):
        responses[str(status)] = _error_response(status)
    if key in _REQUEST_EXAMPLES and "requestBody" in operation:
        media = operation["requestBody"].setdefault("content", {}).setdefault(_JSON, {})
        media["example"] = copy.deepcopy(_REQUEST_EXAMPLES[key])
    operation["security"] = [] if key in PUBLIC_ROUTES else [{BEARER_SCHEME: []}]


def openapi_document(router: ProxyRouter, *, title: str = "llmops-gateway", version: str = "1.0.0") -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route on `router`, with auth, errors and bodies filled in."""
    raw = _powertools_resolver(router).get_openapi_json_schema(
        title=title,
        version=version,
        description="OpenAI-compatible LLMOps gateway: chat completions, guardrails, usage and feedback.",
        security_schemes={BEARER_SCHEME: HTTPBearer(bearerFormat="API key")},
        security=[{BEARER_SCHEME: []}],
    )
    document: dict[str, Any] = json.loads(raw)
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                _document_operation((method.upper(), path), operation)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _POWERTOOLS_ONLY_SCHEMAS:
        schemas.pop(name, None)
    schemas[ERROR_SCHEMA_NAME] = copy.deepcopy(_ERROR_SCHEMA)
    return document


@functools.cache
def openapi_json(router: ProxyRouter) -> str:
    """`openapi_document(router)` as the JSON body `GET /v1/openapi.json` answers, built once per
    router (per Lambda container): the routes cannot change after import."""
    return json.dumps(openapi_document(router), separators=(",", ":"))
