"""The Bedrock embedding provider: a thin shell around `bedrock-runtime.invoke_model`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from llmops.adapters.aws_clients import provider_call
from llmops.adapters.bedrock.embedding_transformation import (
    ERROR_TABLE,
    from_invoke_model_response,
    to_invoke_model_request,
)
from llmops.domain.embeddings import Embedded, EmbeddingInputType
from llmops.domain.routing import Target

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

__all__ = ["BedrockEmbeddingProvider"]


class BedrockEmbeddingProvider:
    """Implements `llmops.domain.ports.EmbeddingProvider` for Bedrock Titan and Cohere targets.

    `client_factory(timeout_s)` as for `BedrockConverseProvider` (the same cached clients).
    """

    def __init__(self, client_factory: Callable[[float | None], BedrockRuntimeClient]) -> None:
        self._client_factory = client_factory

    def embed(
        self,
        target: Target,
        texts: Sequence[str],
        *,
        dimensions: int,
        input_type: EmbeddingInputType,
        timeout_s: float | None = None,
    ) -> Embedded:
        kwargs = to_invoke_model_request(target, texts, dimensions=dimensions, input_type=input_type)
        # Reading the body is part of the call: a read timeout can strike there too.
        with provider_call("Bedrock", ERROR_TABLE, target_id=target.id):
            response = self._client_factory(timeout_s).invoke_model(**kwargs)
            body = response["body"].read()
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        return from_invoke_model_response(target, texts, body, headers)
