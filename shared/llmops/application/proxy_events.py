"""What the gateway reads from an API Gateway REST proxy event before its routes run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmops.domain.errors import RequestTooLargeError
from llmops.domain.keys import context_from_authorizer
from llmops.domain.tenancy import TenantContext

__all__ = ["as_json_request", "oversize_error", "request_id_of", "tenant_of"]


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


def as_json_request(event: dict[str, Any]) -> dict[str, Any]:
    """Every route speaks JSON: a body sent as form data (curl -d) is parsed as JSON, not as a form."""
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    multi = {k: v for k, v in (event.get("multiValueHeaders") or {}).items() if k.lower() != "content-type"}
    headers["Content-Type"] = "application/json"
    multi["Content-Type"] = ["application/json"]
    return {**event, "headers": headers, "multiValueHeaders": multi}
