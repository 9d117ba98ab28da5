"""Our runtime loop against a Runtime API (the local emulation, which records what reaches it).

Timing: the producers wait on events the test sets when it has seen a chunk, so "chunk 1 reached
the Runtime API before chunk 2 was produced" is asserted as an ordering, never as a speed.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from llmops.lambda_runtime import HTTP_INTEGRATION_RESPONSE, PRELUDE_DELIMITER, StreamingResponse
from llmops.lambda_runtime.loop import ERROR_BODY_TRAILER, FunctionIdentity, Handler, run
from llmops.local.runtime_api import BodyChunk, FunctionFailed, LocalRuntimeApi, PendingInvocation, StreamEnded

WAIT_S = 5.0


@pytest.fixture
def runtime_api() -> Iterator[LocalRuntimeApi]:
    api = LocalRuntimeApi("test-function", timeout_s=30).start()
    yield api
    api.stop()


def _serve(api: LocalRuntimeApi, handler: Handler | Callable[[], Handler], *, loads: bool = False) -> threading.Thread:
    load: Callable[[], Handler] = handler if loads else (lambda: handler)  # type: ignore[assignment,return-value]
    thread = threading.Thread(
        target=run,
        args=(api.endpoint, load),
        kwargs={"identity": FunctionIdentity("test-function", memory_mb=256)},
        daemon=True,
    )
    thread.start()
    return thread


def _parts(invocation: PendingInvocation) -> list[Any]:
    parts: list[Any] = []
    while True:
        part = invocation.next_part(WAIT_S)
        parts.append(part)
        if not isinstance(part, BodyChunk):
            return parts


def _body(parts: list[Any]) -> bytes:
    return b"".join(p.data for p in parts if isinstance(p, BodyChunk))


def _split(raw: bytes) -> tuple[dict[str, Any], bytes]:
    prelude, _, body = raw.partition(PRELUDE_DELIMITER)
    return json.loads(prelude), body


def test_a_stream_is_sent_in_the_streaming_mode_with_prelude_and_delimiter(runtime_api: LocalRuntimeApi) -> None:
    def handler(event: Any, context: Any) -> StreamingResponse:
        return StreamingResponse(200, {"Content-Type": "text/event-stream"}, iter([b"data: 1\n\n", b"data: 2\n\n"]))

    _serve(runtime_api, handler)
    invocation = runtime_api.submit({"path": "/"})
    parts = _parts(invocation)
    assert parts[-1] == StreamEnded()
    assert isinstance(parts[0], BodyChunk)
    assert parts[0].data.endswith(PRELUDE_DELIMITER), "the prelude is a chunk of its own"
    prelude, body = _split(_body(parts))
    assert prelude == {"statusCode": 200, "headers": {"Content-Type": "text/event-stream"}}
    assert body == b"data: 1\n\ndata: 2\n\n"
    headers = invocation.response_headers
    assert headers["lambda-runtime-function-response-mode"] == "streaming"
    assert headers["transfer-encoding"] == "chunked"
    assert headers["content-type"] == HTTP_INTEGRATION_RESPONSE
    assert "lambda-runtime-function-error-body" in headers["trailer"].lower()


def test_each_chunk_leaves_before_the_next_is_produced(runtime_api: LocalRuntimeApi) -> None:
    first_seen = threading.Event()
    seen_before_second: list[bool] = []

    def produce() -> Iterator[bytes]:
        yield b"first"
        seen_before_second.append(first_seen.wait(WAIT_S))
        yield b"second"

    _serve(runtime_api, lambda event, context: StreamingResponse(200, {}, produce()))
    invocation = runtime_api.submit({})
    assert invocation.next_part(WAIT_S) == BodyChunk(StreamingResponse(200, {}, []).prelude_bytes())
    assert invocation.next_part(WAIT_S) == BodyChunk(b"first")
    first_seen.set()
    assert invocation.next_part(WAIT_S) == BodyChunk(b"second")
    assert invocation.next_part(WAIT_S) == StreamEnded()
    assert seen_before_second == [True], "the producer was not held back until the first chunk arrived"


def test_a_body_failing_mid_stream_ends_with_the_error_trailers(runtime_api: LocalRuntimeApi) -> None:
    def produce() -> Iterator[bytes]:
        yield b"partial"
        raise TimeoutError("the model stopped answering")

    _serve(runtime_api, lambda event, context: StreamingResponse(200, {}, produce()))
    parts = _parts(runtime_api.submit({}))
    end = parts[-1]
    assert isinstance(end, StreamEnded)
    assert end.error_type == "TimeoutError"
    error = json.loads(base64.b64decode(end.trailers[ERROR_BODY_TRAILER.lower()]))
    assert error["errorType"] == "TimeoutError"
    assert "stopped answering" not in error["errorMessage"], "exception messages may echo input: not sent"
    assert _split(_body(parts))[1] == b"partial"


def test_a_proxy_result_is_streamed_with_the_same_framing(runtime_api: LocalRuntimeApi) -> None:
    result = {
        "statusCode": 201,
        "headers": {"Content-Type": "application/octet-stream"},
        "multiValueHeaders": {"x-many": ["a", "b"]},
        "body": base64.b64encode(b"\x00binary").decode(),
        "isBase64Encoded": True,
    }
    _serve(runtime_api, lambda event, context: result)
    prelude, body = _split(_body(_parts(runtime_api.submit({}))))
    assert prelude == {
        "statusCode": 201,
        "headers": {"Content-Type": "application/octet-stream"},
        "multiValueHeaders": {"x-many": ["a", "b"]},
    }
    assert body == b"\x00binary"


def test_a_result_that_is_not_an_http_response_is_a_buffered_json_answer(runtime_api: LocalRuntimeApi) -> None:
    _serve(runtime_api, lambda event, context: {"principalId": "someone"})
    invocation = runtime_api.submit({})
    assert json.loads(_body(_parts(invocation))) == {"principalId": "someone"}
    assert invocation.streamed is False


def test_the_handler_gets_the_event_and_a_lambda_context(runtime_api: LocalRuntimeApi) -> None:
    seen: dict[str, Any] = {}

    def handler(event: Any, context: Any) -> dict[str, Any]:
        seen.update(
            event=event,
            request_id=context.aws_request_id,
            name=context.function_name,
            memory=context.memory_limit_in_mb,
            arn=context.invoked_function_arn,
            remaining_ms=context.get_remaining_time_in_millis(),
        )
        return {"statusCode": 204}

    _serve(runtime_api, handler)
    invocation = runtime_api.submit({"hello": "world"})
    _parts(invocation)
    assert seen["event"] == {"hello": "world"}
    assert seen["request_id"] == invocation.request_id
    assert (seen["name"], seen["memory"]) == ("test-function", 256)
    assert seen["arn"].endswith(":function:test-function")
    assert 25_000 < seen["remaining_ms"] <= 30_000


def test_a_handler_exception_is_an_invocation_error_and_the_loop_goes_on(runtime_api: LocalRuntimeApi) -> None:
    calls: list[int] = []

    def handler(event: Any, context: Any) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 1:
            raise KeyError("secret user text")
        return {"statusCode": 200, "body": "ok"}

    _serve(runtime_api, handler)
    assert _parts(runtime_api.submit({})) == [FunctionFailed("KeyError")]
    assert _split(_body(_parts(runtime_api.submit({}))))[1] == b"ok"


def test_a_handler_that_cannot_be_loaded_is_an_init_error(runtime_api: LocalRuntimeApi) -> None:
    def load() -> Handler:
        raise ImportError("no module named handler")

    thread = _serve(runtime_api, load, loads=True)
    assert runtime_api.init_failed.wait(WAIT_S)
    thread.join(WAIT_S)
    assert not thread.is_alive(), "a runtime exits after reporting an init error"


def test_a_failed_write_closes_the_body_so_the_producer_stops(runtime_api: LocalRuntimeApi) -> None:
    closed = threading.Event()
    produced: list[int] = []

    def produce() -> Iterator[bytes]:
        try:
            for n in range(1000):
                produced.append(n)
                yield b"token "
                time.sleep(0.02)
        finally:
            closed.set()

    _serve(runtime_api, lambda event, context: StreamingResponse(200, {}, produce()))
    invocation = runtime_api.submit({})
    invocation.next_part(WAIT_S)  # the prelude
    invocation.next_part(WAIT_S)  # the first token
    invocation.abandon()  # the client went away: Lambda cuts the response connection
    assert closed.wait(WAIT_S), "the body iterator was not closed after the write failed"
    assert len(produced) < 1000
    # The environment serves the next invocation.
    assert isinstance(runtime_api.submit({}).next_part(WAIT_S), BodyChunk)
