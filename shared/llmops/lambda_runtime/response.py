"""A streamed HTTP response and the bytes API Gateway's STREAM integration expects before its body.

API Gateway (and function URLs) read a streamed Lambda response as: a JSON prelude with the
status and headers, a delimiter of 8 NUL bytes, then the body as it is written. API Gateway starts
answering the client once it has the prelude and the delimiter.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["HTTP_INTEGRATION_RESPONSE", "PRELUDE_DELIMITER", "StreamingResponse"]

# The content type of a streamed response with a prelude, for API Gateway and function URLs.
HTTP_INTEGRATION_RESPONSE = "application/vnd.awslambda.http-integration-response"
PRELUDE_DELIMITER = b"\x00" * 8


@dataclass(slots=True)
class StreamingResponse:
    """What a handler returns to have its body streamed; `body` is consumed once, as it is sent.

    If the body iterator has a `close()` (a generator does), the runtime calls it when the client
    went away, so the producer can stop reading its source and settle what it produced.

    `after_response` is work to run once the response has been fully posted, before the next
    event (`llmops.lambda_runtime.after_response`); it may still grow while the body is sent.
    `after_response_failed`, if set, is told how many of those pieces failed or were left undone.
    """

    status: int
    headers: dict[str, str]
    body: Iterable[bytes]
    multi_value_headers: dict[str, list[str]] = field(default_factory=dict)
    cookies: list[str] = field(default_factory=list)
    after_response: list[Callable[[], object]] = field(default_factory=list)
    after_response_failed: Callable[[int], object] | None = None

    @classmethod
    def from_proxy_result(cls, result: Mapping[str, Any]) -> StreamingResponse:
        """A buffered Lambda proxy result (`statusCode`, `headers`, `body`, `isBase64Encoded`) as a
        one-chunk stream, so every answer of a STREAM integration has the same framing."""
        raw = result.get("body") or ""
        body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode("utf-8")
        return cls(
            status=int(result.get("statusCode", 200)),
            headers={str(k): str(v) for k, v in (result.get("headers") or {}).items()},
            body=[body] if body else [],
            multi_value_headers={
                str(k): [str(v) for v in values] for k, values in (result.get("multiValueHeaders") or {}).items()
            },
            cookies=[str(c) for c in result.get("cookies") or []],
        )

    def prelude(self) -> dict[str, Any]:
        prelude: dict[str, Any] = {"statusCode": self.status, "headers": dict(self.headers)}
        if self.multi_value_headers:
            prelude["multiValueHeaders"] = {k: list(v) for k, v in self.multi_value_headers.items()}
        if self.cookies:
            prelude["cookies"] = list(self.cookies)
        return prelude

    def prelude_bytes(self) -> bytes:
        """The JSON prelude and the delimiter: the first bytes of the streamed response."""
        return json.dumps(self.prelude(), separators=(",", ":")).encode("utf-8") + PRELUDE_DELIMITER
