"""A streamed chat answer (`stream: true`), produced as the provider's deltas clear the output guard:
the chat path hands it to the transport as `ApiResponse.stream` (`llmops.application.chat_endpoint`
takes the request up to the provider's first event; this module takes it from there to the audit
record after the last byte).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from llmops.application import metering
from llmops.application.answer_guard import (
    combine_verdicts,
    guard_tool_call,
    signed_if_unchanged,
)
from llmops.application.rendering import DONE, ChunkRenderer
from llmops.domain.audit import OutputScan, provider_filter_verdict
from llmops.domain.chat import (
    ChatRequest,
    Completion,
    FinishReason,
    Reasoning,
    ResponseFormat,
    ToolCall,
    Usage,
)
from llmops.domain.completions import (
    StreamingResult,
    upstream_failure,
)
from llmops.domain.deadline import Deadline
from llmops.domain.errors import GatewayError, ProviderError, ProviderFailureKind
from llmops.domain.guard import GuardEngine
from llmops.domain.guard.engine import OutputVerdict
from llmops.domain.guard.redaction import PseudonymVault
from llmops.domain.guard.streaming import FinalRelease, StreamingOutputGuard
from llmops.domain.quotas import (
    Reservation,
)
from llmops.domain.request_trace import RequestTrace
from llmops.domain.stages import RequestStage
from llmops.domain.streaming import ReasoningDelta, StreamEnd, ToolCallDelta
from llmops.domain.structured_output import check_structured_output
from llmops.domain.token_estimate import estimate_prompt_tokens, estimate_text_tokens

if TYPE_CHECKING:
    from llmops.application.chat_endpoint import ChatEndpoint

__all__ = ["CLIENT_CLOSED_REQUEST", "PartGuards", "StreamedAnswer"]

_Step = TypeVar("_Step")

# The audit status of a streamed answer whose client went away before its end (nginx's 499): never
# sent, since the client is gone; the record's error code says `client_closed_request`.
CLIENT_CLOSED_REQUEST = 499


def _no_spans(_name: str) -> AbstractContextManager[object]:
    return nullcontext()


@dataclass(frozen=True, slots=True)
class PartGuards:
    """The output guard for a streamed answer's reasoning and tool calls (answer_guard says how):
    the text's engine, vault and system prompt, without grounding."""

    engine: GuardEngine
    vault: PseudonymVault
    system_prompt: str

    def reasoning(self) -> StreamingOutputGuard:
        return StreamingOutputGuard(self.engine, self.vault, self.system_prompt)

    def tool_call(self, call: ToolCall) -> tuple[ToolCall, OutputVerdict]:
        return guard_tool_call(self.engine, call, self.vault, self.system_prompt)


@dataclass(slots=True)
class _OpenToolCall:
    """A streamed tool call whose arguments are still arriving."""

    index: int
    id: str
    name: str
    arguments: list[str]


class StreamedAnswer(Iterator[str]):
    """The SSE pieces of one streamed answer, produced as the provider's deltas clear the output guard.

    The role chunk goes out as soon as the transport asks (the first event has arrived by then), then
    each text the guard releases as a content chunk, then the finish chunk (`stop`/`length`/`tool_calls`,
    or `content_filter` when the guard blocks: the provider read is stopped there), the usage chunk if
    asked for, and `[DONE]`. A provider failure or the deadline after the first byte ends the stream
    with an OpenAI error event instead (openai-python raises it as `APIError`); so does a finished
    answer that is not the structured output `response_format` asked for (502
    `invalid_structured_output`: its text has been sent by then, the error says it is not valid).

    Reasoning streams like text, through its own `StreamingOutputGuard` per block (the same policy,
    without grounding), as `reasoning_content` chunks; when a block ends (its signature, or the next
    text or tool call) it is sent whole in `thinking_blocks`, signed only if the guard left it as the
    model wrote it (answer_guard). Tool calls are released per call, not per token: a call's
    arguments are buffered until the call is complete (the next call starts or the stream ends),
    guarded as output, and then sent as OpenAI sends a call (its id and name, then the arguments),
    because a JSON argument cannot be guarded by prefix: whether a redaction leaves it valid JSON,
    or whether a value is a phone number, is known only once it is whole. A blocked call ends the
    stream with `content_filter`, and nothing held after it (text included) is released.

    `close()` settles the reservation and writes the audit record exactly once, whichever way the
    answer ends: after the last piece, when the transport closes it mid-way because the client went
    away (the provider read stops; what was produced is settled, the record says 499
    `client_closed_request`), or even before its first piece. Accounting, the cache write and the
    audit record all come after the last byte, never between two tokens: they are deferred
    (`ChatEndpoint.defer`), so under the runtime loop they run after the stream's terminating chunk
    has been posted, not before it. Per-delta work is timed into
    `stage_ms` without tracing spans: a subsegment per token would swamp the trace.
    """

    def __init__(
        self,
        endpoint: ChatEndpoint,
        trace: RequestTrace,
        answer: StreamingResult,
        guard: StreamingOutputGuard,
        parts: PartGuards,
        reservation: Reservation,
        request: ChatRequest,
        renderer: ChunkRenderer,
        *,
        include_usage: bool,
        deadline: Deadline,
        request_started: float,
        cache_key: str | None,
        response_format: ResponseFormat | None = None,
    ) -> None:
        self._endpoint, self._trace, self._answer, self._guard = endpoint, trace, answer, guard
        self._parts = parts
        self._reservation, self._request, self._renderer = reservation, request, renderer
        self._include_usage, self._deadline, self._cache_key = include_usage, deadline, cache_key
        self._request_started = request_started
        self._response_format = response_format  # the caller's, to check the answer against
        self._raw: list[str] = []  # the model's text as it came (placeholder space): counted, cached
        self._raw_parts: list[str] = []  # its reasoning and tool-call pieces as they came: counted
        self._shown: list[str] = []  # the text released to the caller, for the structured-output check
        self._reasoning_guard: StreamingOutputGuard | None = None  # the open reasoning block's
        self._reasoning_raw: list[str] = []
        self._reasoning_shown: list[str] = []
        self._reasoning: list[Reasoning] = []  # finished blocks as the model wrote them
        self._open_call: _OpenToolCall | None = None
        self._closed_calls: list[_OpenToolCall] = []
        self._tool_calls: list[ToolCall] = []  # finished calls as the model wrote them
        self._part_verdicts: list[OutputVerdict] = []
        self._part_blocked = False  # a reasoning block or a tool call was blocked: the stream ends there
        self._end: StreamEnd | None = None
        self._final: FinalRelease | None = None
        self._failure: GatewayError | None = None
        self._usage: Usage | None = None
        self._delivered = False  # the last piece was handed to the transport
        self._cancelled = False
        self._reading_s = 0.0  # waiting on the provider after its first event
        self._first_content_at: float | None = None
        self._last_content_at: float | None = None
        self._content_chunks = 0
        self._finished = False
        self._pieces = self._produce()

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        self._pieces.close()
        # A generator closed before its first `next` never runs its `finally`: finish it here.
        self._cancelled = self._cancelled or not (self._delivered or self._finished)
        self._finish()

    def _produce(self) -> Generator[str]:
        try:
            yield self._renderer.role()
            yield from self._answer_or_error()
        except GeneratorExit:
            self._cancelled = not self._delivered
            raise
        finally:
            self._finish()

    def _answer_or_error(self) -> Iterator[str]:
        try:
            yield from self._relay()
        except ProviderError as error:
            self._failure = upstream_failure(
                f"The model behind '{self._answer.route.alias}' failed while streaming its answer "
                f"({error.kind.value}); the answer is incomplete. Retry the request.",
                error.kind,
            )
        except GatewayError as error:
            self._failure = error
        except Exception:
            self._failure = GatewayError("The gateway failed while streaming the answer.")
        if self._failure is not None:
            self._delivered = True
            yield self._renderer.error(self._failure)
            return
        yield from self._ending()

    def _relay(self) -> Iterator[str]:
        """The provider's deltas through the guard, until its end, a block or the deadline."""
        margin_s = self._endpoint.completions.deadline_margin_s
        waited_from = time.perf_counter()
        for event in self._answer.events:
            self._reading_s += time.perf_counter() - waited_from
            blocked = False
            if isinstance(event, ReasoningDelta):
                yield from self._reasoning_delta(event)
            else:
                yield from self._close_reasoning()  # text, a tool call or the end closes the open block
                if isinstance(event, StreamEnd):
                    self._end = event  # its usage is settled even if the last tool call is blocked
                    if event.finish_reason is FinishReason.CONTENT_FILTER:
                        self._trace.guard.append(provider_filter_verdict())  # e.g. Converse's guardrail
                    yield from self._close_tool_call()
                    return
                elif isinstance(event, ToolCallDelta):
                    yield from self._tool_call_delta(event)
                elif not self._part_blocked:
                    self._raw.append(event.text)
                    release = self._guarded(self._guard.feed, event.text)
                    if release.text:
                        yield self._content(release.text)
                    blocked = release.blocked
            if blocked or self._part_blocked:
                self._answer.close()  # stop reading (and paying for) an answer that will not be shown
                return
            if self._deadline.usable_s(margin_s) <= 0:
                raise upstream_failure(
                    f"The answer of '{self._answer.route.alias}' did not finish within the request's time "
                    "limit; it is incomplete. Ask for fewer tokens or retry.",
                    ProviderFailureKind.TIMEOUT,
                )
            waited_from = time.perf_counter()

    def _reasoning_delta(self, event: ReasoningDelta) -> Iterator[str]:
        if event.redacted is not None:  # an encrypted block: nothing to check, sent as it came
            yield from self._close_reasoning()
            block = Reasoning(redacted=event.redacted)
            self._raw_parts.append(event.redacted)
            self._reasoning.append(block)
            yield self._piece(self._renderer.thinking_block(len(self._reasoning) - 1, block))
            return
        if event.text:
            if self._reasoning_guard is None:
                self._reasoning_guard = self._parts.reasoning()
            self._reasoning_raw.append(event.text)
            self._raw_parts.append(event.text)
            release = self._guarded(self._reasoning_guard.feed, event.text)
            if release.text:
                self._reasoning_shown.append(release.text)
                yield self._piece(self._renderer.reasoning(release.text))
            if release.blocked:
                self._part_blocked = True
                return
        if event.signature is not None:
            yield from self._close_reasoning(event.signature)

    def _close_reasoning(self, signature: str | None = None) -> Iterator[str]:
        """Ends the open reasoning block (if any, or a signature alone): the rest of its text, then the block."""
        guard, self._reasoning_guard = self._reasoning_guard, None
        if guard is None and signature is None:
            return
        if guard is not None:
            final = self._guarded(guard.finish)
            if final.verdict is not None:
                self._part_verdicts.append(final.verdict)
            if final.blocked:
                self._part_blocked = True
                return
            if final.text:
                self._reasoning_shown.append(final.text)
                yield self._piece(self._renderer.reasoning(final.text))
        written = Reasoning("".join(self._reasoning_raw), signature)
        shown = signed_if_unchanged(written, "".join(self._reasoning_shown))
        self._reasoning_raw, self._reasoning_shown = [], []
        self._reasoning.append(written)
        yield self._piece(self._renderer.thinking_block(len(self._reasoning) - 1, shown))

    def _tool_call_delta(self, event: ToolCallDelta) -> Iterator[str]:
        call = self._open_call
        if call is not None and event.index != call.index:
            yield from self._close_tool_call()
            call = None
        if self._part_blocked:
            return
        if call is None:
            if any(c.index == event.index for c in self._closed_calls):
                # A delta for a call already released: its arguments could no longer be guarded whole.
                raise ProviderError(
                    ProviderFailureKind.UNAVAILABLE,
                    "The provider's stream continued a tool call after the next one had started",
                    target_id=self._answer.target.id,
                )
            call = self._open_call = _OpenToolCall(event.index, event.id or "", event.name or "", [])
        call.id, call.name = call.id or event.id or "", call.name or event.name or ""
        call.arguments.append(event.arguments)
        self._raw_parts.append(event.arguments)

    def _close_tool_call(self) -> Iterator[str]:
        """Guards the open tool call whole and sends it, or blocks the answer."""
        call, self._open_call = self._open_call, None
        if call is None or self._part_blocked:
            return
        self._closed_calls.append(call)
        written = ToolCall(call.id, call.name, "".join(call.arguments))
        self._tool_calls.append(written)
        self._trace.answer_tool_calls = len(self._tool_calls)
        guarded, verdict = self._guarded(self._parts.tool_call, written)
        self._part_verdicts.append(verdict)
        if verdict.blocked:
            self._part_blocked = True
            return
        yield self._piece(self._renderer.tool_call(len(self._tool_calls) - 1, guarded))

    def _ending(self) -> Iterator[str]:
        final = self._final = self._guarded(self._guard.finish)
        if final.text and not self._part_blocked:  # nothing held after a blocked part is released
            yield self._content(final.text)
        blocked = final.blocked or self._part_blocked
        if not blocked and self._end is not None:
            shown = Completion(
                "".join(self._shown), self._end.finish_reason, Usage(0, 0), tool_calls=tuple(self._tool_calls)
            )
            try:
                check_structured_output(shown, self._response_format)
            except GatewayError as error:
                self._failure = error
                self._delivered = True
                yield self._renderer.error(error)
                return
        reason = FinishReason.CONTENT_FILTER if blocked or self._end is None else self._end.finish_reason
        pieces = [self._renderer.finish(reason.value)]
        if self._include_usage:
            pieces.append(self._renderer.usage(self._settled_usage()))
        pieces.append(DONE)
        self._delivered = True
        yield "".join(pieces)

    def _guarded(self, step: Callable[..., _Step], *args: Any) -> _Step:
        with self._trace.stage(_no_spans, RequestStage.OUTPUT_GUARD):
            return step(*args)

    def _content(self, text: str) -> str:
        self._shown.append(text)
        return self._piece(self._renderer.content(text))

    def _piece(self, chunk: str) -> str:
        """A chunk of the answer (text, reasoning or a tool call): what TTFT and TPOT time."""
        now = time.perf_counter()
        if self._first_content_at is None:
            self._first_content_at = now
        self._last_content_at = now
        self._content_chunks += 1
        return chunk

    def _settled_usage(self) -> Usage:
        """The provider's usage if it reported it at the end; else the tokens counted (a cut stream)."""
        if self._usage is None:
            if self._end is not None and self._end.usage is not None:
                self._usage = self._end.usage
            else:
                output = estimate_text_tokens("".join(self._raw)) + estimate_text_tokens("".join(self._raw_parts))
                self._usage = Usage(estimate_prompt_tokens(self._request), output)
        return self._usage

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        trace, answer = self._trace, self._answer
        try:
            answer.close()  # stops the provider read if it is still open (client gone, error, deadline)
            self._record_guard()
            usage = self._settled_usage()
            trace.record_usage(usage, answer.cost_usd(usage))
            trace.stage_ms[RequestStage.PROVIDER] = (
                answer.stage_ms.get(RequestStage.PROVIDER, 0.0) + self._reading_s * 1000
            )
            self._record_outcome(usage)
            # Written with the audit record below: one write, after the last byte.
            metering.settle(self._reservation, trace, answer.route.alias, answer.target, usage)
            complete = self._delivered and self._failure is None and self._end is not None
            blocked = self._part_blocked or bool(self._final and self._final.blocked)
            if complete and self._cache_key is not None and not blocked:
                assert self._end is not None
                completion = Completion(
                    "".join(self._raw),
                    self._end.finish_reason,
                    usage,
                    self._end.raw_model,
                    tool_calls=tuple(self._tool_calls),
                    reasoning=tuple(self._reasoning),
                )
                self._endpoint._store(self._cache_key, trace, answer.target.id, completion)
        finally:
            self._endpoint.record(trace)  # written after the response (ChatEndpoint.defer)

    def _record_guard(self) -> None:
        final = self._final
        if final is None:
            try:
                # Cut short (client gone, provider failure): the verdict on what was produced.
                final = self._final = self._guarded(self._guard.finish)
            except Exception:
                return  # the guard itself failed; the record says so through its status
        open_reasoning, self._reasoning_guard = self._reasoning_guard, None
        if open_reasoning is not None:  # cut inside a reasoning block: the verdict on what was produced
            try:
                reasoning = self._guarded(open_reasoning.finish)
            except Exception:
                reasoning = None
            if reasoning is not None and reasoning.verdict is not None:
                self._part_verdicts.append(reasoning.verdict)
        if final.verdict is not None:
            verdicts = [final.verdict, *self._part_verdicts]
            self._endpoint._record_output_verdict(self._trace, combine_verdicts(verdicts))
        if final.scan is not None:
            scan = final.scan
            self._trace.output_scan = OutputScan(
                chars=scan.chars_received,
                scanned=scan.chars_scanned,
                scans=scan.scans,
                window=scan.hold_back_chars,
                max_held=scan.max_held_chars,
                buffered_reason=scan.buffered_reason,
                diverged=scan.diverged,
            )

    def _record_outcome(self, usage: Usage) -> None:
        trace = self._trace
        if self._cancelled:
            trace.status, trace.error_code = CLIENT_CLOSED_REQUEST, "client_closed_request"
        elif self._failure is not None:
            trace.status, trace.error_code = self._failure.status, self._failure.code
        first, last = self._first_content_at, self._last_content_at
        if first is not None and last is not None:
            trace.ttft_ms = (first - self._request_started) * 1000
            if self._content_chunks > 1 and usage.output_tokens > 1:
                trace.time_per_output_token_ms = (last - first) * 1000 / (usage.output_tokens - 1)
