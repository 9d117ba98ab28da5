"""The SageMaker endpoint provider: a thin shell around `sagemaker-runtime.invoke_endpoint`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from llmops.adapters.aws_clients import provider_client, transport_failure_kind
from llmops.adapters.sagemaker.transformation import (
    failure_kind,
    from_invoke_endpoint_response,
    to_invoke_endpoint_request,
)
from llmops.domain.chat import ChatRequest, Completion
from llmops.domain.errors import ProviderError, ProviderFailureKind
from llmops.domain.routing import Target

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

    from llmops.config.env import Settings

__all__ = ["SageMakerEndpointProvider"]


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class SageMakerEndpointProvider:
    """Implements `llmops.domain.ports.ChatProvider` for SageMaker real-time endpoint targets."""

    def __init__(self, client_factory: Callable[[float | None], SageMakerRuntimeClient]) -> None:
        self._client_factory = client_factory

    @classmethod
    def from_settings(cls, settings: Settings) -> SageMakerEndpointProvider:
        def for_call(budget_s: float | None) -> SageMakerRuntimeClient:
            return cast(
                "SageMakerRuntimeClient",
                provider_client(
                    "sagemaker-runtime",
                    budget_s=budget_s,
                    connect_timeout_s=settings.provider_connect_timeout_s,
                    read_timeout_s=settings.provider_read_timeout_s,
                ),
            )

        return cls(for_call)

    def complete(self, target: Target, request: ChatRequest, *, timeout_s: float | None = None) -> Completion:
        kwargs = to_invoke_endpoint_request(target, request)
        try:
            response = self._client_factory(timeout_s).invoke_endpoint(**kwargs)
            body = response["Body"].read()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "Unknown"))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            original = _int_or_none(exc.response.get("OriginalStatusCode"))
            kind = failure_kind(code, status, original_status=original, message=str(error.get("Message", "")))
            # Code and statuses only: ModelError's messages quote the container, which may echo the prompt.
            detail = f" (container HTTP {original})" if original is not None else ""
            raise ProviderError(
                kind, f"SageMaker returned {code} (HTTP {status}){detail}", target_id=target.id
            ) from exc
        except BotoCoreError as exc:
            transport = transport_failure_kind(exc) or ProviderFailureKind.UNAVAILABLE
            raise ProviderError(transport, f"SageMaker call failed: {type(exc).__name__}", target_id=target.id) from exc
        return from_invoke_endpoint_response(target, request, body)
