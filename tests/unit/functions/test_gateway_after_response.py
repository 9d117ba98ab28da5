"""The gateway's settle-with-audit write runs after its answer has been sent, buffered or streamed.

Under the runtime loop (its context says it runs after-response work) the handler's answer carries
the write as `after_response`; any other caller gets it done before the answer is returned.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from llmops.adapters import aws_clients
from llmops.adapters.dynamodb.call_counter import DynamoCallCounter
from llmops.adapters.sqs.dead_letter_queue import DeadLetterQueue
from llmops.config.env import Settings
from llmops.lambda_runtime import StreamingResponse
from llmops.lambda_runtime.after_response import run_after_response
from llmops.lambda_runtime.loop import FunctionIdentity, run
from llmops.local.lambda_runtime import LocalLambdaContext
from llmops.local.runtime_api import BodyChunk, LocalRuntimeApi, StreamEnded

WAIT_S = 10.0
EVENTS = ["chat_completion", "chat_completion_stream"]


def _admitted(load_event: Any, name: str) -> dict[str, Any]:
    event = load_event(name)
    body = {**json.loads(event["body"]), "temperature": 0.7}  # not cacheable: no cache write to count
    event["body"] = json.dumps(body)
    event["requestContext"]["authorizer"]["limits"] = json.dumps({"rpm": 100, "tpm": 100_000})
    return event


def _request_id(event: dict[str, Any]) -> str:
    return str(event["requestContext"]["requestId"])


@pytest.mark.parametrize("event_name", EVENTS)
def test_under_the_loop_the_answer_is_whole_before_its_settle_and_record_are_written(
    gateway: ModuleType, load_event: Any, event_name: str
) -> None:
    counter = DynamoCallCounter().attach(gateway._runtime.ledger._client)
    event = _admitted(load_event, event_name)
    result = gateway.handler(event, LocalLambdaContext("gateway", runs_after_response=True))
    assert isinstance(result, StreamingResponse)
    body = b"".join(result.body)  # the whole answer, as the loop sends it
    assert result.status == 200 and body
    assert counter.writes == 1, counter.calls  # the reserve only
    assert gateway._runtime.audit.get("dev", _request_id(event)) is None

    assert run_after_response(result.after_response) == 0
    assert counter.writes == 2 and counter.calls.get("TransactWriteItems") == 2, counter.calls
    record = gateway._runtime.audit.get("dev", _request_id(event))
    assert record is not None and record.status == 200 and not record.settle_pending


@pytest.mark.parametrize("event_name", EVENTS)
def test_a_direct_caller_gets_the_record_written_by_the_end_of_the_answer(
    gateway: ModuleType, load_event: Any, event_name: str
) -> None:
    event = _admitted(load_event, event_name)
    result = gateway.handler(event, LocalLambdaContext("gateway"))
    if isinstance(result, StreamingResponse):
        assert result.after_response == []
        b"".join(result.body)
    else:
        assert result["statusCode"] == 200
    record = gateway._runtime.audit.get("dev", _request_id(event))
    assert record is not None and not record.settle_pending


def test_a_client_gone_before_the_first_byte_still_leaves_its_record(gateway: ModuleType, load_event: Any) -> None:
    event = _admitted(load_event, "chat_completion_stream")
    result = gateway.handler(event, LocalLambdaContext("gateway", runs_after_response=True))
    assert isinstance(result, StreamingResponse)
    # Nothing of the body is ever read (the loop could not connect): the after-response work closes it.
    assert run_after_response(result.after_response) == 0
    record = gateway._runtime.audit.get("dev", _request_id(event))
    assert record is not None and record.error_code == "client_closed_request" and not record.settle_pending


@pytest.mark.parametrize("event_name", EVENTS)
def test_a_record_whose_write_fails_after_the_answer_goes_to_the_dead_letter_queue(
    gateway: ModuleType, load_event: Any, aws_settings: Settings, event_name: str
) -> None:
    event = _admitted(load_event, event_name)
    result = gateway.handler(event, LocalLambdaContext("gateway", runs_after_response=True))
    assert isinstance(result, StreamingResponse)
    b"".join(result.body)
    client = gateway._runtime.ledger._client
    failure = ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "TransactWriteItems")
    with mock.patch.object(client, "transact_write_items", side_effect=failure), mock.patch("time.sleep"):
        assert run_after_response(result.after_response) == 0  # the books dead-letter; nothing escapes
    audit = gateway._runtime.audit
    assert audit.get("dev", _request_id(event)) is None

    sqs: Any = aws_clients.client("sqs", connect_timeout_s=1, read_timeout_s=5, max_attempts=2)
    ledger = gateway._runtime.ledger
    report = DeadLetterQueue(sqs, aws_settings.audit_dlq_url).drain(
        audit.write_once, lambda pending: ledger.apply_pending(pending, time.time())
    )
    # Both parked, both replayed: the record, and the settle that could not ride in its transaction.
    assert (report.audit_written, report.settlements_applied, report.failed) == (1, 1, 0), report.to_json()
    assert audit.get("dev", _request_id(event)) is not None


@pytest.fixture
def runtime_api() -> Iterator[LocalRuntimeApi]:
    api = LocalRuntimeApi("llmops-gateway", timeout_s=30).start()
    yield api
    api.stop()


@pytest.mark.parametrize("event_name", EVENTS)
def test_through_the_runtime_api_the_response_is_posted_before_the_books_are_written(
    gateway: ModuleType, load_event: Any, runtime_api: LocalRuntimeApi, event_name: str
) -> None:
    client_has_the_answer = threading.Event()
    order: list[str] = []
    books = gateway._runtime.chat.audit
    settle_and_write = books.settle_and_write

    def recording_settle_and_write(*args: Any) -> Any:
        order.append("response posted" if client_has_the_answer.wait(WAIT_S) else "written before the response")
        return settle_and_write(*args)

    threading.Thread(
        target=run,
        args=(runtime_api.endpoint, lambda: gateway.handler),
        kwargs={"identity": FunctionIdentity("llmops-gateway")},
        daemon=True,
    ).start()
    event = _admitted(load_event, event_name)
    with mock.patch.object(books, "settle_and_write", side_effect=recording_settle_and_write):
        invocation = runtime_api.submit(event)
        parts = [invocation.next_part(WAIT_S)]
        while isinstance(parts[-1], BodyChunk):
            parts.append(invocation.next_part(WAIT_S))
        assert parts[-1] == StreamEnded() and parts[-1].error_type is None
        assert order == []
        client_has_the_answer.set()
        # The next invocation is served only once this one's work is done: then the record is there.
        after = runtime_api.submit(load_event("health"))
        while isinstance(after.next_part(WAIT_S), BodyChunk):
            pass
    assert order == ["response posted"]
    record = gateway._runtime.audit.get("dev", _request_id(event))
    assert record is not None and not record.settle_pending


@pytest.mark.parametrize("event_name", EVENTS)
def test_a_record_lost_after_the_answer_is_counted_for_its_alarm(
    gateway: ModuleType, load_event: Any, capsys: pytest.CaptureFixture[str], event_name: str
) -> None:
    event = _admitted(load_event, event_name)
    context = LocalLambdaContext("gateway", runs_after_response=True)
    result = gateway.handler(event, context)
    assert isinstance(result, StreamingResponse)
    b"".join(result.body)
    capsys.readouterr()
    client = gateway._runtime.ledger._client
    failure = ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "TransactWriteItems")
    queue_down = ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "x"}}, "SendMessage")
    dead_letters = gateway._runtime.audit._dead_letter.__self__  # the queue the books park in
    with (
        mock.patch.object(client, "transact_write_items", side_effect=failure),
        mock.patch.object(dead_letters._client, "send_message", side_effect=queue_down),
        mock.patch("time.sleep"),
    ):
        # Neither DynamoDB nor the dead-letter queue takes it: the loop runs the work as it would.
        assert run_after_response(result.after_response, on_failures=result.after_response_failed) == 1
    assert gateway._runtime.audit.get("dev", _request_id(event)) is None
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    published = [line for line in lines if line.get("record") == "after_response"]
    assert len(published) == 1, lines
    emf = published[0]
    assert emf["AfterResponseFailures"] == [1.0] and emf["service"] == "gateway"
    assert emf["invocation_id"] == context.aws_request_id
    assert emf["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "AfterResponseFailures", "Unit": "Count"}]


def test_an_answer_whose_work_all_succeeds_publishes_no_failure_line(
    gateway: ModuleType, load_event: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    result = gateway.handler(
        _admitted(load_event, "chat_completion"), LocalLambdaContext("gateway", runs_after_response=True)
    )
    assert isinstance(result, StreamingResponse)
    b"".join(result.body)
    assert run_after_response(result.after_response, on_failures=result.after_response_failed) == 0
    assert '"record": "after_response"' not in capsys.readouterr().out
