"""What the gateway reads from an API Gateway REST proxy event before its routes run."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn

from llmops.domain.errors import BadRequestError, RequestTooLargeError
from llmops.domain.keys import context_from_authorizer
from llmops.domain.tenancy import TenantContext

__all__ = [
    "MAX_INTEGER_LITERAL_CHARS",
    "UnparsableBodyError",
    "oversize_error",
    "parse_json_body",
    "request_id_of",
    "tenant_of",
    "with_header",
]

# Far beyond any integer the API takes (64-bit seeds have 20 digits), far below Python's 4,300-digit
# int-from-string limit, whose ValueError would otherwise escape the parser as a 500.
MAX_INTEGER_LITERAL_CHARS = 64


class UnparsableBodyError(BadRequestError):
    """A body the gateway will not parse. Raised from inside the JSON parser, before any route runs."""

    code = "invalid_json"


def tenant_of(event: Mapping[str, Any]) -> TenantContext | None:
    """The tenant the authorizer put into the request context, if any."""
    context = (event.get("requestContext") or {}).get("authorizer")
    return context_from_authorizer(context) if context and context.get("tenant_id") else None


def request_id_of(event: Mapping[str, Any]) -> str:
    return str((event.get("requestContext") or {}).get("requestId") or "local")


def oversize_error(event: Mapping[str, Any], limit: int) -> RequestTooLargeError | None:
    """Checked before any parsing, so an oversized body costs no validation work."""
    if len(event.get("body") or "") > limit:
        return RequestTooLargeError(f"Request body exceeds the limit of {limit} bytes.")
    return None


def _bounded_int(literal: str) -> int:
    # Called by the C scanner for every integer literal: refusing on length costs nothing, while
    # converting a long literal is quadratic in its digits.
    if len(literal) - literal.startswith("-") > MAX_INTEGER_LITERAL_CHARS:
        raise UnparsableBodyError(
            f"The request body holds an integer longer than {MAX_INTEGER_LITERAL_CHARS} digits.",
            code="invalid_value",
        )
    return int(literal)


def _no_constant(name: str) -> NoReturn:
    raise UnparsableBodyError(f"The request body is not valid JSON: {name} is not a JSON value.")


def parse_json_body(text: str) -> Any:
    """Every route's body parser: standard JSON only (no NaN or Infinity), integers of bounded length.

    Raises `json.JSONDecodeError` for malformed JSON (the router refuses it as
    `invalid_json`), `UnparsableBodyError` for the refusals above, `RecursionError` when nested
    beyond the parser's depth.
    """
    return json.loads(text, parse_int=_bounded_int, parse_constant=_no_constant)


def with_header(result: dict[str, Any], name: str, value: str) -> dict[str, Any]:
    """Adds a header to a proxy integration result unless it already has one by that name (any case)."""
    single = result.get("headers") or {}
    multi = result.get("multiValueHeaders") or {}
    if any(key.lower() == name.lower() for key in (*single, *multi)):
        return result
    if "multiValueHeaders" in result and result["multiValueHeaders"] is not None:
        result["multiValueHeaders"][name] = [value]
    else:
        result["headers"] = {**single, name: value}
    return result
