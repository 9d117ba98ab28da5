"""A transport-neutral HTTP response the handlers turn into their framework's response type."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmops.application.rendering import error_body
from llmops.domain.errors import GatewayError
from llmops.lambda_runtime import StreamingResponse

__all__ = ["ApiResponse", "PendingStream", "StreamingResponse", "streaming_response"]

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
        """The API Gateway Lambda proxy integration result, for paths that bypass the resolver."""
        return {
            "statusCode": self.status,
            "headers": {"Content-Type": self.content_type, **self.headers},
            "body": self.body,
            "isBase64Encoded": False,
        }


class PendingStream:
    """Carries a route's stream past Powertools' resolver, which can only return a complete body.

    A route holds its `ApiResponse.stream` here and answers the status and headers; the Lambda
    handler takes the stream after `resolve` and answers both as one `StreamingResponse`. One per
    handler module: a Lambda environment runs one invocation at a time.
    """

    def __init__(self) -> None:
        self._stream: Iterator[str] | None = None

    def hold(self, stream: Iterator[str]) -> None:
        self._stream = stream

    def take(self) -> Iterator[str] | None:
        stream, self._stream = self._stream, None
        return stream


def streaming_response(proxy_result: Mapping[str, Any], stream: Iterator[str]) -> StreamingResponse:
    """The resolver's proxy result (status, headers) with `stream` as its body, UTF-8 encoded."""
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
