"""After-response work: the loop runs it once the response is posted, each piece isolated, within the deadline.

Ordering is observed through the emulated Runtime API: a piece waits for the test to have seen the
response's end, so a piece run before the response was posted would find it missing (never a timing
assertion).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from llmops.lambda_runtime import StreamingResponse
from llmops.lambda_runtime.after_response import run_after_response, runs_after_response
from llmops.lambda_runtime.loop import FunctionIdentity, InvocationContext, run
from llmops.local.runtime_api import BodyChunk, LocalRuntimeApi, PendingInvocation, StreamEnded

WAIT_S = 5.0


@pytest.fixture
def runtime_api() -> Iterator[LocalRuntimeApi]:
    api = LocalRuntimeApi("test-function", timeout_s=30).start()
    yield api
    api.stop()


def _serve(api: LocalRuntimeApi, handler: Any) -> None:
    threading.Thread(
        target=run,
        args=(api.endpoint, lambda: handler),
        kwargs={"identity": FunctionIdentity("test-function")},
        daemon=True,
    ).start()


def _until_the_end(invocation: PendingInvocation) -> list[Any]:
    parts = [invocation.next_part(WAIT_S)]
    while isinstance(parts[-1], BodyChunk):
        parts.append(invocation.next_part(WAIT_S))
    return parts


def test_the_loop_context_says_it_runs_after_response_work() -> None:
    assert runs_after_response(InvocationContext("id", "arn", 0, "f", "$LATEST", 128, "", ""))
    assert not runs_after_response(object())


@pytest.mark.parametrize("streamed", [True, False])
def test_work_runs_after_the_response_is_posted_and_before_the_next_event(
    runtime_api: LocalRuntimeApi, streamed: bool
) -> None:
    client_has_the_answer = threading.Event()
    ran: list[str] = []

    def work(name: str) -> None:
        # Past this wait only if the whole response (its terminating chunk) reached the Runtime API first.
        ran.append(name if client_has_the_answer.wait(WAIT_S) else f"{name} before the response was posted")

    def handler(event: Any, context: Any) -> StreamingResponse:
        if streamed:
            response = StreamingResponse(200, {}, iter([b"a", b"b"]))
        else:
            response = StreamingResponse.from_proxy_result({"statusCode": 200, "body": "{}"})
        response.after_response.append(lambda: work(event["name"]))
        return response

    _serve(runtime_api, handler)
    first = runtime_api.submit({"name": "first"})
    second = runtime_api.submit({"name": "second"})
    assert _until_the_end(first)[-1] == StreamEnded()
    assert ran == [], "the work waits for the response, which the client has whole already"
    client_has_the_answer.set()
    assert _until_the_end(second)[-1] == StreamEnded()
    assert ran[0] == "first", "the next event is fetched only once the first invocation's work is done"


def test_a_failing_piece_changes_nothing_sent_and_the_next_piece_still_runs(runtime_api: LocalRuntimeApi) -> None:
    done = threading.Event()

    def fail() -> None:
        raise RuntimeError("secret caller text")

    def handler(event: Any, context: Any) -> StreamingResponse:
        return StreamingResponse(200, {}, iter([b"body"]), after_response=[fail, done.set])

    _serve(runtime_api, handler)
    parts = _until_the_end(runtime_api.submit({}))
    assert parts[-1] == StreamEnded() and parts[-1].error_type is None
    assert done.wait(WAIT_S)
    assert _until_the_end(runtime_api.submit({}))[-1] == StreamEnded(), "the loop goes on"


def test_a_piece_may_defer_more_work_and_it_runs_too() -> None:
    ran: list[str] = []
    work: list[Any] = []
    work.append(lambda: work.append(lambda: ran.append("deferred by a piece")))
    assert run_after_response(work) == 0
    assert ran == ["deferred by a piece"]


def test_no_piece_starts_past_the_deadline_and_the_rest_are_counted() -> None:
    now = [1000.0]
    ran: list[int] = []

    def piece(n: int) -> None:
        ran.append(n)
        now[0] += 1.0  # each piece takes a second of the invocation's time

    failed = run_after_response([lambda: piece(1), lambda: piece(2), lambda: piece(3)], 1_001_500, lambda: now[0])
    assert ran == [1, 2] and failed == 1


def test_failures_are_logged_by_type_name_only(caplog: pytest.LogCaptureFixture) -> None:
    def fail() -> None:
        raise ValueError("the caller's prompt")

    assert run_after_response([fail]) == 1
    assert "ValueError" in caplog.text and "prompt" not in caplog.text


def test_failures_and_work_left_at_the_deadline_are_reported_once_with_their_count() -> None:
    now = [1000.0]
    reported: list[int] = []

    def fail() -> None:
        now[0] += 1.0
        raise RuntimeError("boom")

    failed = run_after_response([fail, fail, fail], 1_001_500, lambda: now[0], on_failures=reported.append)
    assert failed == 3 and reported == [3]  # two raised, the third never started


def test_work_that_all_succeeds_reports_nothing() -> None:
    reported: list[int] = []
    assert run_after_response([lambda: None], on_failures=reported.append) == 0
    assert reported == []


def test_a_reporter_that_fails_is_logged_by_type_name_and_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    def fail() -> None:
        raise ValueError("the caller's prompt")

    def report(count: int) -> None:
        raise OSError("the caller's completion")

    assert run_after_response([fail], on_failures=report) == 1
    assert "OSError" in caplog.text and "completion" not in caplog.text


def test_the_loop_reports_the_failures_of_the_response_it_sent(runtime_api: LocalRuntimeApi) -> None:
    reported: list[int] = []
    heard = threading.Event()

    def fail() -> None:
        raise RuntimeError("boom")

    def report(count: int) -> None:
        reported.append(count)
        heard.set()

    def handler(event: Any, context: Any) -> StreamingResponse:
        return StreamingResponse(200, {}, iter([b"body"]), after_response=[fail], after_response_failed=report)

    _serve(runtime_api, handler)
    assert _until_the_end(runtime_api.submit({}))[-1] == StreamEnded()
    assert heard.wait(WAIT_S) and reported == [1]
