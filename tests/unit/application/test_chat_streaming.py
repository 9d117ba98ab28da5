"""`stream: true` on the chat endpoint: chunks as the output guard releases them, the same answer and
the same policy as without streaming, and accounting (settle, audit) after the last byte, exactly once,
however the stream ends: complete, blocked, failed, past its deadline, or closed by a client gone away.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, Protocol, cast

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletionChunk

from llmops.application.openai_schema import ChatCompletionRequest
from llmops.application.responses import ApiResponse
from llmops.application.streamed_answer import CLIENT_CLOSED_REQUEST
from llmops.application.wiring import GatewayRuntime
from llmops.config.env import Settings
from llmops.domain.audit import AuditRecord
from llmops.domain.chat import Usage
from llmops.domain.deadline import Deadline
from llmops.domain.errors import ProviderFailureKind
from llmops.domain.guard import GuardEngine
from llmops.domain.guard.policy import GuardPolicy
from llmops.domain.guard.streaming import SPACED_SHAPE_REACH
from llmops.domain.quotas import PendingSettlement, SettleOutcome
from llmops.domain.request_trace import RequestTrace
from llmops.domain.tenancy import TenantContext
from llmops.domain.token_estimate import estimate_text_tokens
from tests.fakes import FakeStreamingProvider, gateway_runtime

TENANT = TenantContext("t1", "k1")
# Long enough to stream past the hold-back window, with an e-mail address in the middle of it.
LEAKY = (
    "Sure, here is what I found about the account in question after checking every record we keep. "
    "The owner can be reached at jane.doe@example.com for any further questions about it. "
    "Nothing else in the records needs your attention, and the account is in good standing today. "
    "Payments have arrived on time for the last two years, the contact details were confirmed in the "
    "spring, and no dispute or complaint has been opened since the account was created."
)


class Harness:
    """The chat endpoint with what it books (records, and the settles or releases written with them)
    kept in memory: each settle (it carries usage) or release is counted."""

    def __init__(self, runtime: GatewayRuntime, provider: FakeStreamingProvider) -> None:
        self.runtime, self.provider = runtime, provider
        self.records: list[AuditRecord] = []
        self.traces: list[RequestTrace] = []
        self.settled: list[PendingSettlement] = []
        self.released: list[PendingSettlement] = []
        runtime.chat.audit = self
        runtime.chat.on_finished = self.traces.append

    def write(self, record: AuditRecord) -> None:
        self.records.append(record)

    def settle_and_write(self, settlement: PendingSettlement, record: AuditRecord, now: float) -> SettleOutcome:
        (self.released if settlement.usage is None else self.settled).append(settlement)
        self.records.append(record)
        return SettleOutcome(applied=True)

    def chat(self, *, deadline: Deadline | None = None, **fields: Any) -> ApiResponse:
        body = ChatCompletionRequest.model_validate(
            {"model": "chat-default", "messages": [{"role": "user", "content": "Who owns it?"}], **fields}
        )
        return self.runtime.chat.handle(body, TENANT, f"req-{len(self.records)}", deadline=deadline)

    def use_policy(self, mapping: dict[str, Any]) -> None:
        engine = GuardEngine(GuardPolicy.from_mapping(mapping))
        self.runtime.chat.guards = lambda _name: engine


@pytest.fixture
def provider() -> FakeStreamingProvider:
    return FakeStreamingProvider(LEAKY, Usage(12, 40))


@pytest.fixture
def harness(aws_settings: Settings, provider: FakeStreamingProvider) -> Harness:
    return Harness(gateway_runtime(aws_settings, provider), provider)


def _events(pieces: Iterator[str] | list[str]) -> list[Any]:
    """The SSE data of a stream: chunk dicts, then "[DONE]" (or an error dict)."""
    events = [e.removeprefix("data: ") for e in "".join(pieces).split("\n\n") if e]
    return [e if e == "[DONE]" else json.loads(e) for e in events]


def _text(events: list[Any]) -> str:
    return "".join(
        e["choices"][0]["delta"].get("content", "") for e in events if isinstance(e, dict) and e.get("choices")
    )


def _finish(events: list[Any]) -> str | None:
    reasons = [e["choices"][0]["finish_reason"] for e in events if isinstance(e, dict) and e.get("choices")]
    return next((r for r in reasons if r), None)


def _produced(provider: FakeStreamingProvider) -> str:
    """What the provider sent before its stream was closed (it streams word by word)."""
    return "".join(re.findall(r"\s*\S+", LEAKY)[: provider.sent])


class ClosableStream(Protocol):
    """What the transport gets: SSE pieces, and `close()` for a client that went away."""

    def __iter__(self) -> Iterator[str]: ...
    def __next__(self) -> str: ...
    def close(self) -> None: ...


def _stream(response: ApiResponse) -> ClosableStream:
    assert response.stream is not None, "a streamed request answers with a stream"
    assert callable(getattr(response.stream, "close", None)), "the transport must be able to close it"
    return cast(ClosableStream, response.stream)


def test_the_stream_assembles_the_non_streamed_answer_with_usage_and_done(harness: Harness) -> None:
    plain = json.loads(harness.chat().body)
    response = harness.chat(stream=True, stream_options={"include_usage": True})
    assert response.status == 200
    assert response.content_type == "text/event-stream"
    assert {"x-request-id", "x-llmops-route", "x-llmops-target", "x-llmops-attempts", "x-llmops-cache"} <= set(
        response.headers
    )
    assert "x-llmops-cost-usd" not in response.headers, "a stream's cost is known only after its last byte"
    events = _events(list(_stream(response)))

    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert _text(events) == plain["choices"][0]["message"]["content"]
    assert _finish(events) == "stop"
    assert events[-2]["choices"] == [] and events[-2]["usage"] == plain["usage"]
    assert events[-1] == "[DONE]"
    assert (
        sum(1 for e in events if isinstance(e, dict) and e["choices"] and e["choices"][0]["delta"].get("content")) > 1
    )

    record = harness.records[-1]
    assert (record.status, record.error_code, record.streamed) == (200, None, True)
    assert (record.input_tokens, record.output_tokens) == (12, 40), "settled to the provider's reported usage"
    assert record.cost_usd > 0
    assert record.output_scan is not None
    assert record.output_scan.chars == len(LEAKY)
    assert record.output_scan.window == SPACED_SHAPE_REACH
    assert record.output_scan.scans > 0
    assert "output_scan" in record.to_dict() and "output_scan" not in harness.records[0].to_dict()
    assert len(harness.settled) == 2 and not harness.released


def test_nothing_is_settled_or_audited_before_the_last_byte(harness: Harness) -> None:
    response = harness.chat(stream=True)
    pieces = _stream(response)
    next(pieces)
    next(pieces)
    assert harness.records == [] and harness.settled == [], "accounting ran between tokens"
    list(pieces)
    assert len(harness.records) == 1 and len(harness.settled) == 1


def test_an_email_leaked_mid_stream_reaches_the_client_redacted_as_without_streaming(harness: Harness) -> None:
    plain = json.loads(harness.chat().body)["choices"][0]["message"]["content"]
    streamed = _text(_events(list(_stream(harness.chat(stream=True)))))
    assert "jane.doe@example.com" not in streamed
    assert "[EMAIL_1]" in streamed
    assert streamed == plain
    streamed_record, plain_record = harness.records[1], harness.records[0]
    assert streamed_record.guard == plain_record.guard, "the same output verdict as without streaming"


def test_a_blocking_policy_ends_the_stream_with_content_filter_and_stops_the_read(
    harness: Harness, provider: FakeStreamingProvider
) -> None:
    harness.use_policy({"output_actions": {"EMAIL": "block"}})
    with pytest.raises(Exception, match="blocked"):
        harness.chat()  # without streaming: refused
    events = _events(list(_stream(harness.chat(stream=True, stream_options={"include_usage": True}))))

    assert _finish(events) == "content_filter"
    assert "jane.doe" not in _text(events)
    assert _text(events) and LEAKY.startswith(_text(events)), "what was released before the address stays"
    assert events[-1] == "[DONE]" and events[-2]["usage"]["completion_tokens"] > 0
    assert provider.sent < len(LEAKY.split()), "the provider was read to the end of a blocked answer"
    assert provider.closed == 1
    record = harness.records[-1]
    assert (record.status, record.guard[-1].action) == (200, "block")
    assert record.output_tokens == estimate_text_tokens(_produced(provider)), "counted: the read was stopped"
    assert len(harness.settled) == 2, "the blocked stream's tokens are settled too"


def test_a_client_that_disconnects_stops_the_read_and_is_settled_and_audited_as_cancelled(
    harness: Harness, provider: FakeStreamingProvider
) -> None:
    pieces = _stream(harness.chat(stream=True))
    for _ in range(3):
        next(pieces)
    pieces.close()  # what the transport does when the client goes away (GeneratorExit in the producer)

    assert provider.closed == 1 and provider.sent < len(LEAKY.split())
    (record,) = harness.records
    assert (record.status, record.error_code) == (CLIENT_CLOSED_REQUEST, "client_closed_request")
    # Counted, not reported: the provider never got to send its usage.
    produced = _produced(provider)
    assert record.output_tokens == estimate_text_tokens(produced)
    (settled,) = harness.settled
    assert settled.usage is not None
    assert (settled.usage.input_tokens, settled.usage.output_tokens) == (record.input_tokens, record.output_tokens)
    assert not harness.released
    assert record.output_scan is not None and record.output_scan.chars == len(produced)
    pieces.close()
    assert len(harness.records) == 1 and len(harness.settled) == 1, "settled and audited exactly once"


def test_a_stream_closed_before_its_first_piece_is_settled_and_audited(harness: Harness) -> None:
    _stream(harness.chat(stream=True)).close()
    (record,) = harness.records
    assert record.status == CLIENT_CLOSED_REQUEST
    assert len(harness.settled) == 1


def test_a_mid_stream_provider_failure_ends_with_an_error_the_sdk_raises(
    harness: Harness, provider: FakeStreamingProvider
) -> None:
    provider.fail_after = 30
    body = "".join(_stream(harness.chat(stream=True)))
    events = _events([body])
    assert events[-1]["error"]["code"] == "upstream_error"
    assert "[DONE]" not in events, "a failed stream must not look complete"
    assert _finish(events) is None

    # openai-python's Stream over these bytes: the text so far, then APIError.
    response = httpx2.Response(200, content=body.encode(), request=httpx2.Request("POST", "http://gw/v1/chat"))
    client = openai.OpenAI(api_key="k", base_url="http://gw/v1")
    stream = openai.Stream(cast_to=ChatCompletionChunk, response=response, client=client)
    with pytest.raises(openai.APIError) as raised:
        for _ in stream:
            pass
    assert "failed while streaming" in raised.value.message

    (record,) = harness.records
    assert (record.status, record.error_code) == (502, "upstream_error")
    assert record.output_tokens > 0 and len(harness.settled) == 1


@pytest.mark.parametrize(("kind", "status"), [(ProviderFailureKind.TIMEOUT, 504), (ProviderFailureKind.THROTTLED, 503)])
def test_the_error_event_names_the_failure(
    harness: Harness, provider: FakeStreamingProvider, kind: ProviderFailureKind, status: int
) -> None:
    provider.fail_after, provider.fail_kind = 2, kind
    events = _events(list(_stream(harness.chat(stream=True))))
    assert events[-1]["error"]["type"] == "api_error"
    assert harness.records[-1].status == status


def test_a_failure_before_the_first_event_falls_back_as_without_streaming(
    harness: Harness, provider: FakeStreamingProvider
) -> None:
    provider.failing.add("bedrock-claude-haiku")
    response = harness.chat(stream=True)
    assert response.headers["x-llmops-attempts"] == "2"
    assert _finish(_events(list(_stream(response)))) == "stop"


def test_a_stream_that_outlives_the_deadline_ends_with_an_error_settled_and_audited(
    harness: Harness, provider: FakeStreamingProvider
) -> None:
    now = [0.0]
    deadline = Deadline.after(10.0, clock=lambda: now[0])
    harness.runtime.completions.clock = lambda: now[0]
    pieces = _stream(harness.chat(stream=True, deadline=deadline))
    taken = [next(pieces), next(pieces)]
    now[0] = 9.5  # within the margin kept for settle and audit
    taken.extend(pieces)
    events = _events(taken)
    assert events[-1]["error"]["code"] == "upstream_timeout"
    assert provider.closed == 1
    (record,) = harness.records
    assert (record.status, record.error_code) == (504, "upstream_timeout")
    assert len(harness.settled) == 1


def test_usage_is_counted_when_the_provider_reports_none(harness: Harness, provider: FakeStreamingProvider) -> None:
    provider.reported_usage = False
    events = _events(list(_stream(harness.chat(stream=True, stream_options={"include_usage": True}))))
    usage = events[-2]["usage"]
    assert usage["completion_tokens"] == estimate_text_tokens(LEAKY)
    assert harness.records[-1].output_tokens == usage["completion_tokens"]


def test_ttft_and_time_per_output_token_are_traced(harness: Harness, provider: FakeStreamingProvider) -> None:
    provider.delay_s = 0.002
    list(_stream(harness.chat(stream=True)))
    (trace,) = harness.traces
    assert trace.streamed and trace.ttft_ms is not None and trace.ttft_ms > 0
    assert trace.time_per_output_token_ms is not None and trace.time_per_output_token_ms > 0
    non_streamed = harness.chat()
    assert non_streamed.stream is None and harness.traces[-1].ttft_ms is None


def test_a_cached_answer_streams_whole(harness: Harness, provider: FakeStreamingProvider) -> None:
    first = _text(_events(list(_stream(harness.chat(stream=True, temperature=0)))))
    calls = len(provider.calls)
    response = harness.chat(stream=True, temperature=0)
    assert response.headers["x-llmops-cache"] == "hit" and response.stream is None
    assert _text(_events([response.body])) == first
    assert len(provider.calls) == calls
