"""The answers API Gateway gives by itself, before or instead of the gateway function (bad key,
authorizer failure, throttling, unknown path, integration timeout), in the OpenAI error shape.

One definition for both front doors: the CDK stack renders each as a gateway response
(`infra/capabilities/gateway_api.py`), and the local front door (`llmops.local.front_door`)
answers the same status, body and headers where it plays API Gateway's part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

__all__ = ["EDGE_RESPONSES", "EdgeResponse", "edge_response"]


@dataclass(frozen=True, slots=True)
class EdgeResponse:
    response_type: str  # API Gateway's gateway response type, e.g. "UNAUTHORIZED"
    status: int | None  # None keeps API Gateway's own status (the DEFAULT_4XX/5XX families)
    message: str
    error_type: str
    code: str
    retry_after_s: int | None = None

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.error_type, "code": self.code, "param": None}}

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}


EDGE_RESPONSES: Final[tuple[EdgeResponse, ...]] = (
    EdgeResponse(
        "UNAUTHORIZED",
        401,
        "Incorrect or missing API key. Send 'Authorization: Bearer <key>'.",
        "invalid_request_error",
        "invalid_api_key",
    ),
    EdgeResponse(
        "ACCESS_DENIED", 403, "This API key may not call this endpoint.", "invalid_request_error", "permission_denied"
    ),
    # API Gateway answers 403 "Missing Authentication Token" for paths it does not know.
    EdgeResponse(
        "MISSING_AUTHENTICATION_TOKEN",
        404,
        "Unknown path. Every route is under /v1.",
        "invalid_request_error",
        "not_found",
    ),
    EdgeResponse(
        "THROTTLED",
        429,
        "Too many requests to the gateway; retry after a short wait.",
        "requests",
        "rate_limit_exceeded",
        retry_after_s=1,
    ),
    EdgeResponse("REQUEST_TOO_LARGE", 413, "Request body too large.", "invalid_request_error", "request_too_large"),
    EdgeResponse(
        "BAD_REQUEST_PARAMETERS",
        400,
        "Missing or invalid request parameters.",
        "invalid_request_error",
        "invalid_request",
    ),
    EdgeResponse("BAD_REQUEST_BODY", 400, "Invalid request body.", "invalid_request_error", "invalid_request"),
    EdgeResponse("INTEGRATION_TIMEOUT", 504, "The model did not answer in time.", "api_error", "timeout"),
    # The authorizer failed (e.g. the ApiKeys table is unreachable), as opposed to refusing the key.
    EdgeResponse(
        "AUTHORIZER_FAILURE",
        503,
        "Authentication is temporarily unavailable.",
        "api_error",
        "service_unavailable",
        retry_after_s=1,
    ),
    EdgeResponse("DEFAULT_4XX", None, "Invalid request.", "invalid_request_error", "invalid_request"),
    EdgeResponse("DEFAULT_5XX", None, "The gateway failed to answer.", "api_error", "internal_error"),
)

_BY_TYPE: Final = {response.response_type: response for response in EDGE_RESPONSES}


def edge_response(response_type: str) -> EdgeResponse:
    return _BY_TYPE[response_type]
