"""The emulators' event-stream encoder against botocore's own decoder, byte for byte."""

from __future__ import annotations

import json
import zlib

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer

from llmops.local.emulators.eventstream import encode_message, event_message, exception_message


def _decode(data: bytes, chunk: int) -> list[dict[str, object]]:
    buffer = EventStreamBuffer()
    decoded: list[dict[str, object]] = []
    for start in range(0, len(data), chunk):
        buffer.add_data(data[start : start + chunk])
        decoded.extend(message.to_response_dict() for message in buffer)
    return decoded


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_events_round_trip_through_botocores_parser_however_the_bytes_are_cut(chunk: int) -> None:
    data = (
        event_message("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "héllo"}})
        + event_message("PayloadPart", b"data: [DONE]\n\n", content_type="application/octet-stream")
        + exception_message("throttlingException", {"message": "slow down"})
    )
    first, second, third = _decode(data, chunk)
    assert first["status_code"] == 200
    assert first["headers"] == {
        ":event-type": "contentBlockDelta",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert json.loads(first["body"]) == {"contentBlockIndex": 0, "delta": {"text": "héllo"}}  # type: ignore[arg-type]
    assert second["body"] == b"data: [DONE]\n\n"
    assert third["status_code"] == 400  # botocore turns exception messages into EventStreamError
    assert third["headers"][":exception-type"] == "throttlingException"  # type: ignore[index]


def test_the_message_crc_covers_the_payload() -> None:
    message = bytearray(encode_message({":message-type": "event"}, b"payload"))
    message[-5] ^= 0xFF  # a payload byte
    buffer = EventStreamBuffer()
    buffer.add_data(bytes(message))
    with pytest.raises(ChecksumMismatch):
        next(iter(buffer))


def test_prelude_states_total_and_header_lengths() -> None:
    message = encode_message({":a": "b"}, b"xyz")
    headers_length = 1 + 2 + 1 + 2 + 1  # name length, ":a", type, value length, "b"
    assert int.from_bytes(message[:4], "big") == len(message) == 12 + headers_length + 3 + 4
    assert int.from_bytes(message[4:8], "big") == headers_length
    assert int.from_bytes(message[8:12], "big") == zlib.crc32(message[:8])
