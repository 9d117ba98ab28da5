"""Pure mapping between embedding batches and Bedrock InvokeModel bodies (no network).

Titan Text Embeddings v2 (`amazon.titan-embed-text-v2:0`) embeds one text per call:

    {"inputText": str, "dimensions": 256 | 512 | 1024, "normalize": true, "embeddingTypes": ["float"]}
    -> {"embedding": [float], "embeddingsByType": {"float": [float]}, "inputTextTokenCount": int}

Cohere Embed v3 (`cohere.embed-english-v3`, `cohere.embed-multilingual-v3`) up to 96 texts a call:

    {"texts": [str], "input_type": "search_document" | ..., "embedding_types": ["float"], "truncate": "NONE"}
    -> {"id", "embeddings": {"float": [[float]]}, "texts": [str], "response_type": "embeddings_by_type"}
       (or "embeddings": [[float]] with "response_type": "embeddings_floats" when no types were asked)

Cohere's body counts no tokens. Bedrock reports the input tokens of every InvokeModel call in the
`X-Amzn-Bedrock-Input-Token-Count` response header, which is used when present; without it the
pessimistic estimate (`llmops.domain.embeddings.estimate_input_tokens`) is reported and settled on.
`truncate: NONE` makes Cohere refuse an over-long text (a 400) rather than embed part of it silently.
Errors are Bedrock's (`transformation.ERROR_TABLE`, shared with Converse).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from llmops.adapters.bedrock.transformation import ERROR_TABLE
from llmops.domain.embeddings import Embedded, EmbeddingInputType, estimate_input_tokens
from llmops.domain.errors import ProviderError, ProviderFailureKind
from llmops.domain.routing import EmbeddingFormat, Target

__all__ = [
    "ERROR_TABLE",
    "INPUT_TOKEN_HEADER",
    "from_invoke_model_response",
    "to_invoke_model_request",
]

CONTENT_TYPE = "application/json"
# botocore lower-cases response header names in ResponseMetadata.HTTPHeaders.
INPUT_TOKEN_HEADER = "x-amzn-bedrock-input-token-count"  # noqa: S105 - a header name, not a secret


def _format(target: Target) -> EmbeddingFormat:
    if target.embedding is None:
        raise ValueError(f"target {target.id} is not an embedding target")
    return target.embedding.format


def to_invoke_model_request(
    target: Target, texts: Sequence[str], *, dimensions: int, input_type: EmbeddingInputType
) -> dict[str, Any]:
    """The keyword arguments of `bedrock-runtime.invoke_model` for one batch of `target`."""
    fmt = _format(target)
    if fmt is EmbeddingFormat.TITAN:
        if len(texts) != 1:
            raise ValueError("Titan embeds one text per call")
        body: dict[str, Any] = {
            "inputText": texts[0],
            "dimensions": dimensions,
            "normalize": True,  # unit vectors, as OpenAI's: cosine similarity is then a dot product
            "embeddingTypes": ["float"],
        }
    elif fmt is EmbeddingFormat.COHERE:
        body = {
            "texts": list(texts),
            "input_type": input_type.value,
            "embedding_types": ["float"],
            "truncate": "NONE",
        }
    else:
        raise ValueError(f"{fmt.value} embeddings are not a Bedrock format")
    return {
        "modelId": target.model_id,
        "body": json.dumps(body, ensure_ascii=False).encode("utf-8"),
        "contentType": CONTENT_TYPE,
        "accept": CONTENT_TYPE,
    }


def from_invoke_model_response(
    target: Target, texts: Sequence[str], body: bytes, headers: Mapping[str, str] | None = None
) -> Embedded:
    """The batch's vectors and input tokens; a body that is not the model's shape is the target failing."""
    try:
        doc = json.loads(body)
        if _format(target) is EmbeddingFormat.TITAN:
            by_type = doc.get("embeddingsByType") or {}
            vectors = [_vector(by_type.get("float") or doc["embedding"])]
            counted = doc.get("inputTextTokenCount")
        else:
            embeddings = doc["embeddings"]
            rows = embeddings["float"] if isinstance(embeddings, Mapping) else embeddings
            vectors = [_vector(row) for row in rows]
            counted = None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ProviderError(
            ProviderFailureKind.UNAVAILABLE, "Bedrock answered an unexpected embedding document", target_id=target.id
        ) from exc
    tokens = _token_count(counted) or _token_count((headers or {}).get(INPUT_TOKEN_HEADER))
    return Embedded(tuple(vectors), tokens if tokens is not None else estimate_input_tokens(texts))


def _vector(values: Any) -> tuple[float, ...]:
    if not isinstance(values, list) or not values:
        raise ValueError("not a vector")
    vector = tuple(float(v) for v in values)
    if not all(math.isfinite(v) for v in vector):
        raise ValueError("not a finite vector")  # JSON would refuse to render it
    return vector


def _token_count(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        count = int(value)
    except (TypeError, ValueError):
        return None
    return count if count >= 0 else None
