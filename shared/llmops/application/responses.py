"""A transport-neutral HTTP response the handlers turn into their framework's response type."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from llmops.application.rendering import error_body
from llmops.domain.errors import GatewayError

__all__ = ["ApiResponse"]

JSON = "application/json"
EVENT_STREAM = "text/event-stream"


@dataclass(frozen=True, slots=True)
class ApiResponse:
    status: int
    body: str
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> ApiResponse:
        return cls(status, json.dumps(payload, separators=(",", ":")), JSON, dict(headers or {}))

    @classmethod
    def error(cls, error: GatewayError, headers: dict[str, str] | None = None) -> ApiResponse:
        merged = dict(headers or {})
        if error.retry_after_s is not None:
            merged["Retry-After"] = str(error.retry_after_s)
        return cls.json(error.status, error_body(error), merged)

    def to_proxy_result(self) -> dict[str, Any]:
        """The API Gateway Lambda proxy integration result, for paths that bypass the resolver."""
        return {
            "statusCode": self.status,
            "headers": {"Content-Type": self.content_type, **self.headers},
            "body": self.body,
            "isBase64Encoded": False,
        }
