"""What one chat request leaves behind for its audit record and its metrics, filled in stage by stage.

The chat path (`llmops.application.chat_endpoint`) writes it and the EMF emitter
(`llmops.observability.emit`) reads it; it lives in the domain so that the emitter, a layer below the
application, needs nothing from the application to read it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

from llmops.domain.audit import GuardVerdict, OutputScan
from llmops.domain.chat import ChatRequest, Usage
from llmops.domain.completions import Attempt, CompletionResult, StreamingResult
from llmops.domain.embeddings import EmbeddingResult
from llmops.domain.quotas import PendingSettlement
from llmops.domain.routing import Provider
from llmops.domain.stages import RequestStage
from llmops.domain.tenancy import TenantContext

__all__ = ["RequestTrace", "SpanFactory"]

# Opens a tracing span (an X-Ray subsegment in Lambda) named after a stage.
SpanFactory = Callable[[str], AbstractContextManager[object]]


@dataclass(slots=True)
class RequestTrace:
    """What the audit record and metrics need to know about one request, filled in stage by stage."""

    request_id: str
    tenant: TenantContext
    started_at: float = field(default_factory=time.time)
    status: int = 200
    error_code: str | None = None
    alias: str = ""
    target: str = ""
    variant: str = ""
    provider: str = ""
    attempts: int = 0
    provider_attempts: tuple[Attempt, ...] = ()  # per-target outcomes, for the canary gates' metrics
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    streamed: bool = False
    # Streamed requests only (None otherwise, and when no token ever reached the caller): from the
    # handler receiving the request to the first content chunk written, and the mean gap between
    # the chunks after it ((last - first) / (output tokens - 1)); the TTFT and TPOT metrics.
    ttft_ms: float | None = None
    time_per_output_token_ms: float | None = None
    cache: str = ""  # hit | miss | bypass, empty when the request never got that far
    prompt_version: str | None = None  # "[tenant/]id@version" of a registered template
    guard: list[GuardVerdict] = field(default_factory=list)
    stage_ms: dict[str, float] = field(default_factory=dict)
    prompt_text: str | None = None  # guard-redacted, never raw
    completion_text: str | None = None  # guard-redacted, never raw
    # The settle or release of the request's reservation, decided once the model answered (or did
    # not) and written with the audit record (`RequestBooks.settle_and_write`); None once written,
    # and for a request that reserved nothing.
    settlement: PendingSettlement | None = None
    settle_pending: bool = False  # the settle was not applied and is parked (the sweeper or a replay finishes it)
    output_scan: OutputScan | None = None  # what the streaming output guard scanned (counts only)
    embedding_inputs: int | None = None  # POST /v1/embeddings only: the number of texts
    # What the request carried and the answer called, as counts only (never contents, never tool
    # names: those are the caller's identifiers): part types over all messages, tools offered, and
    # the tool calls in the answer.
    request_parts: dict[str, int] = field(default_factory=dict)
    tools_offered: int = 0
    answer_tool_calls: int = 0

    def record_request_parts(self, request: ChatRequest) -> None:
        parts: dict[str, int] = {}
        for message in request.messages:
            for name, count in message.part_counts().items():
                parts[name] = parts.get(name, 0) + count
        self.request_parts = parts
        self.tools_offered = len(request.tools)

    def record_result(self, result: CompletionResult) -> None:
        self.record_answerer(result)
        self.record_usage(result.completion.usage, result.cost_usd)
        self.answer_tool_calls = len(result.completion.tool_calls)

    def record_answerer(self, result: CompletionResult | StreamingResult | EmbeddingResult) -> None:
        """Who answered, after which attempts; for a stream, up to its first event."""
        self.stage_ms[RequestStage.PROVIDER] = result.stage_ms.get(RequestStage.PROVIDER, 0.0)
        self.alias, self.target = result.route.alias, result.target.id
        self.provider = result.target.provider.value
        self.variant = result.target.variant if result.target.provider is Provider.SAGEMAKER else ""
        self.attempts = len(result.attempts)
        self.provider_attempts = result.attempts

    def record_usage(self, usage: Usage, cost_usd: float) -> None:
        self.input_tokens, self.output_tokens = usage.input_tokens, usage.output_tokens
        self.cost_usd = cost_usd

    @contextmanager
    def stage(self, spans: SpanFactory, name: RequestStage) -> Iterator[None]:
        """Times one stage of the request path into `stage_ms` and traces it as a subsegment."""
        started = time.perf_counter()
        try:
            with spans(name):
                yield
        finally:
            self.stage_ms[name] = self.stage_ms.get(name, 0.0) + (time.perf_counter() - started) * 1000
