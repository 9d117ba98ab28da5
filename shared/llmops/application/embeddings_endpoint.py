"""The embeddings request path (`POST /v1/embeddings`), stage by stage, as chat's is
(`llmops.application.chat_endpoint`; docs/architecture.md, "The request path"):

parse -> input guard (by the tenant's policy) -> route -> quota reserve -> provider (fallbacks)
-> render, and then the quota settle with the audit record (one write) and the metrics.

The input guard runs on each input on its own: every text is a document of its own in an index, so
its redaction (placeholders numbered within it) and its vector must not depend on what else was in
the batch, and the policy's size limit applies per document. What the policy's
`embeddings_input_guard` says (`llmops.domain.guard.policy.EmbeddingsInputGuard`): `redact` (the
default: masked values are embedded as their placeholders, blocking findings refuse the request),
`block` (anything the guard would mask refuses the request) or `off`. The model only ever sees the
guarded texts. There is no output guard: a vector holds no text to leak.

Accounting is chat's: the estimated input tokens at the dearest target are reserved, the reservation
is settled to the reported tokens (released if no target answered), usage is added per alias and
day, and exactly one audit record (the number of inputs, never the texts) is written per request,
with the settle, through the chat endpoint's recorder, which also emits the request metrics.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from functools import partial

from llmops.application import metering
from llmops.application.guard_detectors import batched_service_calls, bound_deadline
from llmops.application.openai_embeddings_schema import EmbeddingsRequest, embedding_list
from llmops.application.responses import ApiResponse
from llmops.domain.audit import GuardVerdict
from llmops.domain.deadline import Deadline
from llmops.domain.embeddings import (
    EmbeddingResult,
    EmbeddingService,
    embedding_demand,
    estimate_input_tokens,
    validate_inputs,
)
from llmops.domain.errors import ContentBlockedError, GatewayError
from llmops.domain.guard import GuardEngine
from llmops.domain.guard.findings import Action, BlockedBy, FindingType
from llmops.domain.guard.policy import EmbeddingsInputGuard
from llmops.domain.guard.service_detectors import GuardUnavailableError
from llmops.domain.quotas import QuotaLedger
from llmops.domain.request_trace import RequestTrace, SpanFactory
from llmops.domain.stages import RequestStage
from llmops.domain.tenancy import TenantContext

__all__ = ["EmbeddingsEndpoint", "guard_embedding_inputs"]


@dataclass(slots=True)
class EmbeddingsEndpoint:
    service: EmbeddingService
    guards: Callable[[str], GuardEngine]  # policy name -> engine
    ledger: QuotaLedger
    record: Callable[[RequestTrace], None]  # writes the audit record, then the metrics (ChatEndpoint.record)
    spans: SpanFactory = lambda _name: nullcontext()

    def handle(
        self, body: EmbeddingsRequest, tenant: TenantContext, request_id: str, deadline: Deadline | None = None
    ) -> ApiResponse:
        trace = RequestTrace(request_id=request_id, tenant=tenant)
        try:
            bounded = deadline or Deadline.unbounded()
            with bound_deadline(bounded):  # service guard detectors stop at the request's deadline too
                return self._handle(body, trace, bounded)
        except GatewayError as error:
            trace.status, trace.error_code = error.status, error.code
            raise
        except Exception:
            trace.status, trace.error_code = 500, "internal_error"
            raise
        finally:
            self.record(trace)

    def _handle(self, body: EmbeddingsRequest, trace: RequestTrace, deadline: Deadline) -> ApiResponse:
        tenant, stage = trace.tenant, partial(trace.stage, self.spans)
        with stage(RequestStage.PARSE):
            request = body.to_domain()
            trace.embedding_inputs = len(request.inputs)
            validate_inputs(request.inputs)

        with stage(RequestStage.INPUT_GUARD):
            verdict, texts = guard_embedding_inputs(self.guards(tenant.policy), request.inputs)
            trace.guard.append(verdict)
        guarded = replace(request, inputs=texts)

        with stage(RequestStage.ROUTE):
            plan = self.service.plan(guarded, tenant)
            # Recorded once resolved: until then `model` is the caller's free text.
            trace.alias = plan.route.alias

        with stage(RequestStage.QUOTA_RESERVE):
            demand = embedding_demand(plan.targets, estimate_input_tokens(guarded.inputs))
            reservation = metering.reserve(self.ledger, trace, demand, deadline)

        with self.spans(RequestStage.PROVIDER):
            result = metering.call_releasing_on_failure(
                reservation, trace, partial(self.service.embed, plan, guarded, deadline)
            )
        trace.record_answerer(result)
        trace.record_usage(result.usage, result.cost_usd)

        # Written with the audit record (`record`), once the answer is rendered.
        metering.settle(reservation, trace, result.route.alias, result.target, result.usage)

        with stage(RequestStage.RENDER):
            payload = embedding_list(
                result.route.alias, result.vectors, result.usage.input_tokens, body.encoding_format
            )
            return ApiResponse.json(200, payload, _headers(trace.request_id, result))


def guard_embedding_inputs(engine: GuardEngine, inputs: tuple[str, ...]) -> tuple[GuardVerdict, tuple[str, ...]]:
    """The audit's input verdict and the texts the model may see, by the policy's `embeddings_input_guard`.

    Raises `ContentBlockedError` (400 `content_blocked`, naming `input` and the guard, never the text)
    when the guard blocks an input, or, in `block` mode, would mask one.
    """
    mode = engine.policy.embeddings_input_guard
    if mode is EmbeddingsInputGuard.OFF:
        return GuardVerdict(stage="input", action="off"), inputs
    texts: list[str] = []
    counts: Counter[str] = Counter()
    unavailable: Counter[str] = Counter()  # fail-open service detectors, for GuardDetectorFailures
    masked: str | None = None
    with batched_service_calls(inputs):  # e.g. one ApplyGuardrail call for all of them
        for index, text in enumerate(inputs):
            verdict = engine.guard_input([text])
            counts.update(d.finding.type for d in verdict.decisions)
            unavailable.update(
                d.finding.detector for d in verdict.decisions if d.finding.type == FindingType.DETECTOR_UNAVAILABLE
            )
            if verdict.blocked_by is not None:
                raise _blocked(verdict.blocked_by, index)
            if verdict.action is Action.REDACT and masked is None:
                masked = next(
                    (d.finding.type for d in verdict.decisions if d.action in (Action.REDACT, Action.PSEUDONYMIZE)),
                    "PII",
                )
                if mode is EmbeddingsInputGuard.BLOCK:
                    raise ContentBlockedError(
                        f"'input[{index}]' holds a value the {masked} guardrail would redact, and this key's guard "
                        "policy refuses to embed redacted text (embeddings_input_guard: block).",
                        param="input",
                    )
            texts.append(verdict.texts[0])
    action = "redact" if masked is not None else "allow"
    verdict_record = GuardVerdict(stage="input", action=action, findings=dict(counts), unavailable=dict(unavailable))
    return verdict_record, tuple(texts)


def _blocked(blocked_by: BlockedBy, index: int) -> ContentBlockedError | GuardUnavailableError:
    if blocked_by.type == FindingType.DETECTOR_UNAVAILABLE:
        return GuardUnavailableError(blocked_by)  # 503: a fail-closed service detector, retryable
    budget = blocked_by.type == FindingType.GUARD_BUDGET_EXCEEDED
    return ContentBlockedError(
        f"'input[{index}]' was blocked by the {blocked_by.type} guardrail (detector '{blocked_by.detector}').",
        param="input",
        code="guard_budget_exceeded" if budget else None,
    )


def _headers(request_id: str, result: EmbeddingResult) -> dict[str, str]:
    """The chat path's provenance headers (`chat_endpoint.provenance_headers`), for an embedding answer."""
    return {
        "x-request-id": request_id,
        "x-llmops-route": result.route.alias,
        "x-llmops-target": result.target.display,
        "x-llmops-attempts": str(len(result.attempts)),
        "x-llmops-cost-usd": f"{result.cost_usd:.8f}",
    }
