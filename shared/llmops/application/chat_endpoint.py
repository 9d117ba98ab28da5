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
from typing import Any, Protocol, TypeVar

from llmops.application import metering
from llmops.application.answer_guard import (
    GuardedAnswer,
    combine_verdicts,
    guard_answer,
    guard_tool_call,
    signed_if_unchanged,
)
from llmops.application.guard_detectors import bound_deadline, with_policy_guardrail
from llmops.application.openai_schema import ChatCompletionRequest, require_conversation
from llmops.application.rendering import DONE, ChunkRenderer, chat_completion, sse_stream
from llmops.application.responses import EVENT_STREAM, ApiResponse
from llmops.application.server_timing import provider_timing
from llmops.domain.audit import AuditRecord, GuardVerdict, OutputScan, text_evidence
from llmops.domain.chat import (
    ChatRequest,
    Completion,
    FinishReason,
    Message,
    Part,
    Reasoning,
    ResponseFormat,
    Role,
    TextPart,
    ToolCall,
    ToolSpec,
    Usage,
)
from llmops.domain.completions import (
    CompletionResult,
    CompletionService,
    RoutePlan,
    StreamingResult,
    upstream_failure,
)
from llmops.domain.deadline import Deadline
from llmops.domain.errors import GatewayError, ProviderError, ProviderFailureKind
from llmops.domain.guard import Decision, FindingType, GuardEngine, GuardPolicy, embed_canary
from llmops.domain.guard.engine import OutputVerdict
from llmops.domain.guard.redaction import PseudonymVault
from llmops.domain.guard.streaming import FinalRelease, StreamingOutputGuard
from llmops.domain.ports import ImageFetcher
from llmops.domain.prompts import PromptRef, ResolvedPrompt, apply_prompt
from llmops.domain.quotas import (
    Demand,
    QuotaLedger,
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
from llmops.domain.routing import Target
from llmops.domain.stages import RequestStage
from llmops.domain.streaming import ReasoningDelta, StreamEnd, ToolCallDelta
from llmops.domain.structured_output import check_structured_output
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
_Step = TypeVar("_Step")

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
    unavailable = Counter(d.finding.detector for d in decisions if d.finding.type == FindingType.DETECTOR_UNAVAILABLE)
    return GuardVerdict(stage=stage, action=action, findings=dict(counts), unavailable=dict(unavailable))


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
    # Fetches remote image URLs for tenants whose content policy allows them (None: refused).
    image_fetcher: ImageFetcher | None = None
    # Puts the policy's Bedrock guardrail on the Converse call (build_gateway passes the granted ones).
    policy_guardrail: Callable[[ChatRequest, GuardPolicy], ChatRequest] = with_policy_guardrail

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
                embedding_inputs=trace.embedding_inputs,
                parts=dict(trace.request_parts),
                tools_offered=trace.tools_offered,
                tool_calls=trace.answer_tool_calls,
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
            verdict = engine.guard_input(provider_texts(request))
            trace.guard.append(_verdict("input", verdict.action.value, verdict.decisions))
            trace.prompt_text = _prompt_evidence(request, verdict.texts)
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
                answer = _StreamedAnswer(
                    self,
                    trace,
                    streaming,
                    StreamingOutputGuard(engine, *output_args, query=last_user),
                    _PartGuards(engine, verdict.vault, system_prompt),
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

        with stage(RequestStage.OUTPUT_GUARD):
            # Text, reasoning and tool-call arguments alike (answer_guard says how).
            output = guard_answer(engine, result.completion, *output_args, query=last_user)
            self._record_output_verdict(trace, output.verdict)

        # The model ran and the tokens were spent, so usage is settled even if the output is blocked
        # or is not the structured output asked for.
        with stage(RequestStage.QUOTA_SETTLE):
            self._settle(reservation, trace, result.route.alias, result.target, result.completion.usage)
        deliverable = _deliverable(output, request.response_format)  # the caller's response_format, as asked

        if cached is None and decision.write:
            with stage(RequestStage.CACHE_STORE):
                self._store(key, trace, result.target.id, result.completion)

        with stage(RequestStage.RENDER):
            return _render(body, request, trace, deliverable, result)

    def _settle(self, reservation: Reservation, trace: RequestTrace, alias: str, target: Target, usage: Usage) -> None:
        metering.settle(self.ledger, reservation, trace, alias, target, usage)

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
        return metering.call_releasing_on_failure(self.ledger, reservation, trace, call)


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


def _stable_canary(secret: str, system_prompt: str) -> str:
    """A canary that is secret (keyed) yet stable per system prompt, so identical requests stay
    identical for deterministic models and the response cache; see guard.leakage for the protocol."""
    digest = hmac.new(secret.encode(), system_prompt.encode(), hashlib.sha256).hexdigest()
    return f"llmops-canary-{digest[:16]}"


def provider_texts(request: ChatRequest) -> list[str]:
    """Every text of the request that a provider will see, for the input guard, in this order:

    1. each message's `Message.texts()` in message order: its text parts, tool results (what a tool
       returned is input like any other: indirect prompt injection, OWASP LLM01, arrives there) and,
       in assistant turns, tool-call arguments (system prompts and rendered prompt templates,
       variables included, are messages by now);
    2. per tool definition, its description and the string values of its JSON schema (a tool's
       description is an instruction to the model, the schema's descriptions too: tool poisoning
       arrives there), by `_schema_strings`;
    3. the `response_format` description and its schema's string values (the provider gets them
       as a forced tool or its structured-output configuration);
    4. the stop sequences.

    `_guarded_request` puts the guarded texts back in this order. Not here: reasoning blocks of
    earlier turns (the provider signed them and checks the signature, so they are model output the
    gateway already guarded, and rewriting one would void it), images (counted and limited by
    policy, not scanned), tool names and call ids (identifiers, `^[a-zA-Z0-9_-]{1,64}$`), and
    `context` documents, which never reach a provider: only the output guard reads them, for grounding.
    """
    texts = [text for message in request.messages for text in message.texts()]
    for tool in request.tools:
        texts.extend((tool.description, *_schema_strings(tool.parameters)))
    if request.response_format is not None:
        texts.extend(_format_texts(request.response_format))
    return [*texts, *request.stop]


def _format_texts(response_format: ResponseFormat) -> list[str]:
    return [response_format.description, *_schema_strings(response_format.schema or {})]


def _guarded_format(response_format: ResponseFormat | None, texts: Sequence[str]) -> ResponseFormat | None:
    """`response_format` with its guarded texts (`_format_texts` order); as sent if the guard left them."""
    if response_format is None or list(texts) == _format_texts(response_format):
        return response_format
    schema = response_format.schema
    if schema is not None:
        schema = _with_schema_strings(schema, iter(texts[1:]))
    return replace(response_format, description=texts[0], schema=schema)


def _prompt_evidence(request: ChatRequest, texts: Sequence[str]) -> str:
    """The guarded messages for the audit evidence: each message's texts joined, one line per message."""
    lines: list[str] = []
    offset = 0
    for message in request.messages:
        count = len(message.texts())
        lines.append("".join(texts[offset : offset + count]))
        offset += count
    return "\n".join(lines)


# Schema keywords whose string values are structure, not prose: types, formats, references, and the
# property names listed in `required` (identifiers the model's arguments must use as they are).
_STRUCTURAL_KEYWORDS = frozenset({"type", "format", "$ref", "$schema", "$id", "$anchor", "required"})


def _schema_strings(value: Any, key: str | None = None) -> list[str]:
    """The string values of a JSON schema a guard should read, in document order: descriptions,
    titles, enums, examples, defaults, patterns. Not the keys (property names are identifiers the
    caller's code reads back from the model's arguments), not numbers or booleans (limits and flags:
    a 10-digit `maximum` is not a phone number), not the values of `_STRUCTURAL_KEYWORDS`. Scanning
    strings one by one, rather than the schema's JSON text, keeps a redaction inside its string, so a
    guarded schema is always a valid one."""
    if isinstance(value, str):
        return [] if key in _STRUCTURAL_KEYWORDS else [value]
    if isinstance(value, Mapping):
        return [text for name, item in value.items() for text in _schema_strings(item, str(name))]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _schema_strings(item, key)]
    return []


def _with_schema_strings(value: Any, texts: Iterator[str], key: str | None = None) -> Any:
    """`value` with its `_schema_strings` replaced by `texts`, in the same order."""
    if isinstance(value, str):
        return value if key in _STRUCTURAL_KEYWORDS else next(texts)
    if isinstance(value, Mapping):
        return {name: _with_schema_strings(item, texts, str(name)) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_with_schema_strings(item, texts, key) for item in value]
    return value


def _tool_text_count(tool: ToolSpec) -> int:
    return 1 + len(_schema_strings(tool.parameters))


def _guarded_tools(tools: Sequence[ToolSpec], texts: Sequence[str]) -> tuple[ToolSpec, ...]:
    """The tool definitions with their guarded texts (per tool: its description, then its schema's
    strings). A schema the guard left alone is sent exactly as the caller wrote it."""
    guarded: list[ToolSpec] = []
    offset = 0
    for tool in tools:
        count = _tool_text_count(tool)
        description, strings = texts[offset], texts[offset + 1 : offset + count]
        offset += count
        parameters = tool.parameters
        if list(strings) != _schema_strings(tool.parameters):
            parameters = _with_schema_strings(tool.parameters, iter(strings))
        guarded.append(replace(tool, description=description, parameters=parameters))
    return tuple(guarded)


def _guarded_request(request: ChatRequest, texts: Sequence[str], canary_secret: str) -> tuple[ChatRequest, str]:
    """The request the model sees: the guarded `texts` (in the order of `provider_texts`) put back
    into their parts, part order and cache points kept, and a canary in the system prompt if it
    has one. Returns it with the system prompt as sent (canary included), for the leak check."""
    counts = [len(m.texts()) for m in request.messages]
    tool_texts = sum(map(_tool_text_count, request.tools))
    format_texts = len(_format_texts(request.response_format)) if request.response_format is not None else 0
    if len(texts) != sum(counts) + tool_texts + format_texts + len(request.stop):
        raise ValueError("guarded texts do not match the request's provider texts")
    messages: list[Message] = []
    offset = 0
    for message, count in zip(request.messages, counts, strict=True):
        messages.append(message.with_texts(texts[offset : offset + count]))
        offset += count
    tools = _guarded_tools(request.tools, texts[offset : offset + tool_texts])
    offset += tool_texts
    response_format = _guarded_format(request.response_format, texts[offset : offset + format_texts])
    stop_texts = texts[offset + format_texts :]
    system = [m for m in messages if m.role is Role.SYSTEM]
    system_prompt = "\n\n".join(m.content for m in system)
    if system_prompt:
        canary = embed_canary(system_prompt, _stable_canary(canary_secret, system_prompt))[len(system_prompt) :]
        merged = _system_message(system, canary)
        system_prompt = merged.content
        messages = [merged, *(m for m in messages if m.role is not Role.SYSTEM)]
    guarded = replace(
        request, messages=tuple(messages), tools=tools, response_format=response_format, stop=tuple(stop_texts)
    )
    return guarded, system_prompt


def _system_message(system: Sequence[Message], canary: str) -> Message:
    """The system messages as one, "\n\n" between them and `canary` (the marker and its separator)
    at the end: one text part when they are plain text, as before parts existed. Adjacent text parts
    are merged unless the first ends at a cache point, which stays where the caller put it, so the
    cached prefix (everything before the point) is unchanged and the stable canary comes after it."""
    pieces: list[Part] = []
    for index, message in enumerate(system):
        if index:
            pieces.append(TextPart("\n\n"))
        pieces.extend(message.parts)
    pieces.append(TextPart(canary))
    parts: list[Part] = []
    for piece in pieces:
        last = parts[-1] if parts else None
        if isinstance(piece, TextPart) and isinstance(last, TextPart) and not last.cache_point:
            parts[-1] = TextPart(last.text + piece.text, piece.cache_point)
        else:
            parts.append(piece)
    return Message(Role.SYSTEM, parts)


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


def _no_spans(_name: str) -> AbstractContextManager[object]:
    return nullcontext()


@dataclass(frozen=True, slots=True)
class _PartGuards:
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


class _StreamedAnswer(Iterator[str]):
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
    audit record all come after the last byte, never between two tokens. Per-delta work is timed into
    `stage_ms` without tracing spans: a subsegment per token would swamp the trace.
    """

    def __init__(
        self,
        endpoint: ChatEndpoint,
        trace: RequestTrace,
        answer: StreamingResult,
        guard: StreamingOutputGuard,
        parts: _PartGuards,
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
            with trace.stage(self._endpoint.spans, RequestStage.QUOTA_SETTLE):
                self._endpoint._settle(self._reservation, trace, answer.route.alias, answer.target, usage)
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
