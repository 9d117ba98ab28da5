"""The embedding models behind the local Bedrock and SageMaker emulators, on their real wire bodies.

Bedrock InvokeModel (`POST /model/{modelId}/invoke`), validated as Bedrock does, answering with a
ValidationException in its wording (`Malformed input request: #/dimensions: ...`):

* Titan Text Embeddings v2 (`amazon.titan-embed-text-v2*`): `{"inputText", "dimensions"?, "normalize"?,
  "embeddingTypes"?}` -> `{"embedding", "embeddingsByType", "inputTextTokenCount"}`; dimensions
  256, 512 or 1024 (default 1024), at most 50,000 characters and 8,192 tokens.
* Cohere Embed v3 (`cohere.embed-*`): `{"texts", "input_type", "truncate"?, "embedding_types"?}` ->
  `{"id", "embeddings", "texts", "response_type"}`; 1 to 96 texts of at most 2,048 characters,
  `input_type` required, 1024 dimensions. As on Bedrock, the body counts no tokens; the
  `X-Amzn-Bedrock-Input-Token-Count` header does (Titan's too).

SageMaker embedding containers (TEI, DJL; the route table's `tei` targets): `{"inputs": str | [str]}` ->
`[[float]]`, at most the target's `max_batch` texts (TEI's 413 beyond, which SageMaker relays as
ModelError), vectors of the target's size.

Vectors are deterministic: hash-seeded from the text (and the size), normalized, so equal texts get
equal vectors; similar texts are not near each other (no model runs). With a forwarder the texts go
to the upstream's `/v1/embeddings` and its vectors come back in the model's body; they must have the
size the model answers (set the route's `dimensions` to the upstream model's).
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The header's name is the wire format's, shared with the client that reads it.
from llmops.adapters.bedrock.embedding_transformation import INPUT_TOKEN_HEADER
from llmops.domain.routing import EmbeddingFormat, Provider, RouteTable
from llmops.local.emulators.answers import estimate_tokens
from llmops.local.emulators.forwarding import ForwardingError, OpenAICompatibleForwarder

__all__ = [
    "INPUT_TOKEN_HEADER",
    "BedrockEmbedding",
    "ContainerRefusalError",
    "EmbeddingEndpoint",
    "InvalidEmbeddingRequestError",
    "answer_bedrock_embedding",
    "answer_embedding_container",
    "deterministic_vector",
    "embedding_endpoints",
    "is_bedrock_embedding_model",
    "parse_bedrock_embedding",
]


_TITAN_DIMENSIONS = (256, 512, 1024)
_TITAN_MAX_CHARS = 50_000
_TITAN_MAX_TOKENS = 8192
_TITAN_KEYS = frozenset({"inputText", "dimensions", "normalize", "embeddingTypes"})
_COHERE_DIMENSIONS = 1024
_COHERE_MAX_TEXTS = 96
_COHERE_MAX_CHARS = 2048
_COHERE_KEYS = frozenset({"texts", "input_type", "truncate", "embedding_types", "images"})
_COHERE_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")
_COHERE_TRUNCATE = ("NONE", "START", "END")
_EMBEDDING_TYPES = ("float", "int8", "uint8", "binary", "ubinary")


class InvalidEmbeddingRequestError(Exception):
    """What Bedrock refuses with a ValidationException (the message in its wording)."""


class ContainerRefusalError(Exception):
    """What an embedding container answers with a non-2xx status (SageMaker relays it as ModelError)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def deterministic_vector(text: str, dimensions: int, *, normalize: bool = True) -> list[float]:
    """A unit vector (unless `normalize` is false) seeded by sha256 of the size and the text."""
    values: list[float] = []
    seed = f"{dimensions}\x00{text}".encode("utf-8", "surrogatepass")
    block = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(seed + block.to_bytes(4, "big")).digest()
        values.extend(int.from_bytes(digest[i : i + 4], "big") / 2**31 - 1.0 for i in range(0, 32, 4))
        block += 1
    vector = values[:dimensions]
    if normalize:
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        vector = [v / norm for v in vector]
    return [round(v, 8) for v in vector]


def _malformed(detail: str) -> InvalidEmbeddingRequestError:
    return InvalidEmbeddingRequestError(f"Malformed input request: {detail}, please reformat your input and try again.")


def is_bedrock_embedding_model(model_id: str) -> bool:
    return _bedrock_family(model_id) is not None


def _bedrock_family(model_id: str) -> EmbeddingFormat | None:
    # Model ids, cross-region profiles ("us.cohere.embed-v4:0") and ARNs all name the model.
    if "amazon.titan-embed-text-v2" in model_id:
        return EmbeddingFormat.TITAN
    if "cohere.embed-" in model_id:
        return EmbeddingFormat.COHERE
    return None


@dataclass(frozen=True, slots=True)
class BedrockEmbedding:
    """One validated InvokeModel call of an embedding model."""

    model_id: str
    family: EmbeddingFormat
    texts: tuple[str, ...]
    dimensions: int
    normalize: bool = True
    embedding_types: tuple[str, ...] | None = None  # Cohere: None answers the bare float list


@dataclass(frozen=True, slots=True)
class EmbeddingAnswer:
    body: dict[str, Any]
    input_tokens: int


def parse_bedrock_embedding(model_id: str, raw: bytes) -> BedrockEmbedding:
    """The call, or `InvalidEmbeddingRequestError` where Bedrock answers ValidationException."""
    family = _bedrock_family(model_id)
    if family is None:
        raise InvalidEmbeddingRequestError(
            "The local emulator answers InvokeModel for embedding models only (Titan Text Embeddings v2, "
            "Cohere Embed); call chat models with Converse."
        )
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise _malformed("#: the body is not JSON") from None
    if not isinstance(body, dict):
        raise _malformed("#: expected type: JSONObject")
    return _parse_titan(model_id, body) if family is EmbeddingFormat.TITAN else _parse_cohere(model_id, body)


def _extraneous(body: Mapping[str, Any], allowed: frozenset[str]) -> None:
    for key in body:
        if key not in allowed:
            raise _malformed(f"#: extraneous key [{key}] is not permitted")


def _parse_titan(model_id: str, body: Mapping[str, Any]) -> BedrockEmbedding:
    _extraneous(body, _TITAN_KEYS)
    text = body.get("inputText")
    if text is None:
        raise _malformed("#: required key [inputText] not found")
    if not isinstance(text, str):
        raise _malformed("#/inputText: expected type: String")
    if not text:
        raise _malformed("#/inputText: expected minLength: 1, actual: 0")
    if len(text) > _TITAN_MAX_CHARS:
        raise _malformed(f"#/inputText: expected maxLength: {_TITAN_MAX_CHARS}, actual: {len(text)}")
    if estimate_tokens(text) > _TITAN_MAX_TOKENS:
        raise InvalidEmbeddingRequestError(
            f"400 Bad Request: Too many input tokens. Max input tokens: {_TITAN_MAX_TOKENS}, "
            f"request input token count: {estimate_tokens(text)}"
        )
    dimensions = body.get("dimensions", 1024)
    if isinstance(dimensions, bool) or dimensions not in _TITAN_DIMENSIONS:
        raise _malformed(f"#/dimensions: {dimensions} is not a valid enum value")
    normalize = body.get("normalize", True)
    if not isinstance(normalize, bool):
        raise _malformed("#/normalize: expected type: Boolean")
    types = body.get("embeddingTypes", ["float"])
    if not isinstance(types, list) or not types or any(t not in ("float", "binary") for t in types):
        raise _malformed("#/embeddingTypes: expected a non-empty list of float, binary")
    return BedrockEmbedding(model_id, EmbeddingFormat.TITAN, (text,), int(dimensions), normalize, tuple(types))


def _parse_cohere(model_id: str, body: Mapping[str, Any]) -> BedrockEmbedding:
    _extraneous(body, _COHERE_KEYS)
    texts = body.get("texts")
    if texts is None:
        raise _malformed("#: required key [texts] not found")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise _malformed("#/texts: expected type: JSONArray of String")
    if not texts:
        raise _malformed("#/texts: expected minimum item count: 1, found: 0")
    if len(texts) > _COHERE_MAX_TEXTS:
        raise _malformed(f"#/texts: expected maximum item count: {_COHERE_MAX_TEXTS}, found: {len(texts)}")
    for index, text in enumerate(texts):
        if len(text) > _COHERE_MAX_CHARS:
            raise _malformed(f"#/texts/{index}: expected maxLength: {_COHERE_MAX_CHARS}, actual: {len(text)}")
    input_type = body.get("input_type")
    if input_type is None:
        raise _malformed("#: required key [input_type] not found")
    if input_type not in _COHERE_INPUT_TYPES:
        raise _malformed(f"#/input_type: {input_type} is not a valid enum value")
    if body.get("truncate", "NONE") not in _COHERE_TRUNCATE:
        raise _malformed(f"#/truncate: {body.get('truncate')} is not a valid enum value")
    types = body.get("embedding_types")
    if types is not None and (
        not isinstance(types, list) or not types or any(t not in _EMBEDDING_TYPES for t in types)
    ):
        raise _malformed("#/embedding_types: expected a non-empty list of " + ", ".join(_EMBEDDING_TYPES))
    if types is not None and types != ["float"]:
        raise InvalidEmbeddingRequestError("The local emulator answers float embeddings only.")
    return BedrockEmbedding(
        model_id, EmbeddingFormat.COHERE, tuple(texts), _COHERE_DIMENSIONS, True, tuple(types) if types else None
    )


def answer_bedrock_embedding(call: BedrockEmbedding, forwarder: OpenAICompatibleForwarder | None) -> EmbeddingAnswer:
    """The model's InvokeModel body; `ForwardingError` when a forwarded upstream fails."""
    sized = call.family is EmbeddingFormat.TITAN
    vectors, tokens = _vectors(call.model_id, call.texts, call.dimensions, call.normalize, forwarder, sized=sized)
    if call.family is EmbeddingFormat.TITAN:
        body: dict[str, Any] = {
            "embedding": vectors[0],
            "embeddingsByType": {"float": vectors[0]},
            "inputTextTokenCount": tokens,
        }
        return EmbeddingAnswer(body, tokens)
    by_type = call.embedding_types is not None
    body = {
        "id": str(uuid.uuid4()),
        "embeddings": {"float": vectors} if by_type else vectors,
        "texts": list(call.texts),
        "response_type": "embeddings_by_type" if by_type else "embeddings_floats",
    }
    return EmbeddingAnswer(body, tokens)


@dataclass(frozen=True, slots=True)
class EmbeddingEndpoint:
    """A SageMaker endpoint serving an embedding container, as the route table describes it."""

    dimensions: int
    max_batch: int


def embedding_endpoints(table: RouteTable) -> dict[str, EmbeddingEndpoint]:
    """The route table's SageMaker embedding endpoints, by endpoint name."""
    return {
        t.endpoint_name: EmbeddingEndpoint(t.embedding.default_dimensions, t.embedding.max_batch)
        for t in table.targets.values()
        if t.provider is Provider.SAGEMAKER and t.embedding is not None
    }


def answer_embedding_container(
    endpoint: EmbeddingEndpoint, label: str, raw: bytes, forwarder: OpenAICompatibleForwarder | None
) -> list[list[float]]:
    """TEI's `/invocations` answer, or `ContainerRefusalError` with its status (422 bad body, 413 batch too big)."""
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise ContainerRefusalError(422, "Failed to deserialize the JSON body into the target type") from None
    inputs = body.get("inputs") if isinstance(body, dict) else None
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        raise ContainerRefusalError(
            422, "Input validation error: `inputs` must be a non-empty string or list of strings"
        )
    if len(texts) > endpoint.max_batch:
        raise ContainerRefusalError(413, f"batch size {len(texts)} > maximum allowed batch size {endpoint.max_batch}")
    try:
        vectors, _ = _vectors(label, tuple(texts), endpoint.dimensions, True, forwarder)
    except ForwardingError as exc:
        raise ContainerRefusalError(exc.status, exc.message) from exc
    return vectors


def _vectors(
    model: str,
    texts: Sequence[str],
    dimensions: int,
    normalize: bool,
    forwarder: OpenAICompatibleForwarder | None,
    *,
    sized: bool = False,
) -> tuple[list[list[float]], int]:
    if forwarder is None:
        return [deterministic_vector(t, dimensions, normalize=normalize) for t in texts], sum(
            estimate_tokens(t) for t in texts
        )
    # Only Titan takes a size; asking a fixed-size upstream model for one (vLLM refuses `dimensions`
    # for models without Matryoshka training) would fail a call that needs none.
    vectors, tokens = forwarder.embed(model=model, inputs=texts, dimensions=dimensions if sized else None)
    if any(len(v) != dimensions for v in vectors):
        size = len(vectors[0]) if vectors else 0
        raise ForwardingError(502, f"upstream answered {size} dimensions where the model answers {dimensions}")
    if normalize:
        vectors = [_unit(v) for v in vectors]
    return vectors, tokens if tokens is not None else sum(estimate_tokens(t) for t in texts)


def _unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]
