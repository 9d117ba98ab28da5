"""Embedding targets in the route table, input limits, batching within each model's limits, and the
embedding service's routing (kind, dimensions, fallbacks through chat's attempt loop)."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from llmops.domain.completions import CompletionService
from llmops.domain.embeddings import (
    MAX_INPUTS,
    Embedded,
    EmbeddingInputType,
    EmbeddingRequest,
    EmbeddingService,
    batches,
    embedding_demand,
    embedding_targets,
    estimate_input_tokens,
    validate_inputs,
)
from llmops.domain.errors import BadRequestError, ProviderError, ProviderFailureKind, UpstreamUnavailableError
from llmops.domain.quotas import cost_nanos
from llmops.domain.routing import EmbeddingFormat, EmbeddingSpec, Provider, RouteTable, Target, TargetKind
from llmops.domain.tenancy import TenantContext

ROUTES = Path(__file__).resolve().parents[3] / "shared" / "llmops" / "config" / "routes.json"
TENANT = TenantContext("t1", "k1")


def _document() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(ROUTES.read_text())
    return doc


class _Routes:
    def __init__(self, table: RouteTable) -> None:
        self.table = table

    def current(self) -> RouteTable:
        return self.table


class _Embedder:
    """Answers `size`-long vectors (or `wrong_size`), a token per text; records every batch."""

    def __init__(self, *, wrong_size: bool = False) -> None:
        self.batches: list[tuple[str, tuple[str, ...], int, EmbeddingInputType]] = []
        self.failing: dict[str, ProviderFailureKind] = {}
        self.wrong_size = wrong_size

    def embed(
        self,
        target: Target,
        texts: Sequence[str],
        *,
        dimensions: int,
        input_type: EmbeddingInputType,
        timeout_s: float | None = None,
    ) -> Embedded:
        self.batches.append((target.id, tuple(texts), dimensions, input_type))
        if target.id in self.failing:
            raise ProviderError(self.failing[target.id], "failed", target_id=target.id)
        size = dimensions + 1 if self.wrong_size else dimensions
        return Embedded(tuple((float(len(t)),) * size for t in texts), len(texts))


def _service(
    doc: dict[str, Any] | None = None, embedder: _Embedder | None = None
) -> tuple[EmbeddingService, _Embedder]:
    table = RouteTable.from_document(doc or _document())
    embedder = embedder or _Embedder()
    completions = CompletionService(routes=_Routes(table), providers={}, draw=lambda: 0.0)
    return EmbeddingService(completions, {Provider.BEDROCK: embedder, Provider.SAGEMAKER: embedder}), embedder


def test_the_seeded_embedding_targets_and_aliases() -> None:
    table = RouteTable.from_document(_document())
    titan = table.targets["bedrock-titan-embed-v2"]
    assert titan.kind is TargetKind.EMBEDDING and titan.embedding is not None
    assert titan.embedding.format is EmbeddingFormat.TITAN and titan.embedding.dimensions == (256, 512, 1024)
    assert table.targets["bedrock-cohere-embed-english-v3"].embedding == EmbeddingSpec(
        EmbeddingFormat.COHERE, (1024,), 1024, max_batch=96, max_input_chars=2048
    )
    assert table.targets["sm-bge-base-embed"].embedding.format is EmbeddingFormat.TEI  # type: ignore[union-attr]
    kinds = {alias: table.kind(route) for alias, route in table.routes.items()}
    assert {a for a, k in kinds.items() if k is TargetKind.EMBEDDING} >= {
        "titan-embed-v2",
        "cohere-embed-english",
        "bge-base-embed",
    }
    # The design's convention: an alias meant for embeddings says so in its name.
    assert all("embed" in a for a, k in kinds.items() if k is TargetKind.EMBEDDING)
    assert table.targets["bedrock-claude-haiku"].kind is TargetKind.CHAT


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"dimensions": [300], "default_dimensions": 300}, "Titan v2 answers 256, 512 or 1024"),
        ({"max_batch": 2}, "max_batch must be between 1 and 1"),
        ({"max_input_chars": 50_001}, "max_input_chars must be between 1 and 50000"),
        ({"default_dimensions": 768}, "default_dimensions must be one of"),
        ({"format": "tei", "dimensions": [1024]}, "tei embeddings are not served by bedrock"),
        ({"format": "nomic"}, "invalid value"),
    ],
)
def test_embedding_specs_are_validated(change: dict[str, Any], problem: str) -> None:
    doc = _document()
    doc["targets"]["bedrock-titan-embed-v2"]["embedding"].update(change)
    with pytest.raises(ValueError, match=problem):
        RouteTable.from_document(doc)


def test_a_route_cannot_mix_chat_and_embedding_targets() -> None:
    doc = _document()
    doc["routes"]["titan-embed-v2"]["fallbacks"] = ["bedrock-nova-lite"]
    with pytest.raises(ValueError, match="mixes chat and embedding targets"):
        RouteTable.from_document(doc)


def test_kind_and_spec_go_together() -> None:
    doc = _document()
    del doc["targets"]["bedrock-titan-embed-v2"]["embedding"]
    with pytest.raises(ValueError, match="needs `embedding`"):
        RouteTable.from_document(doc)


def test_the_wrong_endpoint_is_a_400_naming_model() -> None:
    table = RouteTable.from_document(_document())
    with pytest.raises(BadRequestError) as error:
        table.require_kind(table.routes["titan-embed-v2"], TargetKind.CHAT)
    assert (error.value.param, error.value.code) == ("model", "model_not_supported")
    assert "POST /v1/embeddings" in error.value.message
    with pytest.raises(BadRequestError, match="POST /v1/chat/completions"):
        table.require_kind(table.routes["chat-default"], TargetKind.EMBEDDING)


@pytest.mark.parametrize(
    ("inputs", "fragment"),
    [
        ((), "must not be empty"),
        (("a",) * (MAX_INPUTS + 1), f"at most {MAX_INPUTS} inputs"),
        (("fine", "  "), r"'input\[1\]' is empty"),
    ],
)
def test_request_wide_input_limits(inputs: tuple[str, ...], fragment: str) -> None:
    with pytest.raises(BadRequestError, match=fragment) as error:
        validate_inputs(inputs)
    assert error.value.param == "input"


def test_targets_are_matched_on_dimensions_and_length_never_adapted() -> None:
    table = RouteTable.from_document(_document())
    titan, cohere = table.targets["bedrock-titan-embed-v2"], table.targets["bedrock-cohere-embed-english-v3"]
    assert embedding_targets([titan, cohere], ["x"], 512) == [titan]
    assert embedding_targets([titan, cohere], ["x" * 3000], None) == [titan]  # Cohere takes 2048 characters
    with pytest.raises(BadRequestError) as error:
        embedding_targets([cohere], ["x"], 256)
    assert (error.value.param, error.value.message) == (
        "dimensions",
        "'dimensions' must be one of 1024 for this model.",
    )
    with pytest.raises(BadRequestError) as error:
        embedding_targets([cohere], ["short", "x" * 2049], None)
    assert error.value.param == "input" and "'input[1]' has 2049 characters" in error.value.message


def test_batches_cover_the_inputs_in_order() -> None:
    assert batches(200, 96) == [range(0, 96), range(96, 192), range(192, 200)]
    assert batches(3, 1) == [range(0, 1), range(1, 2), range(2, 3)]
    with pytest.raises(ValueError, match="at least 1"):
        batches(3, 0)


def test_demand_is_priced_at_the_dearest_target() -> None:
    table = RouteTable.from_document(_document())
    targets = [table.targets["bedrock-titan-embed-v2"], table.targets["bedrock-cohere-embed-english-v3"]]
    tokens = estimate_input_tokens(["some words to embed", "and more"])
    demand = embedding_demand(targets, tokens)
    assert demand.tokens == tokens
    assert demand.cost_nanos == cost_nanos(targets[1], tokens, 0) > cost_nanos(targets[0], tokens, 0)


def test_cohere_inputs_go_in_batches_of_96_and_come_back_in_order() -> None:
    service, embedder = _service()
    texts = tuple(f"text {i}" for i in range(200))
    request = EmbeddingRequest("cohere-embed-english", texts, input_type=EmbeddingInputType.SEARCH_QUERY)
    result = service.embed(service.plan(request, TENANT), request)
    assert [len(b[1]) for b in embedder.batches] == [96, 96, 8]
    assert {b[3] for b in embedder.batches} == {EmbeddingInputType.SEARCH_QUERY}
    assert [v[0] for v in result.vectors] == [float(len(t)) for t in texts]
    assert result.usage.input_tokens == 200 and result.usage.output_tokens == 0
    assert result.cost_usd == pytest.approx(200 / 1000 * 0.0001)
    assert result.target.id == "bedrock-cohere-embed-english-v3"


def test_titan_embeds_one_text_per_call_at_its_default_or_asked_size() -> None:
    service, embedder = _service()
    request = EmbeddingRequest("titan-embed-v2", ("a", "b", "c"))
    result = service.embed(service.plan(request, TENANT), request)
    assert [(b[1], b[2]) for b in embedder.batches] == [(("a",), 1024), (("b",), 1024), (("c",), 1024)]
    assert len(result.vectors) == 3
    sized = EmbeddingRequest("titan-embed-v2", ("a",), dimensions=256)
    assert len(service.embed(service.plan(sized, TENANT), sized).vectors[0]) == 256


def _with_second_bge_endpoint() -> dict[str, Any]:
    """bge-base-embed on two endpoints of the same model: a fallback that keeps the vector space."""
    doc = _document()
    spare = copy.deepcopy(doc["targets"]["sm-bge-base-embed"])
    spare["endpoint_name"] = "llmops-bge-base-embed-b"
    doc["targets"]["sm-bge-base-embed-b"] = spare
    doc["routes"]["bge-base-embed"]["fallbacks"] = ["sm-bge-base-embed-b"]
    return doc


def test_a_throttled_target_falls_back_with_every_batch() -> None:
    service, embedder = _service(_with_second_bge_endpoint())
    embedder.failing["sm-bge-base-embed"] = ProviderFailureKind.THROTTLED
    request = EmbeddingRequest("bge-base-embed", tuple(f"t{i}" for i in range(40)))
    result = service.embed(service.plan(request, TENANT), request)
    assert result.target.id == "sm-bge-base-embed-b"
    assert [a.outcome for a in result.attempts] == ["throttled", "ok"]
    # All the vectors come from one target: the fallback embedded every batch again.
    assert [(b[0], len(b[1])) for b in embedder.batches] == [
        ("sm-bge-base-embed", 32),
        ("sm-bge-base-embed-b", 32),
        ("sm-bge-base-embed-b", 8),
    ]


def test_vectors_of_the_wrong_size_are_the_target_failing() -> None:
    service, _ = _service(embedder=_Embedder(wrong_size=True))
    request = EmbeddingRequest("bge-base-embed", ("x",))
    with pytest.raises(UpstreamUnavailableError) as error:
        service.embed(service.plan(request, TENANT), request)
    assert error.value.status == 502


def test_a_model_refusing_the_request_is_the_callers_400() -> None:
    service, embedder = _service()
    embedder.failing["bedrock-titan-embed-v2"] = ProviderFailureKind.INVALID_REQUEST
    request = EmbeddingRequest("titan-embed-v2", ("x",))
    with pytest.raises(BadRequestError, match="rejected the request as invalid"):
        service.embed(service.plan(request, TENANT), request)


def test_an_embedding_alias_is_not_served_to_chat_and_back() -> None:
    service, _ = _service()
    with pytest.raises(BadRequestError) as error:
        service.plan(EmbeddingRequest("chat-default", ("x",)), TENANT)
    assert error.value.param == "model"
