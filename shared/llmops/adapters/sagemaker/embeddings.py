"""The SageMaker embedding provider: a thin shell around `sagemaker-runtime.invoke_endpoint`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from llmops.adapters.aws_clients import provider_call
from llmops.adapters.sagemaker.embedding_transformation import (
    ERROR_TABLE,
    from_invoke_endpoint_response,
    to_invoke_endpoint_request,
)
from llmops.domain.embeddings import Embedded, EmbeddingInputType
from llmops.domain.routing import Target

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

__all__ = ["SageMakerEmbeddingProvider"]


class SageMakerEmbeddingProvider:
    """Implements `llmops.domain.ports.EmbeddingProvider` for SageMaker embedding endpoints (TEI, DJL).

    The containers answer their one native size, so `dimensions` (checked by the domain against the
    target's) and `input_type` (a Cohere notion) are not sent.
    """

    def __init__(self, client_factory: Callable[[float | None], SageMakerRuntimeClient]) -> None:
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
        kwargs = to_invoke_endpoint_request(target, texts)
        with provider_call("SageMaker", ERROR_TABLE, target_id=target.id):
            response = self._client_factory(timeout_s).invoke_endpoint(**kwargs)
            body = response["Body"].read()
        return from_invoke_endpoint_response(target, texts, body)
