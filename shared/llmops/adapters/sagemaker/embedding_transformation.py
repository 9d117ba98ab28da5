"""Pure mapping between embedding batches and SageMaker embedding containers' bodies (no network).

Hugging Face Text Embeddings Inference (TEI) and the DJL / LMI embedding handlers take the same
body on `/invocations` and answer a vector per text, normalized by default:

    {"inputs": [str]} -> [[float]]            (DJL may wrap it: {"embeddings": [[float]]})

The containers report no token count that SageMaker relays, so the pessimistic estimate
(`llmops.domain.embeddings.estimate_input_tokens`) is reported and settled on; a target's price per
token is then a share of the endpoint's cost, which is what routes.json prices anyway. A container
refusing a batch (TEI's 413 over `--max-client-batch-size`, 422 over its token limit) comes back as
ModelError carrying its status: the shared `transformation.ERROR_TABLE` makes that a 400.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from llmops.adapters.sagemaker.transformation import ERROR_TABLE
from llmops.domain.embeddings import Embedded, estimate_input_tokens
from llmops.domain.errors import ProviderError, ProviderFailureKind
from llmops.domain.routing import EmbeddingFormat, Target

__all__ = ["ERROR_TABLE", "from_invoke_endpoint_response", "to_invoke_endpoint_request"]

CONTENT_TYPE = "application/json"


def to_invoke_endpoint_request(target: Target, texts: Sequence[str]) -> dict[str, Any]:
    """The keyword arguments of `sagemaker-runtime.invoke_endpoint` for one batch of `target`."""
    if target.embedding is None or target.embedding.format is not EmbeddingFormat.TEI:
        raise ValueError(f"target {target.id} is not a SageMaker embedding target")
    kwargs: dict[str, Any] = {
        "EndpointName": target.endpoint_name,
        "Body": json.dumps({"inputs": list(texts)}, ensure_ascii=False).encode("utf-8"),
        "ContentType": CONTENT_TYPE,
        "Accept": CONTENT_TYPE,
    }
    if target.variant:
        kwargs["TargetVariant"] = target.variant
    return kwargs


def from_invoke_endpoint_response(target: Target, texts: Sequence[str], body: bytes) -> Embedded:
    try:
        doc = json.loads(body)
        rows = doc["embeddings"] if isinstance(doc, Mapping) else doc
        if not isinstance(rows, list):
            raise TypeError("not a list of vectors")
        vectors = tuple(_vector(row) for row in rows)
    except (ValueError, KeyError, TypeError) as exc:
        raise ProviderError(
            ProviderFailureKind.UNAVAILABLE,
            "The endpoint answered an unexpected embedding document",
            target_id=target.id,
        ) from exc
    return Embedded(vectors, estimate_input_tokens(texts))


def _vector(values: Any) -> tuple[float, ...]:
    if not isinstance(values, list) or not values:
        raise ValueError("not a vector")
    vector = tuple(float(v) for v in values)
    if not all(math.isfinite(v) for v in vector):
        raise ValueError("not a finite vector")
    return vector
