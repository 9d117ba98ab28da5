"""The chat completion request path, stage by stage (docs/architecture.md, "The request path"):

parse (with the prompt template) -> input guard -> route -> cache lookup -> quota reserve
-> provider (fallbacks) -> output guard (then restore pseudonyms) -> quota settle -> cache store
-> render, and then the audit record. The names are `llmops.domain.stages.RequestStage`.

A registered prompt template is applied first; deterministic requests may be answered from the
response cache after the input guard (a blocked request is never served from cache).

`stream: true` takes the same path up to the provider, which then streams (`CompletionService.stream`:
fallbacks only before the first event), and the answer is rendered as it comes (`_StreamedAnswer`):
each delta goes through `StreamingOutputGuard`, what it releases is sent as a chunk, and quota
settle, cache store and the audit record run after the last byte, so accounting never delays a token.

Every request that reaches this endpoint leaves exactly one audit record, admitted or refused, and
a reservation is always either settled or released, exactly once.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from functools import partial
from typing import Protocol, TypeVar

from llmops.application.openai_schema import ChatCompletionRequest, require_conversation
from llmops.application.rendering import DONE, ChunkRenderer, chat_completion, sse_stream
from llmops.application.responses import EVENT_STREAM, ApiResponse
from llmops.domain.audit import AuditRecord, GuardVerdict, OutputScan, text_evidence
from llmops.domain.chat import ChatRequest, Completion, FinishReason, Message, Role, Usage
from llmops.domain.completions import (
    CompletionResult,
    CompletionService,
    RoutePlan,
    StreamingResult,
    upstream_failure,
)
from llmops.domain.deadline import Deadline
from llmops.domain.errors import GatewayError, ProviderError, ProviderFailureKind
from llmops.domain.guard import Decision, GuardEngine, embed_canary
from llmops.domain.guard.engine import OutputVerdict
from llmops.domain.guard.streaming import FinalRelease, Release, StreamingOutputGuard
from llmops.domain.prompts import PromptRef, ResolvedPrompt, apply_prompt
from llmops.domain.quotas import (
    Demand,
    QuotaLedger,
    Reservation,
    UsageEntry,
    actual_from_usage,
    release_at_for,
    worst_case_demand,
)
from llmops.domain.request_trace import RequestTrace, SpanFactory
from llmops.domain.response_cache import (
    CacheDecision,
    CacheEntry,
    CacheStatus,
    ResponseCache,
    cache_decision,
    cache_key,
    storable,
)
from llmops.domain.routing import Target
from llmops.domain.stages import RequestStage
from llmops.domain.streaming import StreamEnd
from llmops.domain.tenancy import TenantContext
from llmops.domain.token_estimate import estimate_prompt_tokens, estimate_text_tokens

__all__ = [
    "CLIENT_CLOSED_REQUEST",
    "AuditSink",
    "ChatEndpoint",
    "PromptResolver",
    "provenance_headers",
    "provider_texts",
]


class AuditSink(Protocol):
    def write(self, record: AuditRecord) -> object: ...


class PromptResolver(Protocol):
    def resolve(self, ref: PromptRef, tenant_id: str | None = None) -> ResolvedPrompt:
        """The caller's own template of `ref.prompt_id`, else a shared one; never another tenant's."""
        ...


_Answer = TypeVar("_Answer")
_Release = TypeVar("_Release", Release, FinalRelease)

# The audit status of a streamed answer whose client went away before its end (nginx's 499): never
# sent, since the client is gone; the record's error code says `client_closed_request`.
CLIENT_CLOSED_REQUEST = 499


def provenance_headers(request_id: str, result: CompletionResult | StreamingResult) -> dict[str, str]:
    headers = {
        "x-request-id": request_id,
        "x-llmops-route": result.route.alias,
        "x-llmops-target": result.target.display,
        "x-llmops-attempts": str(len(result.attempts)),
    }
    if isinstance(result, CompletionResult):
        # A stream's cost is known only after its last byte, long after the headers: it is in the
        # audit record and /v1/usage, so a streamed answer has no x-llmops-cost-usd.
        headers["x-llmops-cost-usd"] = f"{result.cost_usd:.8f}"
    return headers


def _verdict(stage: str, action: str, decisions: Sequence[Decision]) -> GuardVerdict:
    counts = Counter(d.finding.type for d in decisions)
    return GuardVerdict(stage=stage, action=action, findings=dict(counts))


def _demand(plan: RoutePlan, request: ChatRequest) -> Demand:
    """Reserve for the dearest target the request may end up on, so a fallback never overshoots."""
    input_tokens = estimate_prompt_tokens(request)
    demands = [worst_case_demand(request, target, input_tokens=input_tokens) for target in plan.targets]
    return Demand(tokens=max(d.tokens for d in demands), cost_nanos=max(d.cost_nanos for d in demands))


@dataclass(slots=True)
class ChatEndpoint:
    completions: CompletionService
    guards: Callable[[str], GuardEngine]  # policy name -> engine
    ledger: QuotaLedger
    audit: AuditSink
    audit_pepper: str
    prompts: PromptResolver
    cache: ResponseCache
    on_finished: Callable[[RequestTrace], None] = lambda _trace: None
    # Opens a tracing subsegment per stage (Powertools Tracer in Lambda); no-op by default.
    spans: SpanFactory = lambda _name: nullcontext()

    def handle(
        self,
        body: ChatCompletionRequest,
        tenant: TenantContext,
        request_id: str,
        headers: Mapping[str, str] | None = None,
        deadline: Deadline | None = None,
    ) -> ApiResponse:
        """`deadline` is when the invocation ends (from the Lambda context); provider calls stop in
        time for the reservation to be released, the audit record written and the answer sent.

        A streamed answer (`ApiResponse.stream`) is settled and audited when it ends: whoever takes
        it must iterate it to its end or `close()` it (the transport does, also when the client
        goes away)."""
        started = time.perf_counter()
        trace = RequestTrace(request_id=request_id, tenant=tenant)
        response: ApiResponse | None = None
        try:
            response = self._handle(body, trace, headers or {}, deadline or Deadline.unbounded(), started)
            return response
        except GatewayError as error:
            trace.status, trace.error_code = error.status, error.code
            raise
        except Exception:
            trace.status, trace.error_code = 500, "internal_error"
            raise
        finally:
            if response is None or response.stream is None:
                self.record(trace)  # a streamed answer writes it after its last byte (_StreamedAnswer)

    def record_refusal(self, tenant: TenantContext, request_id: str, error: GatewayError) -> None:
        """Audits a chat request refused before it reached `handle` (schema validation, size)."""
        self.record(RequestTrace(request_id, tenant, status=error.status, error_code=error.code))

    def record(self, trace: RequestTrace) -> None:
        """Writes the audit record; the audit log retries and dead-letters, so nothing is dropped."""
        self.audit.write(
            AuditRecord(
                request_id=trace.request_id,
                tenant_id=trace.tenant.tenant_id,
                key_prefix=trace.tenant.key_id,
                started_at=trace.started_at,
                finished_at=time.time(),
                status=trace.status,
                error_code=trace.error_code,
                alias=trace.alias,
                target=trace.target,
                variant=trace.variant,
                guard=tuple(trace.guard),
                input_tokens=trace.input_tokens,
                output_tokens=trace.output_tokens,
                cost_usd=trace.cost_usd,
                stage_ms=dict(trace.stage_ms),
                streamed=trace.streamed,
                cache_hit=trace.cache == CacheStatus.HIT,
                prompt_version=trace.prompt_version,
                prompt=text_evidence(trace.prompt_text, trace.tenant.audit_text, self.audit_pepper),
                completion=text_evidence(trace.completion_text, trace.tenant.audit_text, self.audit_pepper),
                settle_pending=trace.settle_pending,
                retention_days=trace.tenant.audit_retention_days,
                output_scan=trace.output_scan,
            )
        )
        self.on_finished(trace)

    def _handle(
        self,
        body: ChatCompletionRequest,
        trace: RequestTrace,
        headers: Mapping[str, str],
        deadline: Deadline,
        started: float,
    ) -> ApiResponse:
        tenant, stage = trace.tenant, partial(trace.stage, self.spans)
        with stage(RequestStage.PARSE):
            request = self._with_prompt(body, body.to_domain(), trace)
            require_conversation(request)
            # The alias is recorded once routing has resolved it: until then `model` is free text
            # from the caller, which may be anything (PII included) and must not reach the trail.
            trace.streamed = request.stream

        with stage(RequestStage.INPUT_GUARD):
            engine = self.guards(tenant.policy)
            verdict = engine.guard_input(provider_texts(request))
            trace.guard.append(_verdict("input", verdict.action.value, verdict.decisions))
            trace.prompt_text = "\n".join(verdict.texts[: len(request.messages)])
        verdict.raise_if_blocked()  # a blocked request is never answered, not even from cache
        guarded, system_prompt = _guarded_request(request, verdict.texts, self.audit_pepper)

        with stage(RequestStage.ROUTE):
            plan = self.completions.plan(guarded, tenant)
            trace.alias = plan.route.alias
        with stage(RequestStage.CACHE_LOOKUP):
            decision, key, cached = self._look_up(guarded, plan, headers, trace)

        with stage(RequestStage.QUOTA_RESERVE):
            # A hit still counts as a request against the rate limits, but spends no tokens or money.
            demand = Demand(tokens=0, cost_nanos=0) if cached else _demand(plan, guarded)
            now = time.time()
            # Past this moment the invocation is over, settled or not: the sweeper may release it.
            release_at = release_at_for(now, deadline.remaining_s()) if deadline.bounded else None
            reservation = self.ledger.reserve(tenant, trace.request_id, demand, now, release_at=release_at)

        last_user = next((m.content for m in reversed(guarded.messages) if m.role is Role.USER), "")
        # The output guard's arguments, the same whether the answer streams or not.
        output_args = (verdict.vault, system_prompt, body.context or ())
        if cached is None and guarded.stream:
            with self.spans(RequestStage.PROVIDER):
                streaming = self._call_model(
                    partial(self.completions.stream, plan, guarded, deadline), reservation, trace
                )
            trace.record_answerer(streaming)
            with stage(RequestStage.RENDER):
                answer = _StreamedAnswer(
                    self,
                    trace,
                    streaming,
                    StreamingOutputGuard(engine, *output_args, query=last_user),
                    reservation,
                    guarded,
                    _renderer(trace, request),
                    include_usage=_include_usage(body),
                    deadline=deadline,
                    request_started=started,
                    cache_key=key if decision.write else None,
                )
                headers = _headers(trace, streaming)
                return ApiResponse(200, "", EVENT_STREAM, {**headers, "Cache-Control": "no-cache"}, stream=answer)

        if cached is not None:
            result = _cached_result(plan, cached)
            trace.record_result(result)
        else:
            with self.spans(RequestStage.PROVIDER):
                result = self._call_model(
                    partial(self.completions.execute, plan, guarded, deadline), reservation, trace
                )
            trace.record_result(result)

        with stage(RequestStage.OUTPUT_GUARD):
            output = engine.guard_output(result.completion.text, *output_args, query=last_user)
            self._record_output_verdict(trace, output)

        # The model ran and the tokens were spent, so usage is settled even if the output is blocked.
        with stage(RequestStage.QUOTA_SETTLE):
            self._settle(reservation, trace, result.route.alias, result.target, result.completion.usage)
        output.raise_if_blocked()

        if cached is None and decision.write:
            with stage(RequestStage.CACHE_STORE):
                self._store(key, trace, result.target.id, result.completion)

        with stage(RequestStage.RENDER):
            return _render(body, request, trace, replace(result.completion, text=output.text), result)

    def _settle(self, reservation: Reservation, trace: RequestTrace, alias: str, target: Target, usage: Usage) -> None:
        now = time.time()
        outcome = self.ledger.settle(
            reservation,
            actual_from_usage(target, usage),
            UsageEntry.for_request(trace.tenant.tenant_id, alias, target, usage, now),
            now,
        )
        trace.settle_pending = not outcome.applied

    def _store(self, key: str, trace: RequestTrace, target_id: str, completion: Completion) -> None:
        if storable(completion):
            # Stored as the model answered, in placeholder space: the cache never holds raw PII.
            entry = CacheEntry.from_completion(key, trace.tenant.tenant_id, target_id, completion, time.time())
            self.cache.put(entry)

    @staticmethod
    def _record_output_verdict(trace: RequestTrace, output: OutputVerdict) -> None:
        trace.guard.append(_verdict("output", output.action.value, output.decisions))
        trace.completion_text = output.redacted_text

    def _look_up(
        self, request: ChatRequest, plan: RoutePlan, headers: Mapping[str, str], trace: RequestTrace
    ) -> tuple[CacheDecision, str, CacheEntry | None]:
        decision = cache_decision(request, headers, allow_stream=True)
        key = cache_key(trace.tenant.tenant_id, request, plan.targets[0].id) if decision.read or decision.write else ""
        cached = self.cache.get(trace.tenant.tenant_id, key, time.time()) if decision.read else None
        trace.cache = CacheStatus.HIT if cached else decision.status_if_not_hit
        return decision, key, cached

    def _with_prompt(self, body: ChatCompletionRequest, request: ChatRequest, trace: RequestTrace) -> ChatRequest:
        if body.prompt is None:
            return request
        version, rendered = self.prompts.resolve(PromptRef.parse(body.prompt), trace.tenant.tenant_id)
        trace.prompt_version = version.ref
        return apply_prompt(request, version, rendered)

    def _call_model(self, call: Callable[[], _Answer], reservation: Reservation, trace: RequestTrace) -> _Answer:
        """`call` (execute, or stream up to its first event); when it fails the reservation is released."""
        try:
            return call()
        except GatewayError as error:
            trace.provider_attempts = tuple(getattr(error, "attempts", ()))
            trace.attempts = len(trace.provider_attempts)
            self._release(reservation, trace)
            raise
        except Exception:
            self._release(reservation, trace)
            raise

    def _release(self, reservation: Reservation, trace: RequestTrace) -> None:
        outcome = self.ledger.release(reservation, time.time())
        trace.settle_pending = not outcome.applied


def _cached_result(plan: RoutePlan, entry: CacheEntry) -> CompletionResult:
    target = next((t for t in plan.targets if t.id == entry.target_id), plan.targets[0])
    return CompletionResult(
        completion=entry.to_completion(), route=plan.route, target=target, cost_usd=0.0, attempts=()
    )


def _stable_canary(secret: str, system_prompt: str) -> str:
    """A canary that is secret (keyed) yet stable per system prompt, so identical requests stay
    identical for deterministic models and the response cache; see guard.leakage for the protocol."""
    digest = hmac.new(secret.encode(), system_prompt.encode(), hashlib.sha256).hexdigest()
    return f"llmops-canary-{digest[:16]}"


def provider_texts(request: ChatRequest) -> list[str]:
    """Every text of the request that a provider will see, for the input guard: the message
    contents (system prompts and rendered prompt templates, variables included, are messages by
    now), then the stop sequences. `_guarded_request` puts the guarded texts back in this order.

    Anything new that reaches a provider joins this list, so nothing reaches a model unguarded:
    tool definitions and tool-call arguments belong here once tools are supported (today
    `openai_schema` refuses them). `context` documents are not here because they never reach a
    provider: only the output guard reads them, for grounding.
    """
    return [*(m.content for m in request.messages), *request.stop]


def _guarded_request(request: ChatRequest, texts: Sequence[str], canary_secret: str) -> tuple[ChatRequest, str]:
    """The request the model sees: redacted messages and stop sequences (`texts`, in the order of
    `provider_texts`), and a canary in the system prompt if it has one."""
    if len(texts) != len(request.messages) + len(request.stop):
        raise ValueError("guarded texts do not match the request's provider texts")
    message_texts, stop_texts = texts[: len(request.messages)], texts[len(request.messages) :]
    messages = [Message(m.role, text) for m, text in zip(request.messages, message_texts, strict=True)]
    system_prompt = "\n\n".join(m.content for m in messages if m.role is Role.SYSTEM)
    if system_prompt:
        system_prompt = embed_canary(system_prompt, _stable_canary(canary_secret, system_prompt))
        messages = [Message(Role.SYSTEM, system_prompt), *(m for m in messages if m.role is not Role.SYSTEM)]
    return replace(request, messages=tuple(messages), stop=tuple(stop_texts)), system_prompt


def _headers(trace: RequestTrace, result: CompletionResult | StreamingResult) -> dict[str, str]:
    headers = provenance_headers(trace.request_id, result)
    headers["x-llmops-cache"] = trace.cache
    if trace.prompt_version:
        headers["x-llmops-prompt"] = trace.prompt_version
    return headers


def _renderer(trace: RequestTrace, request: ChatRequest) -> ChunkRenderer:
    return ChunkRenderer(f"chatcmpl-{trace.request_id}", int(time.time()), request.model)


def _include_usage(body: ChatCompletionRequest) -> bool:
    return bool(body.stream_options and body.stream_options.include_usage)


def _render(
    body: ChatCompletionRequest,
    request: ChatRequest,
    trace: RequestTrace,
    completion: Completion,
    result: CompletionResult,
) -> ApiResponse:
    headers = _headers(trace, result)
    if request.stream:  # a cache hit: the whole answer is here already, so it is sent at once
        text = sse_stream(_renderer(trace, request), completion, _include_usage(body))
        return ApiResponse(200, text, EVENT_STREAM, {**headers, "Cache-Control": "no-cache"})
    renderer = _renderer(trace, request)
    return ApiResponse.json(
        200, chat_completion(renderer.completion_id, renderer.created, request.model, completion), headers
    )


def _no_spans(_name: str) -> AbstractContextManager[object]:
    return nullcontext()


class _StreamedAnswer(Iterator[str]):
    """The SSE pieces of one streamed answer, produced as the provider's deltas clear the output guard.

    The role chunk goes out as soon as the transport asks (the first event has arrived by then), then
    each text the guard releases as a content chunk, then the finish chunk (`stop`/`length`, or
    `content_filter` when the guard blocks: the provider read is stopped there), the usage chunk if
    asked for, and `[DONE]`. A provider failure or the deadline after the first byte ends the stream
    with an OpenAI error event instead (openai-python raises it as `APIError`).

    `close()` settles the reservation and writes the audit record exactly once, whichever way the
    answer ends: after the last piece, when the transport closes it mid-way because the client went
    away (the provider read stops; what was produced is settled, the record says 499
    `client_closed_request`), or even before its first piece. Accounting, the cache write and the
    audit record all come after the last byte, never between two tokens. Per-delta work is timed into
    `stage_ms` without tracing spans: a subsegment per token would swamp the trace.
    """

    def __init__(
        self,
        endpoint: ChatEndpoint,
        trace: RequestTrace,
        answer: StreamingResult,
        guard: StreamingOutputGuard,
        reservation: Reservation,
        request: ChatRequest,
        renderer: ChunkRenderer,
        *,
        include_usage: bool,
        deadline: Deadline,
        request_started: float,
        cache_key: str | None,
    ) -> None:
        self._endpoint, self._trace, self._answer, self._guard = endpoint, trace, answer, guard
        self._reservation, self._request, self._renderer = reservation, request, renderer
        self._include_usage, self._deadline, self._cache_key = include_usage, deadline, cache_key
        self._request_started = request_started
        self._raw: list[str] = []  # the model's text as it came (placeholder space): counted, cached
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
            if isinstance(event, StreamEnd):
                self._end = event
                return
            self._raw.append(event.text)
            release = self._guarded(self._guard.feed, event.text)
            if release.text:
                yield self._content(release.text)
            if release.blocked:
                self._answer.close()  # stop reading (and paying for) an answer that will not be shown
                return
            if self._deadline.usable_s(margin_s) <= 0:
                raise upstream_failure(
                    f"The answer of '{self._answer.route.alias}' did not finish within the request's time "
                    "limit; it is incomplete. Ask for fewer tokens or retry.",
                    ProviderFailureKind.TIMEOUT,
                )
            waited_from = time.perf_counter()

    def _ending(self) -> Iterator[str]:
        final = self._final = self._guarded(self._guard.finish)
        if final.text:
            yield self._content(final.text)
        reason = FinishReason.CONTENT_FILTER if final.blocked or self._end is None else self._end.finish_reason
        pieces = [self._renderer.finish(reason.value)]
        if self._include_usage:
            pieces.append(self._renderer.usage(self._settled_usage()))
        pieces.append(DONE)
        self._delivered = True
        yield "".join(pieces)

    def _guarded(self, step: Callable[..., _Release], *text: str) -> _Release:
        with self._trace.stage(_no_spans, RequestStage.OUTPUT_GUARD):
            return step(*text)

    def _content(self, text: str) -> str:
        now = time.perf_counter()
        if self._first_content_at is None:
            self._first_content_at = now
        self._last_content_at = now
        self._content_chunks += 1
        return self._renderer.content(text)

    def _settled_usage(self) -> Usage:
        """The provider's usage if it reported it at the end; else the tokens counted (a cut stream)."""
        if self._usage is None:
            if self._end is not None and self._end.usage is not None:
                self._usage = self._end.usage
            else:
                output = estimate_text_tokens("".join(self._raw))
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
            with trace.stage(self._endpoint.spans, RequestStage.QUOTA_SETTLE):
                self._endpoint._settle(self._reservation, trace, answer.route.alias, answer.target, usage)
            complete = self._delivered and self._failure is None and self._end is not None
            if complete and self._cache_key is not None and not (self._final and self._final.blocked):
                assert self._end is not None
                completion = Completion("".join(self._raw), self._end.finish_reason, usage, self._end.raw_model)
                with trace.stage(self._endpoint.spans, RequestStage.CACHE_STORE):
                    self._endpoint._store(self._cache_key, trace, answer.target.id, completion)
        finally:
            self._endpoint.record(trace)

    def _record_guard(self) -> None:
        final = self._final
        if final is None:
            try:
                # Cut short (client gone, provider failure): the verdict on what was produced.
                final = self._final = self._guarded(self._guard.finish)
            except Exception:
                return  # the guard itself failed; the record says so through its status
        if final.verdict is not None:
            self._endpoint._record_output_verdict(self._trace, final.verdict)
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
