"""`ComprehendPiiDetector`: a service guard detector backed by Amazon Comprehend DetectPiiEntities.

A tenant's guard policy enables it (`comprehend: {language, entity_types, min_score, ...}`); the
gateway builds one detector per policy (`llmops.application.guard_detectors`). It finds what
patterns cannot: PERSON and ADDRESS. The policy's actions decide what happens to each type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from llmops.adapters.aws_clients import client as aws_client
from llmops.adapters.bedrock_guardrails.client import failure_reason
from llmops.adapters.comprehend.transformation import (
    DETECTOR_NAME,
    MAX_TEXT_BYTES,
    chunk_text,
    findings_from_response,
    to_request,
)
from llmops.domain.guard import Direction, Finding
from llmops.domain.guard.service_detectors import Detection, DetectorUnavailableError

__all__ = ["ComprehendClient", "ComprehendPiiDetector", "default_comprehend_client"]


class ComprehendClient(Protocol):
    """The one call we make (boto3's Comprehend client satisfies it)."""

    def detect_pii_entities(self, *, Text: str, LanguageCode: str) -> Mapping[str, Any]: ...  # noqa: N803


def default_comprehend_client(
    *, connect_timeout_s: float = 1.0, read_timeout_s: float = 3.0, max_attempts: int = 1, region: str | None = None
) -> ComprehendClient:
    """The cached botocore client (honours AWS_ENDPOINT_URL_COMPREHEND, as the local stack sets it).

    One attempt by default: a retry would not fit the detector's timeout, and its fail mode decides."""
    created: Any = aws_client(
        "comprehend",
        connect_timeout_s=connect_timeout_s,
        read_timeout_s=read_timeout_s,
        max_attempts=max_attempts,
        region=region,
    )
    return created  # type: ignore[no-any-return]


class ComprehendPiiDetector:
    """Implements `llmops.domain.guard.service_detectors.ServiceDetector` (the same on both directions).

    `client_factory` is called per scan, not in the constructor, so building the detector never
    touches AWS (`aws_clients` caches the client: the call is a dict lookup). A failed call raises
    `DetectorUnavailableError`; the policy's fail mode decides what that means. `entity_types`
    (Comprehend type -> finding type) keeps only those types; empty keeps every type.
    """

    def __init__(
        self,
        client_factory: Callable[[], ComprehendClient] = default_comprehend_client,
        *,
        language: str = "en",
        min_score: float = 0.5,
        entity_types: Mapping[str, str] | None = None,
        max_chunk_bytes: int = MAX_TEXT_BYTES,
    ) -> None:
        self._client_factory = client_factory
        self._language = language
        self._min_score = min_score
        self._entity_types = dict(entity_types or {})
        self._max_chunk_bytes = max_chunk_bytes

    @property
    def name(self) -> str:
        return DETECTOR_NAME

    def findings(self, text: str) -> list[Finding]:
        chunks = chunk_text(text, self._max_chunk_bytes)
        if not chunks:
            return []
        findings: list[Finding] = []
        try:
            client = self._client_factory()
            for chunk in chunks:
                response = client.detect_pii_entities(**to_request(chunk, self._language))
                findings.extend(
                    findings_from_response(
                        response,
                        offset=chunk.offset,
                        min_score=self._min_score,
                        text_length=len(chunk.text),
                        entity_types=self._entity_types,
                    )
                )
        except (ClientError, BotoCoreError) as exc:
            # The SDK's error code names the failure, never the text we sent.
            raise DetectorUnavailableError(DETECTOR_NAME, failure_reason(exc)) from exc
        return findings

    def detect(self, text: str, direction: Direction) -> Detection:
        return Detection(tuple(self.findings(text)))
