"""The Bedrock Converse provider: a thin shell around `bedrock-runtime.converse`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from botocore.exceptions import BotoCoreError, ClientError

from llmops.adapters.aws_clients import provider_client, transport_failure_kind
from llmops.adapters.bedrock.transformation import failure_kind, from_converse_response, to_converse_request
from llmops.domain.chat import ChatRequest, Completion
from llmops.domain.errors import ProviderError, ProviderFailureKind
from llmops.domain.routing import Target

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

    from llmops.config.env import Settings

__all__ = ["BedrockConverseProvider"]


class BedrockConverseProvider:
    """Implements `llmops.domain.ports.ChatProvider` for Bedrock targets.

    `client_factory(timeout_s)` is called on each request rather than in the constructor so that
    building a provider never touches AWS; it returns a client whose timeouts fit the call's time
    budget, and `aws_clients` caches those, so the call is a dict lookup.
    """

    def __init__(self, client_factory: Callable[[float | None], BedrockRuntimeClient]) -> None:
        self._client_factory = client_factory

    @classmethod
    def from_settings(cls, settings: Settings) -> BedrockConverseProvider:
        def for_call(budget_s: float | None) -> BedrockRuntimeClient:
            return cast(
                "BedrockRuntimeClient",
                provider_client(
                    "bedrock-runtime",
                    budget_s=budget_s,
                    connect_timeout_s=settings.provider_connect_timeout_s,
                    read_timeout_s=settings.provider_read_timeout_s,
                ),
            )

        return cls(for_call)

    def complete(self, target: Target, request: ChatRequest, *, timeout_s: float | None = None) -> Completion:
        kwargs = to_converse_request(target, request)
        try:
            response = self._client_factory(timeout_s).converse(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "Unknown"))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            kind = failure_kind(code, status, message=str(error.get("Message", "")))
            # Only the code and status: service messages can quote the request, and this text may
            # reach logs and the caller.
            raise ProviderError(
                kind,
                f"Bedrock returned {code} (HTTP {status})",
                target_id=target.id,
            ) from exc
        except BotoCoreError as exc:
            kind = transport_failure_kind(exc) or ProviderFailureKind.UNAVAILABLE
            raise ProviderError(kind, f"Bedrock call failed: {type(exc).__name__}", target_id=target.id) from exc
        try:
            return from_converse_response(response)  # type: ignore[arg-type]
        except ProviderError as exc:
            raise ProviderError(exc.kind, exc.message, target_id=target.id) from exc
