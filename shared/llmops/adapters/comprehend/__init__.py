"""Amazon Comprehend DetectPiiEntities as a pluggable guard detector (PERSON, ADDRESS and more)."""

from llmops.adapters.comprehend.client import ComprehendClient, ComprehendPiiDetector, default_comprehend_client
from llmops.adapters.comprehend.transformation import (
    COMPREHEND_TO_FINDING_TYPE,
    MAX_TEXT_BYTES,
    TextChunk,
    chunk_text,
    findings_from_response,
)

__all__ = [
    "COMPREHEND_TO_FINDING_TYPE",
    "MAX_TEXT_BYTES",
    "ComprehendClient",
    "ComprehendPiiDetector",
    "TextChunk",
    "chunk_text",
    "default_comprehend_client",
    "findings_from_response",
]
