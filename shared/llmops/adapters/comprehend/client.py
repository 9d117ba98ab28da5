"""`ComprehendPiiDetector`: a pluggable guard detector backed by Amazon Comprehend DetectPiiEntities.

Enabled per tenant by naming ``comprehend`` in the policy's ``detectors`` and passing an instance as
``GuardEngine(policy, extra_detectors=[...])``. It finds what patterns cannot: PERSON and ADDRESS.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from llmops.adapters.aws_clients import client as aws_client
from llmops.adapters.comprehend.transformation import (
    DETECTOR_NAME,
    MAX_TEXT_BYTES,
    chunk_text,
    findings_from_response,
    to_request,
)
from llmops.domain.errors import UpstreamUnavailableError
from llmops.domain.guard import Finding

__all__ = ["ComprehendClient", "ComprehendPiiDetector", "default_comprehend_client"]


class ComprehendClient(Protocol):
    """The one call we make (boto3's Comprehend client satisfies it)."""

    def detect_pii_entities(self, *, Text: str, LanguageCode: str) -> Mapping[str, Any]: ...  # noqa: N803


def default_comprehend_client(
    *, connect_timeout_s: float = 1.0, read_timeout_s: float = 3.0, max_attempts: int = 2, region: str | None = None
) -> ComprehendClient:
    """The cached botocore client (honours AWS_ENDPOINT_URL_COMPREHEND, as the local stack sets it)."""
    created: Any = aws_client(
        "comprehend",
        connect_timeout_s=connect_timeout_s,
        read_timeout_s=read_timeout_s,
        max_attempts=max_attempts,
        region=region,
    )
    return created  # type: ignore[no-any-return]


class ComprehendPiiDetector:
    """Implements `llmops.domain.guard.Detector`.

    `client_factory` is called per scan, not in the constructor, so building the detector never
    touches AWS (`aws_clients` caches the client: the call is a dict lookup). A failed call raises
    `UpstreamUnavailableError` (503: the text could not be checked, so it is not let through) unless
    `fail_open` is set, in which case the detector reports nothing for that text.
    """

    def __init__(
        self,
        client_factory: Callable[[], ComprehendClient] = default_comprehend_client,
        *,
        language: str = "en",
        min_score: float = 0.5,
        max_chunk_bytes: int = MAX_TEXT_BYTES,
        fail_open: bool = False,
    ) -> None:
        self._client_factory = client_factory
        self._language = language
        self._min_score = min_score
        self._max_chunk_bytes = max_chunk_bytes
        self._fail_open = fail_open

    @property
    def name(self) -> str:
        return DETECTOR_NAME

    def detect(self, text: str) -> list[Finding]:
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
                        response, offset=chunk.offset, min_score=self._min_score, text_length=len(chunk.text)
                    )
                )
        except (ClientError, BotoCoreError) as exc:
            if self._fail_open:
                return []
            # The SDK's message names the operation and error code, never the text we sent.
            raise UpstreamUnavailableError(
                f"The comprehend guardrail detector is unavailable ({type(exc).__name__}).", status=503
            ) from exc
        return findings
