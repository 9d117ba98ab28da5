"""The SageMaker endpoint provider: a thin shell around `sagemaker-runtime.invoke_endpoint` and
`invoke_endpoint_with_response_stream`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from llmops.adapters.aws_clients import provider_call
from llmops.adapters.sagemaker.transformation import (
    ERROR_TABLE,
    from_invoke_endpoint_response,
    from_response_stream,
    to_invoke_endpoint_request,
)
from llmops.domain.chat import ChatRequest, Completion
from llmops.domain.routing import Target
from llmops.domain.streaming import StreamEvent

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

__all__ = ["SageMakerEndpointProvider"]


class SageMakerEndpointProvider:
    """Implements `llmops.domain.ports.ChatProvider` and `llmops.domain.streaming.StreamingChatProvider`
    for SageMaker real-time endpoint targets.

    `client_factory(timeout_s)` returns a client whose timeouts fit the call's time budget, as for
    `BedrockConverseProvider`.
    """

    def __init__(self, client_factory: Callable[[float | None], SageMakerRuntimeClient]) -> None:
        self._client_factory = client_factory

    def complete(self, target: Target, request: ChatRequest, *, timeout_s: float | None = None) -> Completion:
        kwargs = to_invoke_endpoint_request(target, request)
        # Reading the body is part of the call: a read timeout can strike there too.
        with provider_call("SageMaker", ERROR_TABLE, target_id=target.id):
            response = self._client_factory(timeout_s).invoke_endpoint(**kwargs)
            body = response["Body"].read()
        return from_invoke_endpoint_response(target, request, body)

    def stream(self, target: Target, request: ChatRequest, *, timeout_s: float | None = None) -> Iterator[StreamEvent]:
        """The container's stream as it arrives, as for `BedrockConverseProvider.stream`."""
        kwargs = to_invoke_endpoint_request(target, request, stream=True)
        with provider_call("SageMaker", ERROR_TABLE, target_id=target.id):
            body = self._client_factory(timeout_s).invoke_endpoint_with_response_stream(**kwargs)["Body"]
            try:
                parts = (event["PayloadPart"]["Bytes"] for event in body if "PayloadPart" in event)
                yield from from_response_stream(target, request, parts)
            finally:
                body.close()
