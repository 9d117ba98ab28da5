"""Embeddings (`POST /v1/embeddings`): the request, its limits, batching within a model's limits, and
the service that routes it to an embedding target and prices the answer.

An embedding alias is a route whose targets are all `TargetKind.EMBEDDING` (routes.json). Its
targets are tried with the chat path's attempt loop (`CompletionService.first_answer`: rounds,
deadline shares, circuit breaker, the same errors), and every vector of one request comes from one
target: an attempt embeds all the inputs, batch by batch, and a failure of any batch moves the whole
request on to the next target. Vectors of two models are not comparable, so the seeded embedding
routes have no fallbacks to another model; fallbacks between targets of one model (two endpoints or
variants) work like chat's.

Batching follows the target's `EmbeddingSpec`: Titan v2 takes one text per call, Cohere Embed up to
96, a SageMaker embedding container its configured `max_batch`. Token arrays (`input` as lists of
token ids, which the OpenAI SDK can send) are refused by the schema: the gateway cannot know a
Bedrock model's tokenizer, so it cannot decode them into the text the guard must see.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from llmops.domain.chat import Usage
from llmops.domain.completions import Attempt, CompletionService, RoutePlan
from llmops.domain.deadline import Deadline
from llmops.domain.errors import BadRequestError, ProviderError, ProviderFailureKind
from llmops.domain.quotas import Demand, cost_nanos
from llmops.domain.routing import Provider, Route, Target, TargetKind, attempt_order, cost_usd
from llmops.domain.stages import RequestStage
from llmops.domain.tenancy import TenantContext
from llmops.domain.token_estimate import estimate_text_tokens

if TYPE_CHECKING:
    from llmops.domain.ports import EmbeddingProvider

__all__ = [
    "MAX_INPUTS",
    "MAX_TOTAL_CHARS",
    "Embedded",
    "EmbeddingInputType",
    "EmbeddingRequest",
    "EmbeddingResult",
    "EmbeddingService",
    "batches",
    "embedding_demand",
    "embedding_targets",
    "estimate_input_tokens",
    "validate_inputs",
]

MAX_INPUTS = 2048  # OpenAI's limit per request
# All inputs together; the body size limit (LLMOPS_MAX_BODY_BYTES, 5.5 MiB by default) is usually lower.
MAX_TOTAL_CHARS = 4_000_000


class EmbeddingInputType(StrEnum):
    """What the texts are for; Cohere Embed v3 needs it (`input_type`), the other models ignore it.

    Not an OpenAI field: a gateway extension. Without it documents are assumed (`search_document`),
    which is what an index is built from; ask for `search_query` to embed the queries against it.
    """

    SEARCH_DOCUMENT = "search_document"
    SEARCH_QUERY = "search_query"
    CLASSIFICATION = "classification"
    CLUSTERING = "clustering"


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    """An embeddings request, protocol-neutral."""

    model: str  # the alias, as the caller sent it (free text until routing resolved it)
    inputs: tuple[str, ...]
    dimensions: int | None = None  # None: the target's default size
    input_type: EmbeddingInputType = EmbeddingInputType.SEARCH_DOCUMENT
    user: str | None = None


@dataclass(frozen=True, slots=True)
class Embedded:
    """One provider call's answer: a vector per text, in order, and the input tokens it counted."""

    vectors: tuple[tuple[float, ...], ...]
    input_tokens: int


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    """The vectors with who computed them, after which attempts, at what cost."""

    vectors: tuple[tuple[float, ...], ...]  # one per input, in input order
    usage: Usage  # input tokens only: embeddings write no output
    route: Route
    target: Target
    cost_usd: float
    attempts: tuple[Attempt, ...]
    stage_ms: Mapping[str, float] = field(default_factory=dict)


def validate_inputs(inputs: Sequence[str]) -> None:
    """The limits that hold for every model (400 naming `input`); per-model ones are in `embedding_targets`."""
    if not inputs:
        raise BadRequestError("'input' must not be empty.", param="input", code="invalid_value")
    if len(inputs) > MAX_INPUTS:
        raise BadRequestError(
            f"'input' has {len(inputs)} items; at most {MAX_INPUTS} inputs may be embedded in one request.",
            param="input",
            code="invalid_value",
        )
    for index, text in enumerate(inputs):
        if not text.strip():
            # Bedrock refuses blank text, and a vector of nothing helps no index.
            raise BadRequestError(
                f"'input[{index}]' is empty; every input must have text.", param="input", code="invalid_value"
            )
    total = sum(map(len, inputs))
    if total > MAX_TOTAL_CHARS:
        raise BadRequestError(
            f"'input' holds {total} characters in all; at most {MAX_TOTAL_CHARS} may be embedded in one request.",
            param="input",
            code="invalid_value",
        )


def embedding_targets(targets: Sequence[Target], inputs: Sequence[str], dimensions: int | None) -> list[Target]:
    """`targets` (in order) that can embed every input at `dimensions`; a 400 naming what none can.

    Dimensions are matched, never adapted: a model that cannot answer the size natively is not
    asked, since a truncated vector of a model not trained for it (Matryoshka) ranks worse, silently.
    """
    sized = [t for t in targets if t.embedding and (dimensions is None or dimensions in t.embedding.dimensions)]
    if not sized:
        sizes = sorted({d for t in targets if t.embedding for d in t.embedding.dimensions})
        raise BadRequestError(
            f"'dimensions' must be one of {', '.join(map(str, sizes))} for this model.",
            param="dimensions",
            code="invalid_value",
        )
    longest = max(range(len(inputs)), key=lambda i: len(inputs[i]))
    fitting = [t for t in sized if t.embedding and len(inputs[longest]) <= t.embedding.max_input_chars]
    if not fitting:
        limit = max(t.embedding.max_input_chars for t in sized if t.embedding)
        raise BadRequestError(
            f"'input[{longest}]' has {len(inputs[longest])} characters; this model embeds at most {limit} per input.",
            param="input",
            code="context_length_exceeded",
        )
    return fitting


def batches(count: int, max_batch: int) -> list[range]:
    """Index ranges of at most `max_batch` covering `count` inputs in order."""
    if max_batch < 1:
        raise ValueError("max_batch must be at least 1")
    return [range(start, min(start + max_batch, count)) for start in range(0, count, max_batch)]


def estimate_input_tokens(inputs: Sequence[str]) -> int:
    """The pessimistic count (`token_estimate`) reserved before the call, and reported for models
    that count none (Cohere's InvokeModel answer has no token count unless Bedrock's header says)."""
    return sum(estimate_text_tokens(text) for text in inputs)


def embedding_demand(targets: Sequence[Target], input_tokens: int) -> Demand:
    """The reservation: the estimated input at the dearest target the request may end up on."""
    return Demand(tokens=input_tokens, cost_nanos=max(cost_nanos(t, input_tokens, 0) for t in targets))


@dataclass(slots=True)
class EmbeddingService:
    """Routes an `EmbeddingRequest` and embeds it; shares the chat path's routes, breaker and attempt loop.

    A target's batches are called one after the other, within the attempt's share of the deadline:
    a Titan request (one call per text) takes the sum of its calls, so bulk indexing is better
    served by Cohere (96 texts a call) or a SageMaker endpoint.
    """

    completions: CompletionService
    providers: Mapping[Provider, EmbeddingProvider]

    def plan(self, request: EmbeddingRequest, tenant: TenantContext) -> RoutePlan:
        completions = self.completions
        table = completions.routes.current()
        route = table.route(request.model, tenant.allowed_models)
        table.require_kind(route, TargetKind.EMBEDDING)  # a chat alias is a 400 naming `model`
        order = attempt_order(route, completions.draw(), lambda t: completions.breaker.is_open(t, completions.clock()))
        targets = embedding_targets([table.targets[t] for t in order], request.inputs, request.dimensions)
        return RoutePlan(route, tuple(targets))

    def embed(self, plan: RoutePlan, request: EmbeddingRequest, deadline: Deadline | None = None) -> EmbeddingResult:
        """Every input on the plan's first target that embeds them all (see the module docstring)."""
        embedded, target, attempts = self.completions.first_answer(
            plan, deadline, lambda target, timeout_s: self._embed_on(target, request, timeout_s)
        )
        usage = Usage(input_tokens=embedded.input_tokens, output_tokens=0)
        return EmbeddingResult(
            vectors=embedded.vectors,
            usage=usage,
            route=plan.route,
            target=target,
            cost_usd=cost_usd(target, usage),
            attempts=attempts,
            stage_ms={RequestStage.PROVIDER: sum(a.latency_ms for a in attempts)},
        )

    def _embed_on(self, target: Target, request: EmbeddingRequest, timeout_s: float | None) -> Embedded:
        spec = target.embedding
        if spec is None:  # plan() keeps only embedding targets
            raise ValueError(f"target {target.id} is not an embedding target")
        provider = self.providers[target.provider]
        dimensions = request.dimensions or spec.default_dimensions
        clock = self.completions.clock
        started = clock()

        def embed_batch(indexes: range) -> Embedded:
            remaining = None if timeout_s is None else timeout_s - (clock() - started)
            if remaining is not None and remaining <= 0:
                raise ProviderError(
                    ProviderFailureKind.TIMEOUT, "The embedding call ran out of time", target_id=target.id
                )
            texts = request.inputs[indexes.start : indexes.stop]
            answer = provider.embed(
                target, texts, dimensions=dimensions, input_type=request.input_type, timeout_s=remaining
            )
            _check_answer(target, answer, len(texts), dimensions)
            return answer

        answers = [embed_batch(indexes) for indexes in batches(len(request.inputs), spec.max_batch)]
        return Embedded(
            vectors=tuple(v for answer in answers for v in answer.vectors),
            input_tokens=sum(answer.input_tokens for answer in answers),
        )


def _check_answer(target: Target, answer: Embedded, texts: int, dimensions: int) -> None:
    """A model that answers the wrong number or size of vectors is failing (retry or fall back), not the caller."""
    if len(answer.vectors) != texts or any(len(v) != dimensions for v in answer.vectors):
        raise ProviderError(
            ProviderFailureKind.UNAVAILABLE,
            f"The model answered {len(answer.vectors)} vectors for {texts} texts or vectors not of size {dimensions}",
            target_id=target.id,
        )
