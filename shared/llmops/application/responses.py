"""A transport-neutral HTTP response the handlers turn into their framework's response type."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmops.application.rendering import error_body
from llmops.domain.errors import GatewayError
from llmops.lambda_runtime import StreamingResponse

__all__ = ["ApiResponse", "StreamingResponse", "streaming_response"]

JSON = "application/json"
EVENT_STREAM = "text/event-stream"


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """`stream`, when set, is the body as it is produced (SSE text pieces) and `body` is unused:
    the gateway function then answers with a `StreamingResponse` whose chunks are those pieces."""

    status: int
    body: str
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterator[str] | None = field(default=None, compare=False)

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
        """The API Gateway REST proxy integration result (headers multi-valued); a stream's status
        and headers, its body being `stream` (`streaming_response`)."""
        headers = {name: [value] for name, value in self.headers.items()}
        headers.setdefault("Content-Type", [self.content_type])
        return {"statusCode": self.status, "body": self.body, "isBase64Encoded": False, "multiValueHeaders": headers}


def streaming_response(proxy_result: Mapping[str, Any], stream: Iterator[str]) -> StreamingResponse:
    """A proxy result's status and headers with `stream` as its body, UTF-8 encoded."""
    head = StreamingResponse.from_proxy_result({**proxy_result, "body": "", "isBase64Encoded": False})
    head.body = _utf8(stream)
    return head


def _utf8(pieces: Iterator[str]) -> Iterator[bytes]:
    try:
        for piece in pieces:
            yield piece.encode("utf-8")
    finally:
        # Closed early when the client went away: the producer must hear it, to stop and settle.
        close = getattr(pieces, "close", None)
        if close is not None:
            close()
