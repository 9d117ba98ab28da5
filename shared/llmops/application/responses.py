"""A transport-neutral HTTP response the handlers turn into their framework's response type."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmops.application import after_response
from llmops.application.rendering import error_body
from llmops.domain.errors import GatewayError
from llmops.lambda_runtime import StreamingResponse
from llmops.lambda_runtime.after_response import run_after_response, runs_after_response

__all__ = ["ApiResponse", "StreamingResponse", "streaming_response", "with_after_response"]

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
    head.body = _Utf8Body(stream)
    return head


class _Utf8Body(Iterator[bytes]):
    """`pieces` UTF-8 encoded. Its `close()` always reaches the producer, even before the first
    piece (a generator closed before it started would skip its `finally`): closed early when the
    client went away or nothing could be sent, the producer must hear it, to stop and settle."""

    def __init__(self, pieces: Iterator[str]) -> None:
        self._pieces = pieces

    def __next__(self) -> bytes:
        try:
            return next(self._pieces).encode("utf-8")
        except StopIteration:
            raise
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()


def with_after_response(
    context: object,
    respond: Callable[[], dict[str, Any] | StreamingResponse],
    on_failures: Callable[[int], object] | None = None,
) -> dict[str, Any] | StreamingResponse:
    """`respond()`'s answer, carrying the work deferred while it was made (`after_response.defer`)
    as `StreamingResponse.after_response` when the caller runs that once the answer is sent
    (`runs_after_response`: our runtime loop's context), with `on_failures` to hear how many pieces
    failed. For any other caller (tests, benchmarks) deferred work runs where it is deferred: before
    the answer is returned, or as a stream ends.
    """
    if not runs_after_response(context):
        after_response.run_now()
        return respond()
    deferred = after_response.collect()
    try:
        result = respond()
    except BaseException:
        # No answer will carry it: done here, before the error is reported.
        run_after_response(deferred, on_failures=on_failures)
        raise
    if not isinstance(result, StreamingResponse):
        result = StreamingResponse.from_proxy_result(result)  # a one-chunk body: nothing to close
    # A stream defers its record as its body ends; closing the body (a no-op once it has ended)
    # makes sure it ends even if not a byte of it could be sent.
    close: Callable[[], object] | None = getattr(result.body, "close", None)
    if close is not None:
        deferred.append(close)
    result.after_response = deferred
    result.after_response_failed = on_failures
    return result
