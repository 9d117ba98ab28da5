"""Route table, weighted target choice, fallback order and a per-container circuit breaker.

This is product logic (no library models LLM aliases with canary weights and fallbacks), so it is
ours. It is pure: time and randomness come in as arguments so tests are deterministic.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from llmops.domain.chat import Capability, Usage
from llmops.domain.errors import BadRequestError, ModelNotFoundError

__all__ = [
    "CircuitBreaker",
    "EmbeddingFormat",
    "EmbeddingSpec",
    "PayloadFormat",
    "Provider",
    "Quirk",
    "Route",
    "RouteTable",
    "Target",
    "TargetKind",
    "WeightedTarget",
    "attempt_order",
    "capable_targets",
    "cost_usd",
]


class Provider(StrEnum):
    BEDROCK = "bedrock"
    SAGEMAKER = "sagemaker"


class PayloadFormat(StrEnum):
    """SageMaker container payload dialects. Bedrock always speaks Converse."""

    OPENAI = "openai"  # LMI / vLLM / TGI Messages API: {"messages": [...]} -> chat.completion
    TGI = "tgi"  # {"inputs": <templated prompt>, "parameters": {...}} -> [{"generated_text"}]


class TargetKind(StrEnum):
    """What a target does: chat completions (`POST /v1/chat/completions`) or embeddings (`POST /v1/embeddings`).

    Every target of one route has the same kind, so an alias is either a chat model or an embedding
    model, and a request to the other endpoint is a 400 naming `model` (`RouteTable.require_kind`)."""

    CHAT = "chat"
    EMBEDDING = "embedding"


class EmbeddingFormat(StrEnum):
    """The wire body of an embedding target (`llmops.adapters.*.embedding_transformation`)."""

    TITAN = "titan"  # Bedrock InvokeModel, Titan Text Embeddings v2: one `inputText` per call
    COHERE = "cohere"  # Bedrock InvokeModel, Cohere Embed v3: `texts`, at most 96 per call
    TEI = "tei"  # SageMaker, HF TEI / DJL embedding containers: {"inputs": [...]} -> [[...]]


# The most each format's model accepts (texts per call, characters per text); routes.json may only
# lower these: Bedrock refuses more with a ValidationException, after the quota was reserved.
_FORMAT_LIMITS: Mapping[EmbeddingFormat, tuple[int, int]] = {
    EmbeddingFormat.TITAN: (1, 50_000),
    EmbeddingFormat.COHERE: (96, 2048),
    EmbeddingFormat.TEI: (2048, 1_000_000),
}
_TITAN_DIMENSIONS = frozenset({256, 512, 1024})


@dataclass(frozen=True, slots=True)
class EmbeddingSpec:
    """An embedding target's vector sizes and limits (routes.json `embedding`).

    `dimensions` are the sizes the model answers natively; `default_dimensions` the one it answers
    when the request names none. Only Titan v2 takes the size as a parameter; the others have one
    native size, and any other `dimensions` is refused: vectors are never truncated silently.
    """

    format: EmbeddingFormat
    dimensions: tuple[int, ...]
    default_dimensions: int
    max_batch: int  # texts per provider call
    max_input_chars: int  # per text

    def __post_init__(self) -> None:
        most_texts, most_chars = _FORMAT_LIMITS[self.format]
        if not self.dimensions or any(d <= 0 for d in self.dimensions):
            raise ValueError("embedding.dimensions must be a non-empty list of positive sizes")
        if self.default_dimensions not in self.dimensions:
            raise ValueError("embedding.default_dimensions must be one of embedding.dimensions")
        if self.format is EmbeddingFormat.TITAN and not set(self.dimensions) <= _TITAN_DIMENSIONS:
            raise ValueError("embedding.dimensions: Titan v2 answers 256, 512 or 1024")
        if self.format is not EmbeddingFormat.TITAN and len(self.dimensions) != 1:
            raise ValueError(f"embedding.dimensions: {self.format.value} models have one native size")
        if not 1 <= self.max_batch <= most_texts:
            raise ValueError(f"embedding.max_batch must be between 1 and {most_texts} for {self.format.value}")
        if not 1 <= self.max_input_chars <= most_chars:
            raise ValueError(f"embedding.max_input_chars must be between 1 and {most_chars} for {self.format.value}")

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any]) -> EmbeddingSpec:
        fmt = EmbeddingFormat(spec["format"])
        dimensions = tuple(int(d) for d in spec["dimensions"])
        most_texts, most_chars = _FORMAT_LIMITS[fmt]
        return cls(
            format=fmt,
            dimensions=dimensions,
            default_dimensions=int(spec.get("default_dimensions", max(dimensions))),
            max_batch=int(spec.get("max_batch", min(most_texts, 32))),
            max_input_chars=int(spec.get("max_input_chars", min(most_chars, 50_000))),
        )


_EMBEDDING_PROVIDERS: Mapping[EmbeddingFormat, Provider] = {
    EmbeddingFormat.TITAN: Provider.BEDROCK,
    EmbeddingFormat.COHERE: Provider.BEDROCK,
    EmbeddingFormat.TEI: Provider.SAGEMAKER,
}


class Quirk(StrEnum):
    """Parameter rules a target's model enforces that OpenAI's API does not (adapters honour them)."""

    # Claude 4.x and later reject `temperature` and `top_p` in one request: top_p is dropped.
    TEMPERATURE_XOR_TOP_P = "temperature_xor_top_p"
    # Reasoning models that reject sampling parameters while thinking (temperature/top_p dropped).
    NO_SAMPLING_WHILE_REASONING = "no_sampling_while_reasoning"


@dataclass(frozen=True, slots=True)
class Target:
    """One model deployment a route can send a request to, with its prices and limits."""

    id: str
    provider: Provider
    price_per_1k_input_usd: float
    price_per_1k_output_usd: float
    context_window: int
    model_id: str = ""  # Bedrock model id or inference profile
    endpoint_name: str = ""  # SageMaker endpoint
    variant: str = ""  # SageMaker production variant (TargetVariant); empty lets SageMaker choose
    payload_format: PayloadFormat = PayloadFormat.OPENAI
    chat_template: str = "chatml"  # used by PayloadFormat.TGI only
    max_output_tokens: int = 4096
    capabilities: frozenset[Capability] = frozenset()
    quirks: frozenset[Quirk] = frozenset()
    # Prompt-cache rates; None prices cached tokens as ordinary input.
    price_per_1k_cache_read_usd: float | None = None
    price_per_1k_cache_write_usd: float | None = None
    # The foundation model behind an application inference profile ARN (whose id does not say),
    # e.g. "anthropic.claude-sonnet-4-5-20250929-v1:0": adapters pick the model family's request
    # fields from it. Empty for every other model id, which names its model itself.
    foundation_model: str = ""
    kind: TargetKind = TargetKind.CHAT
    embedding: EmbeddingSpec | None = None  # embedding targets only

    def __post_init__(self) -> None:
        if self.provider is Provider.BEDROCK and not self.model_id:
            raise ValueError(f"target {self.id}: bedrock targets need model_id")
        if self.provider is Provider.SAGEMAKER and not self.endpoint_name:
            raise ValueError(f"target {self.id}: sagemaker targets need endpoint_name")
        if self.context_window <= 0 or self.max_output_tokens <= 0:
            raise ValueError(f"target {self.id}: context_window and max_output_tokens must be positive")
        if self.price_per_1k_input_usd < 0 or self.price_per_1k_output_usd < 0:
            raise ValueError(f"target {self.id}: prices cannot be negative")
        if (self.kind is TargetKind.EMBEDDING) != (self.embedding is not None):
            raise ValueError(f"target {self.id}: an embedding target needs `embedding`, and only it may have one")
        if self.embedding is not None and _EMBEDDING_PROVIDERS[self.embedding.format] is not self.provider:
            raise ValueError(
                f"target {self.id}: {self.embedding.format.value} embeddings are not served by {self.provider.value}"
            )

    @property
    def display(self) -> str:
        """What goes into the x-llmops-target header: provider and the concrete model or variant."""
        if self.provider is Provider.BEDROCK:
            return f"bedrock:{self.model_id}"
        variant = f"/{self.variant}" if self.variant else ""
        return f"sagemaker:{self.endpoint_name}{variant}"


@dataclass(frozen=True, slots=True)
class WeightedTarget:
    """A route's primary target and its share of the traffic."""

    target_id: str
    weight: float


@dataclass(frozen=True, slots=True)
class Route:
    """What an alias resolves to: weighted primaries, then fallbacks in order."""

    alias: str
    primaries: tuple[WeightedTarget, ...]
    fallbacks: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if not self.primaries:
            raise ValueError(f"route {self.alias}: at least one primary target is required")
        if any(p.weight < 0 for p in self.primaries) or sum(p.weight for p in self.primaries) <= 0:
            raise ValueError(f"route {self.alias}: weights must be non-negative and sum above zero")

    def target_ids(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for tid in (*(p.target_id for p in self.primaries), *self.fallbacks):
            seen.setdefault(tid, None)
        return tuple(seen)


@dataclass(frozen=True, slots=True)
class RouteTable:
    """Every target and route of one configuration version."""

    version: str
    targets: Mapping[str, Target]
    routes: Mapping[str, Route]

    def __post_init__(self) -> None:
        for route in self.routes.values():
            missing = [t for t in route.target_ids() if t not in self.targets]
            if missing:
                raise ValueError(f"route {route.alias} names unknown targets: {', '.join(missing)}")
            # A fallback must answer what the primary answers: never a chat model for embeddings.
            if len({self.targets[t].kind for t in route.target_ids()}) > 1:
                raise ValueError(f"route {route.alias} mixes chat and embedding targets")

    def kind(self, route: Route) -> TargetKind:
        return self.targets[route.primaries[0].target_id].kind

    def require_kind(self, route: Route, kind: TargetKind) -> None:
        """A 400 naming `model` when `route` serves the other endpoint (chat vs embeddings)."""
        actual = self.kind(route)
        if actual is kind:
            return
        endpoint = "POST /v1/embeddings" if actual is TargetKind.EMBEDDING else "POST /v1/chat/completions"
        raise BadRequestError(
            f"'{route.alias}' is an {actual.value} model, not a {kind.value} model: call it with {endpoint}. "
            "GET /v1/models lists each model's kind.",
            param="model",
            code="model_not_supported",
        )

    def route(self, alias: str, allowed: Sequence[str] | None = None) -> Route:
        route = self.routes.get(alias)
        if route is None or (allowed is not None and "*" not in allowed and alias not in allowed):
            # The same answer for "unknown" and "not yours" so keys cannot probe other tenants' aliases;
            # the name is not echoed, as it is the caller's string and may hold anything.
            raise ModelNotFoundError(
                "The model named in 'model' does not exist or you do not have access to it; "
                "GET /v1/models lists the models this key may use.",
                param="model",
            )
        return route

    def aliases(self, allowed: Sequence[str] | None = None) -> list[str]:
        names = sorted(self.routes)
        if allowed is None or "*" in allowed:
            return names
        return [a for a in names if a in allowed]

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> RouteTable:
        """Builds a table from the versioned config document (routes.json / the DynamoDB items)."""
        try:
            targets = {
                tid: Target(
                    id=tid,
                    provider=Provider(spec["provider"]),
                    price_per_1k_input_usd=float(spec["price_per_1k_input_usd"]),
                    price_per_1k_output_usd=float(spec["price_per_1k_output_usd"]),
                    context_window=int(spec["context_window"]),
                    model_id=str(spec.get("model_id", "")),
                    endpoint_name=str(spec.get("endpoint_name", "")),
                    variant=str(spec.get("variant", "")),
                    payload_format=PayloadFormat(spec.get("payload_format", "openai")),
                    chat_template=str(spec.get("chat_template", "chatml")),
                    max_output_tokens=int(spec.get("max_output_tokens", 4096)),
                    capabilities=frozenset(Capability(c) for c in spec.get("capabilities", ())),
                    quirks=frozenset(Quirk(q) for q in spec.get("quirks", ())),
                    price_per_1k_cache_read_usd=_optional_price(spec, "price_per_1k_cache_read_usd"),
                    price_per_1k_cache_write_usd=_optional_price(spec, "price_per_1k_cache_write_usd"),
                    kind=TargetKind(spec.get("kind", "chat")),
                    embedding=EmbeddingSpec.from_mapping(spec["embedding"]) if "embedding" in spec else None,
                    foundation_model=str(spec.get("foundation_model", "")),
                )
                for tid, spec in doc["targets"].items()
            }
            routes = {
                alias: Route(
                    alias=alias,
                    primaries=tuple(
                        WeightedTarget(str(p["target"]), float(p.get("weight", 1))) for p in spec["targets"]
                    ),
                    fallbacks=tuple(str(f) for f in spec.get("fallbacks", ())),
                    description=str(spec.get("description", "")),
                )
                for alias, spec in doc["routes"].items()
            }
        except (KeyError, TypeError) as exc:
            raise ValueError(f"route config is missing a field: {exc}") from exc
        except ValueError as exc:  # an unknown provider, format, capability or quirk
            raise ValueError(f"route config has an invalid value: {exc}") from exc
        return cls(version=str(doc.get("version", "0")), targets=targets, routes=routes)


def pick_weighted(primaries: Sequence[WeightedTarget], draw: float) -> str:
    """`draw` is uniform in [0, 1): injected so canary splits are testable."""
    total = sum(p.weight for p in primaries)
    point = draw * total
    for p in primaries:
        if point < p.weight:
            return p.target_id
        point -= p.weight
    return next(p.target_id for p in reversed(primaries) if p.weight > 0)


def attempt_order(route: Route, draw: float, is_open: Callable[[str], bool]) -> list[str]:
    """The order to try targets: the weighted pick, then the other primaries by weight, then fallbacks.

    Targets with an open breaker are moved to the end rather than dropped: if everything is open we
    would rather probe a sick target than fail without trying.
    """
    first = pick_weighted(route.primaries, draw)
    others = [p.target_id for p in sorted(route.primaries, key=lambda p: -p.weight) if p.weight > 0]
    ordered = [first, *others, *route.fallbacks]
    unique = list(dict.fromkeys(ordered))
    healthy = [t for t in unique if not is_open(t)]
    sick = [t for t in unique if is_open(t)]
    return healthy + sick


def _optional_price(spec: Mapping[str, Any], name: str) -> float | None:
    return None if spec.get(name) is None else float(spec[name])


def cost_usd(target: Target, usage: Usage) -> float:
    """Uncached input, cache reads and cache writes each at their rate, plus output."""
    read_price = target.price_per_1k_cache_read_usd
    write_price = target.price_per_1k_cache_write_usd
    uncached = usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens
    return round(
        max(0, uncached) / 1000 * target.price_per_1k_input_usd
        + usage.cache_read_tokens / 1000 * (target.price_per_1k_input_usd if read_price is None else read_price)
        + usage.cache_write_tokens / 1000 * (target.price_per_1k_input_usd if write_price is None else write_price)
        + usage.output_tokens / 1000 * target.price_per_1k_output_usd,
        8,
    )


def capable_targets(targets: Sequence[Target], needed: frozenset[Capability]) -> list[Target]:
    """`targets` that have every capability in `needed`, in order; a 400 naming what is missing if none.

    Fallbacks are filtered too: a request with tools never falls back to a model that would drop them.
    """
    capable = [t for t in targets if needed <= t.capabilities]
    if not capable and targets:
        missing = sorted(needed - set().union(*(t.capabilities for t in targets)) or needed)
        raise BadRequestError(
            f"No target of this model supports {', '.join(missing)}, which the request needs. "
            "Use a model whose targets have it (GET /v1/models lists each model's capabilities).",
            param=_CAPABILITY_PARAMS.get(missing[0], "model"),
            code="unsupported_capability",
        )
    return capable


# The request parameter that asks for each capability (the 400's `param`).
_CAPABILITY_PARAMS: Mapping[str, str] = {
    Capability.TOOLS: "tools",
    Capability.IMAGES: "messages",
    Capability.REASONING: "reasoning_effort",
    Capability.PROMPT_CACHING: "messages",
    Capability.STRUCTURED_OUTPUT: "response_format",
}


def check_output_budget(target: Target, max_tokens: int | None) -> None:
    if max_tokens is not None and max_tokens > min(target.context_window, target.max_output_tokens):
        raise BadRequestError(
            f"max_tokens={max_tokens} exceeds this model's limit of "
            f"{min(target.context_window, target.max_output_tokens)} output tokens.",
            param="max_tokens",
            code="context_length_exceeded",
        )


@dataclass(slots=True)
class _BreakerState:
    """One target's run of failures, and when its breaker opened."""

    consecutive_failures: int = 0
    opened_at: float | None = None


@dataclass(slots=True)
class CircuitBreaker:
    """Per-container breaker: after `threshold` consecutive retryable failures a target is skipped
    for `cooldown_s`; then one request probes it (half-open) and success closes it again.

    State lives in the Lambda container's memory on purpose: it reacts in milliseconds and needs no
    table write on the hot path. Each container learns on its own, which is what we want for
    transient per-AZ or per-endpoint trouble.
    """

    threshold: int = 5
    cooldown_s: float = 30.0
    _states: dict[str, _BreakerState] = field(default_factory=dict)

    def is_open(self, target_id: str, now: float) -> bool:
        state = self._states.get(target_id)
        if state is None or state.opened_at is None:
            return False
        # After the cooldown the breaker is half-open: the next request probes the target.
        return now - state.opened_at < self.cooldown_s

    def record_success(self, target_id: str) -> None:
        self._states.pop(target_id, None)

    def record_failure(self, target_id: str, now: float) -> None:
        state = self._states.setdefault(target_id, _BreakerState())
        state.consecutive_failures += 1
        if state.consecutive_failures >= self.threshold:
            state.opened_at = now


def default_draw() -> float:
    return random.random()
