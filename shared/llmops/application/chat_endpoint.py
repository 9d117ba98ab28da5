"""The chat completion request path, stage by stage (docs/architecture.md, "The request path"):

parse (with the prompt template) -> input guard -> route -> cache lookup -> quota reserve
-> provider (fallbacks) -> output guard (then restore pseudonyms) -> cache store -> render, and then
the quota settle with the audit record, in one write. The names are `llmops.domain.stages.RequestStage`.

A registered prompt template is applied first; deterministic requests may be answered from the
response cache after the input guard (a blocked request is never served from cache).

`stream: true` takes the same path up to the provider, which then streams (`CompletionService.stream`:
fallbacks only before the first event), and the answer is rendered as it comes (`StreamedAnswer`):
each delta goes through `StreamingOutputGuard`, what it releases is sent as a chunk, and quota
settle, cache store and the audit record run after the last byte, so accounting never delays a token.

Every request that reaches this endpoint leaves exactly one audit record, admitted or refused, and
a reservation is always either settled or released, exactly once, written with that record
(`RequestBooks.settle_and_write`: one DynamoDB transaction). That write, and the cache store, are
deferred (`llmops.application.after_response`): under the runtime loop they run once the response
has been posted, buffered or streamed, so the client never waits for them; called directly, they
run before `handle` returns (or as the stream ends).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Protocol, TypeVar

from llmops.application import after_response, metering
from llmops.application.answer_guard import (
    GuardedAnswer,
    guard_answer,
)
from llmops.application.guard_detectors import batched_service_calls, bound_deadline, with_policy_guardrail
from llmops.application.guarded_request import guarded_request, prompt_evidence, provider_texts
from llmops.application.openai_schema import ChatCompletionRequest, require_conversation
from llmops.application.rendering import ChunkRenderer, chat_completion, sse_stream
from llmops.application.responses import EVENT_STREAM, ApiResponse
from llmops.application.server_timing import provider_timing
from llmops.application.streamed_answer import PartGuards, StreamedAnswer
from llmops.domain.audit import AuditRecord, GuardVerdict, provider_filter_verdict, text_evidence
from llmops.domain.chat import (
    ChatRequest,
    Completion,
    FinishReason,
    ResponseFormat,
    Role,
)
from llmops.domain.completions import (
    CompletionResult,
    CompletionService,
    RoutePlan,
    StreamingResult,
)
from llmops.domain.deadline import Deadline
from llmops.domain.errors import GatewayError
from llmops.domain.guard import Decision, FindingType, GuardEngine, GuardPolicy
from llmops.domain.guard.engine import InputVerdict, OutputVerdict
from llmops.domain.guard.streaming import StreamingOutputGuard
from llmops.domain.ports import ImageFetcher
from llmops.domain.prompts import PromptRef, ResolvedPrompt, apply_prompt
from llmops.domain.quotas import (
    Demand,
    QuotaLedger,
    RequestBooks,
    Reservation,
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
from llmops.domain.stages import RequestStage
from llmops.domain.structured_output import check_structured_output
from llmops.domain.tenancy import TenantContext
from llmops.domain.token_estimate import estimate_prompt_tokens

__all__ = [
    "ChatEndpoint",
    "PromptResolver",
    "provenance_headers",
    "provider_texts",
]


class PromptResolver(Protocol):
    def resolve(self, ref: PromptRef, tenant_id: str | None = None) -> ResolvedPrompt:
        """The caller's own template of `ref.prompt_id`, else a shared one; never another tenant's."""
        ...


_Answer = TypeVar("_Answer")


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
    unavailable = Counter(d.finding.detector for d in decisions if d.finding.type == FindingType.DETECTOR_UNAVAILABLE)
    return GuardVerdict(stage=stage, action=action, findings=dict(counts), unavailable=dict(unavailable))


def _guard_input(engine: GuardEngine, request: ChatRequest) -> InputVerdict:
    texts = provider_texts(request)
    with batched_service_calls(texts):  # a service that takes several texts checks them in one call
        return engine.guard_input(texts)


def _record_provider_filter(trace: RequestTrace, completion: Completion) -> None:
    """The provider's own filter ended the answer (e.g. the Converse call's guardrail intervened)."""
    if completion.finish_reason is FinishReason.CONTENT_FILTER:
        trace.guard.append(provider_filter_verdict())


def _demand(plan: RoutePlan, request: ChatRequest) -> Demand:
    """Reserve for the dearest target the request may end up on, so a fallback never overshoots."""
    input_tokens = estimate_prompt_tokens(request)
    demands = [worst_case_demand(request, target, input_tokens=input_tokens) for target in plan.targets]
    return Demand(tokens=max(d.tokens for d in demands), cost_nanos=max(d.cost_nanos for d in demands))


@dataclass(slots=True)
class ChatEndpoint:
    completions: CompletionService
    guards: Callable[[str], GuardEngine]  # policy name -> engine
    ledger: QuotaLedger  # reserves (the settle or release is written with the audit record)
    audit: RequestBooks
    audit_pepper: str
    prompts: PromptResolver
    cache: ResponseCache
    on_finished: Callable[[RequestTrace], None] = lambda _trace: None
    # Opens a tracing subsegment per stage (Powertools Tracer in Lambda); no-op by default.
    spans: SpanFactory = lambda _name: nullcontext()
    # Fetches remote image URLs for tenants whose content policy allows them (None: refused).
    image_fetcher: ImageFetcher | None = None
    # Puts the policy's Bedrock guardrail on the Converse call (build_gateway passes the granted ones).
    policy_guardrail: Callable[[ChatRequest, GuardPolicy], ChatRequest] = with_policy_guardrail
    # Runs the audit write and the cache store after the response (after_response.defer), or now.
    defer: after_response.Defer = after_response.defer
    # Called with a request's trace as its answer is decided, before its record is written (the
    # handler's Server-Timing reads the provider time there).
    on_answered: Callable[[RequestTrace], None] = lambda _trace: None

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
            bounded = deadline or Deadline.unbounded()
            with bound_deadline(bounded):  # service guard detectors stop at the request's deadline too
                response = self._handle(body, trace, headers or {}, bounded, started)
            return response
        except GatewayError as error:
            trace.status, trace.error_code = error.status, error.code
            raise
        except Exception:
            trace.status, trace.error_code = 500, "internal_error"
            raise
        finally:
            if response is None or response.stream is None:
                self.record(trace)  # a streamed answer writes it after its last byte (StreamedAnswer)

    def record_refusal(self, tenant: TenantContext, request_id: str, error: GatewayError) -> None:
        """Audits a chat request refused before it reached `handle` (schema validation, size)."""
        self.record(RequestTrace(request_id, tenant, status=error.status, error_code=error.code))

    def record(self, trace: RequestTrace) -> None:
        """Writes the audit record, with the settle or release of the request's reservation when it
        has one (one write), after the response (`defer`); the books retry, park and dead-letter, so
        nothing is dropped, and the reservation sweeper releases what a process that died never wrote."""
        self.on_answered(trace)
        self.defer(partial(self._write_record, trace, time.time()))

    def _write_record(self, trace: RequestTrace, finished_at: float) -> None:
        record = AuditRecord(
            request_id=trace.request_id,
            tenant_id=trace.tenant.tenant_id,
            key_prefix=trace.tenant.key_id,
            started_at=trace.started_at,
            finished_at=finished_at,
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
            embedding_inputs=trace.embedding_inputs,
            parts=dict(trace.request_parts),
            tools_offered=trace.tools_offered,
            tool_calls=trace.answer_tool_calls,
        )
        settlement, trace.settlement = trace.settlement, None  # written once, whoever records
        if settlement is None:
            self.audit.write(record)
        else:
            # Timed for the metrics only: the record cannot hold the time of its own write.
            with trace.stage(self.spans, RequestStage.QUOTA_SETTLE):
                outcome = self.audit.settle_and_write(settlement, record, time.time())
            trace.settle_pending = not outcome.applied
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
            # The tenant's policy says what a request may carry (images, tools, pass-through fields).
            engine = self.guards(tenant.policy)
            request = self._with_prompt(body, body.to_domain(engine.policy.content, self.image_fetcher), trace)
            # The policy's Bedrock guardrail also goes on the Converse call (IAM may require it there).
            request = self.policy_guardrail(request, engine.policy)
            require_conversation(request)
            trace.record_request_parts(request)
            # The alias is recorded once routing has resolved it: until then `model` is free text
            # from the caller, which may be anything (PII included) and must not reach the trail.
            trace.streamed = request.stream

        with stage(RequestStage.INPUT_GUARD):
            verdict = _guard_input(engine, request)
            trace.guard.append(_verdict("input", verdict.action.value, verdict.decisions))
            trace.prompt_text = prompt_evidence(request, verdict.texts)
        verdict.raise_if_blocked()  # a blocked request is never answered, not even from cache
        guarded, system_prompt = guarded_request(request, verdict.texts, self.audit_pepper)

        with stage(RequestStage.ROUTE):
            plan = self.completions.plan(guarded, tenant)
            trace.alias = plan.route.alias
        with stage(RequestStage.CACHE_LOOKUP):
            decision, key, cached = self._look_up(guarded, plan, headers, trace)

        with stage(RequestStage.QUOTA_RESERVE):
            # A hit still counts as a request against the rate limits, but spends no tokens or money.
            demand = Demand(tokens=0, cost_nanos=0) if cached else _demand(plan, guarded)
            reservation = metering.reserve(self.ledger, trace, demand, deadline)

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
                answer = StreamedAnswer(
                    self,
                    trace,
                    streaming,
                    StreamingOutputGuard(engine, *output_args, query=last_user),
                    PartGuards(engine, verdict.vault, system_prompt),
                    reservation,
                    guarded,
                    _renderer(trace, request),
                    include_usage=_include_usage(body),
                    deadline=deadline,
                    request_started=started,
                    cache_key=key if decision.write else None,
                    response_format=request.response_format,
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
            _record_provider_filter(trace, result.completion)

        with stage(RequestStage.OUTPUT_GUARD):
            # Text, reasoning and tool-call arguments alike (answer_guard says how).
            output = guard_answer(engine, result.completion, *output_args, query=last_user)
            self._record_output_verdict(trace, output.verdict)

        # The model ran and the tokens were spent, so usage is settled even if the output is blocked
        # or is not the structured output asked for (written with the audit record, whatever follows).
        metering.settle(reservation, trace, result.route.alias, result.target, result.completion.usage)
        deliverable = _deliverable(output, request.response_format)  # the caller's response_format, as asked

        if cached is None and decision.write:
            self._store(key, trace, result.target.id, result.completion)

        with stage(RequestStage.RENDER):
            return _render(body, request, trace, deliverable, result)

    def _store(self, key: str, trace: RequestTrace, target_id: str, completion: Completion) -> None:
        """Stores the answer in the response cache after the response (`defer`), before its record."""
        if storable(completion):
            # Stored as the model answered, in placeholder space: the cache never holds raw PII.
            entry = CacheEntry.from_completion(key, trace.tenant.tenant_id, target_id, completion, time.time())
            self.defer(partial(self._put, trace, entry))

    def _put(self, trace: RequestTrace, entry: CacheEntry) -> None:
        with trace.stage(self.spans, RequestStage.CACHE_STORE):
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
        return metering.call_releasing_on_failure(reservation, trace, call)


def _deliverable(output: GuardedAnswer, response_format: ResponseFormat | None) -> Completion:
    """The guarded answer, if it may be sent: raises when the output guard blocked it, or when it is
    not the structured output `response_format` asked for."""
    output.verdict.raise_if_blocked()
    check_structured_output(output.completion, response_format)
    return output.completion


def _cached_result(plan: RoutePlan, entry: CacheEntry) -> CompletionResult:
    target = next((t for t in plan.targets if t.id == entry.target_id), plan.targets[0])
    return CompletionResult(
        completion=entry.to_completion(), route=plan.route, target=target, cost_usd=0.0, attempts=()
    )


def _headers(trace: RequestTrace, result: CompletionResult | StreamingResult) -> dict[str, str]:
    headers = provenance_headers(trace.request_id, result)
    headers["x-llmops-cache"] = trace.cache
    if trace.prompt_version:
        headers["x-llmops-prompt"] = trace.prompt_version
    if trace.attempts:
        # The model's share of Server-Timing, known here (for a stream: up to its first event); the
        # Lambda handler adds the gateway's own (llmops.application.server_timing).
        headers.update(provider_timing(trace.stage_ms.get(RequestStage.PROVIDER, 0.0)))
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
