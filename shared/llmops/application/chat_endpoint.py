"""The chat completion request path, stage by stage (docs/architecture.md, "The request path"):

parse (with the prompt template) -> input guard -> route -> cache lookup -> quota reserve
-> provider (fallbacks) -> output guard (then restore pseudonyms) -> quota settle -> cache store
-> render, and then the audit record. The names are `llmops.domain.stages.RequestStage`.

A registered prompt template is applied first; deterministic requests may be answered from the
response cache after the input guard (a blocked request is never served from cache).

Every request that reaches this endpoint leaves exactly one audit record, admitted or refused, and
a reservation is always either settled or released.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from functools import partial
from typing import Protocol

from llmops.application.openai_schema import ChatCompletionRequest, require_conversation
from llmops.application.rendering import chat_completion, sse_stream
from llmops.application.responses import EVENT_STREAM, ApiResponse
from llmops.domain.audit import AuditRecord, GuardVerdict, text_evidence
from llmops.domain.chat import ChatRequest, Completion, Message, Role
from llmops.domain.completions import CompletionResult, CompletionService, RoutePlan
from llmops.domain.deadline import Deadline
from llmops.domain.errors import GatewayError
from llmops.domain.guard import Decision, GuardEngine, embed_canary
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
from llmops.domain.stages import RequestStage
from llmops.domain.tenancy import TenantContext
from llmops.domain.token_estimate import estimate_prompt_tokens

__all__ = [
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


def provenance_headers(request_id: str, result: CompletionResult) -> dict[str, str]:
    return {
        "x-request-id": request_id,
        "x-llmops-route": result.route.alias,
        "x-llmops-target": result.target.display,
        "x-llmops-cost-usd": f"{result.cost_usd:.8f}",
        "x-llmops-attempts": str(len(result.attempts)),
    }


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
        time for the reservation to be released, the audit record written and the answer sent."""
        trace = RequestTrace(request_id=request_id, tenant=tenant)
        try:
            return self._handle(body, trace, headers or {}, deadline or Deadline.unbounded())
        except GatewayError as error:
            trace.status, trace.error_code = error.status, error.code
            raise
        except Exception:
            trace.status, trace.error_code = 500, "internal_error"
            raise
        finally:
            self.record(trace)

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
            )
        )
        self.on_finished(trace)

    def _handle(
        self, body: ChatCompletionRequest, trace: RequestTrace, headers: Mapping[str, str], deadline: Deadline
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

        if cached is not None:
            result = _cached_result(plan, cached)
            trace.record_result(result)
        else:
            with self.spans(RequestStage.PROVIDER):
                result = self._call_model(plan, guarded, reservation, trace, deadline)
        usage = result.completion.usage

        with stage(RequestStage.OUTPUT_GUARD):
            last_user = next((m.content for m in reversed(guarded.messages) if m.role is Role.USER), "")
            output = engine.guard_output(
                result.completion.text, verdict.vault, system_prompt, body.context or (), query=last_user
            )
            trace.guard.append(_verdict("output", output.action.value, output.decisions))
            trace.completion_text = output.redacted_text

        # The model ran and the tokens were spent, so usage is settled even if the output is blocked.
        with stage(RequestStage.QUOTA_SETTLE):
            now = time.time()
            outcome = self.ledger.settle(
                reservation,
                actual_from_usage(result.target, usage),
                UsageEntry.for_request(tenant.tenant_id, result.route.alias, result.target, usage, now),
                now,
            )
            trace.settle_pending = not outcome.applied
        output.raise_if_blocked()

        if cached is None and decision.write and storable(result.completion):
            with stage(RequestStage.CACHE_STORE):
                # Stored as the model answered, in placeholder space: the cache never holds raw PII.
                entry = CacheEntry.from_completion(key, tenant.tenant_id, result.target.id, result.completion, now)
                self.cache.put(entry)

        with stage(RequestStage.RENDER):
            return _render(body, request, trace, replace(result.completion, text=output.text), result)

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

    def _call_model(
        self, plan: RoutePlan, request: ChatRequest, reservation: Reservation, trace: RequestTrace, deadline: Deadline
    ) -> CompletionResult:
        try:
            result = self.completions.execute(plan, request, deadline)
        except GatewayError as error:
            trace.provider_attempts = tuple(getattr(error, "attempts", ()))
            trace.attempts = len(trace.provider_attempts)
            self._release(reservation, trace)
            raise
        except Exception:
            self._release(reservation, trace)
            raise
        trace.record_result(result)
        return result

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


def _render(
    body: ChatCompletionRequest,
    request: ChatRequest,
    trace: RequestTrace,
    completion: Completion,
    result: CompletionResult,
) -> ApiResponse:
    headers = provenance_headers(trace.request_id, result)
    headers["x-llmops-cache"] = trace.cache
    if trace.prompt_version:
        headers["x-llmops-prompt"] = trace.prompt_version
    created = int(time.time())
    completion_id = f"chatcmpl-{trace.request_id}"
    if request.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        text = sse_stream(completion_id, created, request.model, completion, include_usage)
        return ApiResponse(200, text, EVENT_STREAM, {**headers, "Cache-Control": "no-cache"})
    return ApiResponse.json(200, chat_completion(completion_id, created, request.model, completion), headers)
