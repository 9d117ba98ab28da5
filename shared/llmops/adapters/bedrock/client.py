"""The Bedrock Converse provider: a thin shell around `bedrock-runtime.converse` and `converse_stream`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from llmops.adapters.aws_clients import provider_call
from llmops.adapters.bedrock.transformation import (
    ERROR_TABLE,
    from_converse_response,
    from_converse_stream,
    structured_output_tool,
    to_converse_request,
)
from llmops.domain.chat import ChatRequest, Completion
from llmops.domain.errors import ProviderError
from llmops.domain.routing import Target
from llmops.domain.streaming import StreamEvent

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

__all__ = ["BedrockConverseProvider"]


class BedrockConverseProvider:
    """Implements `llmops.domain.ports.ChatProvider` and `llmops.domain.streaming.StreamingChatProvider`
    for Bedrock targets.

    `client_factory(timeout_s)` is called on each request rather than in the constructor so that
    building a provider never touches AWS; it returns a client whose timeouts fit the call's time
    budget (the composition root passes `aws_clients.provider_client`, which caches those, so the
    call is a dict lookup).
    """

    def __init__(self, client_factory: Callable[[float | None], BedrockRuntimeClient]) -> None:
        self._client_factory = client_factory

    def complete(self, target: Target, request: ChatRequest, *, timeout_s: float | None = None) -> Completion:
        kwargs = to_converse_request(target, request)
        with provider_call("Bedrock", ERROR_TABLE, target_id=target.id):
            response = self._client_factory(timeout_s).converse(**kwargs)
        try:
            return from_converse_response(
                response,  # type: ignore[arg-type]
                structured_tool=structured_output_tool(target, request),
            )
        except ProviderError as exc:
            raise ProviderError(exc.kind, exc.message, target_id=target.id) from exc

    def stream(self, target: Target, request: ChatRequest, *, timeout_s: float | None = None) -> Iterator[StreamEvent]:
        """ConverseStream's events as they arrive. The call is made on the first `next()`; the client's
        read timeout (from `timeout_s`) bounds the wait for each read, so a stalled stream times out.
        Closing the iterator closes the HTTP response."""
        kwargs = to_converse_request(target, request)
        with provider_call("Bedrock", ERROR_TABLE, target_id=target.id):
            events = self._client_factory(timeout_s).converse_stream(**kwargs)["stream"]
            try:
                yield from from_converse_stream(
                    events,  # type: ignore[arg-type]
                    target_id=target.id,
                    structured_tool=structured_output_tool(target, request),
                )
            finally:
                events.close()
