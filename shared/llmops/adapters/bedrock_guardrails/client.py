"""`BedrockGuardrailDetector`: a service guard detector backed by Amazon Bedrock ApplyGuardrail.

A tenant's guard policy names the guardrail (`bedrock_guardrail: {guardrail_id, version, ...}`);
the gateway builds one detector per policy (`llmops.application.guard_detectors`) and the engine
calls it on the stages the policy lists, with the direction as ApplyGuardrail's `source`;
`detect_many` checks a request's texts in as few calls as ApplyGuardrail's limits allow
(`transformation.plan_calls`). The guardrail itself (its PII types, denied topics, word lists,
content filters) is configured in Bedrock; this adapter maps what it reports, and what it did, to findings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from llmops.adapters.aws_clients import bedrock_runtime
from llmops.adapters.bedrock_guardrails.transformation import (
    DETECTOR_NAME,
    GuardrailSource,
    detections_from_batch,
    findings_from_response,
    plan_calls,
    to_apply_guardrail_batch,
)
from llmops.domain.errors import safe_error_code
from llmops.domain.guard import Direction, Finding
from llmops.domain.guard.service_detectors import Detection, DetectorUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

__all__ = ["BedrockGuardrailDetector", "default_bedrock_runtime_client", "failure_reason"]


def default_bedrock_runtime_client(timeout_s: float = 3.0) -> BedrockRuntimeClient:
    """One attempt: a retry would not fit the detector's timeout, and its fail mode decides instead."""
    return bedrock_runtime(connect_timeout_s=min(1.0, timeout_s), read_timeout_s=timeout_s, max_attempts=1)


def failure_reason(exc: ClientError | BotoCoreError) -> str:
    """The service's error code or the client-side exception's name: never text we sent."""
    if isinstance(exc, ClientError):
        return safe_error_code(exc.response.get("Error", {}).get("Code", "Unknown"))
    return safe_error_code(type(exc).__name__)


class BedrockGuardrailDetector:
    """Implements `llmops.domain.guard.service_detectors.ServiceDetector`.

    `client_factory` is called per scan, not in the constructor, so building the detector never
    touches AWS (`aws_clients` caches the client). A failed call raises `DetectorUnavailableError`;
    the policy's fail mode decides what that means.
    """

    def __init__(
        self,
        client_factory: Callable[[], BedrockRuntimeClient] = default_bedrock_runtime_client,
        *,
        guardrail_id: str,
        version: str = "DRAFT",
    ) -> None:
        self._client_factory = client_factory
        self._guardrail_id = guardrail_id
        self._version = version

    @property
    def name(self) -> str:
        return DETECTOR_NAME

    def _apply(self, texts: Sequence[str], direction: Direction) -> Any:
        source: GuardrailSource = "INPUT" if direction is Direction.INPUT else "OUTPUT"
        request: Any = to_apply_guardrail_batch(
            texts, guardrail_id=self._guardrail_id, version=self._version, source=source
        )
        try:
            return self._client_factory().apply_guardrail(**request)
        except (ClientError, BotoCoreError) as exc:
            raise DetectorUnavailableError(DETECTOR_NAME, failure_reason(exc)) from exc

    def detect(self, text: str, direction: Direction) -> Detection:
        return self.detect_many([text], direction)[0]

    def detect_many(self, texts: Sequence[str], direction: Direction) -> list[Detection]:
        """One `Detection` per text, in order; blank texts are not sent. Any call failing fails all."""
        detections = [Detection() for _ in texts]
        sent = [i for i, text in enumerate(texts) if text.strip()]
        for call in plan_calls([texts[i] for i in sent]):
            batch = [texts[sent[k]] for k in call]
            for k, detection in zip(call, detections_from_batch(batch, self._apply(batch, direction)), strict=True):
                detections[sent[k]] = detection
        return detections

    def findings(self, text: str, direction: Direction = Direction.INPUT) -> list[Finding]:
        """The findings alone (what the guardrail reported, without its verdict)."""
        if not text.strip():
            return []
        return findings_from_response(text, self._apply([text], direction))
