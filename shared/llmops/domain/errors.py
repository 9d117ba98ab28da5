"""Errors the gateway promises to its callers, each mapped to an OpenAI error shape and HTTP status.

Domain code raises these; the API layer turns them into `{"error": {...}}` bodies. Nothing else
should reach the caller: anything unexpected becomes a 500-class `internal_error` with no detail.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

__all__ = [
    "BadRequestError",
    "ContentBlockedError",
    "GatewayError",
    "ModelNotFoundError",
    "ProviderError",
    "ProviderFailureKind",
    "RequestTooLargeError",
    "StoreUnavailableError",
    "UpstreamUnavailableError",
    "safe_error_code",
]


class GatewayError(Exception):
    status: int = 500
    error_type: str = "api_error"
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.retry_after_s = retry_after_s


class BadRequestError(GatewayError):
    status = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class RequestTooLargeError(GatewayError):
    status = 413
    error_type = "invalid_request_error"
    code = "request_too_large"


class ModelNotFoundError(GatewayError):
    status = 404
    error_type = "invalid_request_error"
    code = "model_not_found"


class ContentBlockedError(GatewayError):
    status = 400
    error_type = "invalid_request_error"
    code = "content_blocked"


class UpstreamUnavailableError(GatewayError):
    """Every target of an alias failed; status is 502, 503 or 504 depending on the last failure."""

    status = 502
    error_type = "api_error"
    code = "upstream_error"

    def __init__(self, message: str, *, attempts: tuple[object, ...] = (), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.attempts = attempts  # what each target answered, for the audit record and metrics


class StoreUnavailableError(GatewayError):
    """A store the gateway depends on (a DynamoDB table) is unreachable or throttled beyond its
    client's retries: 503 `<store>_unavailable` with `Retry-After`. Adapters raise it; the caller
    may retry the same request."""

    status = 503
    error_type = "api_error"

    def __init__(self, store: str, message: str | None = None, *, retry_after_s: int = 1) -> None:
        super().__init__(
            message or f"The {store} store is temporarily unavailable. Retry shortly.",
            code=f"{store}_unavailable",
            retry_after_s=retry_after_s,
        )
        self.store = store


class ProviderFailureKind(StrEnum):
    THROTTLED = "throttled"  # 429-class: retry elsewhere or later
    UNAVAILABLE = "unavailable"  # 5xx-class: model or service error, retryable
    TIMEOUT = "timeout"  # connect/read timeout, retryable
    INVALID_REQUEST = "invalid_request"  # the request itself is wrong; retrying elsewhere won't help

    @property
    def retryable(self) -> bool:
        return self is not ProviderFailureKind.INVALID_REQUEST


# What a service error code looks like (`ValidationException`, `ModelError`): an identifier, never
# free text, so it is safe to show the caller.
# No regex: this module sits below the guard package (which imports it), so it checks by hand.
_ERROR_CODE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.")


def safe_error_code(raw: object) -> str:
    """`raw` if it is shaped like a service error code, else "Unknown" (it might quote the request)."""
    text = str(raw)
    shaped = 0 < len(text) <= 64 and text[0].isascii() and text[0].isalpha() and _ERROR_CODE_CHARS.issuperset(text)
    return text if shaped else "Unknown"


class ProviderError(Exception):
    """Raised by provider adapters after mapping the SDK's exception; carries no prompt text.

    `error_code` is the service's error code (or the client-side exception's name), checked by
    `safe_error_code`: it is the one detail of a provider failure the caller may be shown.
    """

    def __init__(self, kind: ProviderFailureKind, message: str, *, target_id: str = "", error_code: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.target_id = target_id
        self.error_code = safe_error_code(error_code) if error_code else ""

    @property
    def retryable(self) -> bool:
        return self.kind.retryable
