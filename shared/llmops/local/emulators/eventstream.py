"""The AWS event-stream binary framing (`application/vnd.amazon.eventstream`), encoder side only.

Bedrock's ConverseStream and SageMaker's InvokeEndpointWithResponseStream answer with a chunked
HTTP body of these messages; botocore's `EventStreamBuffer` decodes them. Each message is:

    prelude:  total length (uint32) | headers length (uint32) | CRC32 of those 8 bytes (uint32)
    headers:  name length (uint8) | name | value type (uint8, 7 = string) | value length (uint16) | value
    payload:  the event's bytes (JSON for Bedrock's events, the container's raw bytes for PayloadPart)
    trailer:  CRC32 of everything before it (uint32)

Only string headers are written: every header the two runtimes send is one.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Mapping
from typing import Any

__all__ = ["encode_message", "event_message", "exception_message"]

_STRING_HEADER = 7
_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")


def _encode_headers(headers: Mapping[str, str]) -> bytes:
    encoded = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode("utf-8"), value.encode("utf-8")
        encoded += struct.pack(">B", len(raw_name)) + raw_name
        encoded += struct.pack(">BH", _STRING_HEADER, len(raw_value)) + raw_value
    return bytes(encoded)


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One framed message with its two CRCs."""
    raw_headers = _encode_headers(headers)
    total = _PRELUDE.size + _CRC.size + len(raw_headers) + len(payload) + _CRC.size
    prelude = _PRELUDE.pack(total, len(raw_headers))
    message = prelude + _CRC.pack(zlib.crc32(prelude)) + raw_headers + payload
    return message + _CRC.pack(zlib.crc32(message))


def event_message(
    event_type: str, payload: bytes | Mapping[str, Any], *, content_type: str = "application/json"
) -> bytes:
    """A modeled event: botocore picks the output member named by `:event-type`."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {":event-type": event_type, ":content-type": content_type, ":message-type": "event"}
    return encode_message(headers, body)


def exception_message(exception_type: str, payload: Mapping[str, Any]) -> bytes:
    """A modeled exception sent mid-stream: botocore raises it as `EventStreamError` with that code."""
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return encode_message(headers, json.dumps(payload).encode())
