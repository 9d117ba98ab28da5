"""`BedrockGuardrailDetector`: a pluggable guard detector backed by Amazon Bedrock ApplyGuardrail.

Enabled per tenant by naming ``bedrock_guardrail`` in the policy's ``detectors`` and passing an
instance as ``GuardEngine(policy, extra_detectors=[...])``. The guardrail itself (its PII types,
denied topics, word lists, content filters) is configured in Bedrock; this adapter maps what it
reports to findings and lets the tenant's guard policy decide the action.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from llmops.adapters.aws_clients import bedrock_runtime
from llmops.adapters.bedrock_guardrails.transformation import (
    DETECTOR_NAME,
    GuardrailSource,
    findings_from_response,
    to_apply_guardrail_request,
)
from llmops.domain.errors import UpstreamUnavailableError
from llmops.domain.guard import Finding

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

__all__ = ["BedrockGuardrailDetector", "default_bedrock_runtime_client"]


def default_bedrock_runtime_client() -> BedrockRuntimeClient:
    return bedrock_runtime(connect_timeout_s=1.0, read_timeout_s=3.0, max_attempts=2)


class BedrockGuardrailDetector:
    """Implements `llmops.domain.guard.Detector`.

    The detector interface carries no direction, so `source` fixes which side of the guardrail is
    applied (INPUT for prompts, OUTPUT for completions); build one of each if both are wanted.
    Failures raise `UpstreamUnavailableError` (503) unless `fail_open` is set.
    """

    def __init__(
        self,
        client_factory: Callable[[], BedrockRuntimeClient] = default_bedrock_runtime_client,
        *,
        guardrail_id: str,
        version: str = "DRAFT",
        source: GuardrailSource = "INPUT",
        fail_open: bool = False,
    ) -> None:
        self._client_factory = client_factory
        self._guardrail_id = guardrail_id
        self._version = version
        self._source: GuardrailSource = source
        self._fail_open = fail_open

    @property
    def name(self) -> str:
        return DETECTOR_NAME

    def detect(self, text: str) -> list[Finding]:
        if not text.strip():
            return []
        request: Any = to_apply_guardrail_request(
            text, guardrail_id=self._guardrail_id, version=self._version, source=self._source
        )
        try:
            response = self._client_factory().apply_guardrail(**request)
        except (ClientError, BotoCoreError) as exc:
            if self._fail_open:
                return []
            raise UpstreamUnavailableError(
                f"The bedrock_guardrail detector is unavailable ({type(exc).__name__}).", status=503
            ) from exc
        return findings_from_response(text, response)
