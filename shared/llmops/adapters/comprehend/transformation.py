"""Amazon Comprehend DetectPiiEntities: request chunking and response mapping, with no network.

Comprehend takes at most 100 KB of UTF-8 per call and answers character (code point) offsets into
the text it was sent, which is what Python string indices are; chunk offsets are added back so
every finding points into the caller's whole text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from llmops.domain.guard import Finding
from llmops.domain.guard.normalization import without_lone_surrogates

__all__ = [
    "COMPREHEND_TO_FINDING_TYPE",
    "DETECTOR_NAME",
    "MAX_TEXT_BYTES",
    "TextChunk",
    "chunk_text",
    "finding_type",
    "findings_from_response",
    "to_request",
]

DETECTOR_NAME: Final = "comprehend"
MAX_TEXT_BYTES: Final = 100_000  # DetectPiiEntities' limit on Text, in UTF-8 bytes

# Comprehend's PiiEntityType -> our finding types (FindingType names where one exists, Presidio's
# names otherwise). Types not listed pass through unchanged.
COMPREHEND_TO_FINDING_TYPE: Mapping[str, str] = {
    "EMAIL": "EMAIL",
    "PHONE": "PHONE_NUMBER",
    "NAME": "PERSON",
    "ADDRESS": "ADDRESS",
    "SSN": "US_SSN",
    "CREDIT_DEBIT_NUMBER": "CREDIT_CARD",
    "CREDIT_DEBIT_CVV": "CREDIT_CARD_CVV",
    "CREDIT_DEBIT_EXPIRY": "CREDIT_CARD_EXPIRY",
    "IP_ADDRESS": "IP_ADDRESS",
    "MAC_ADDRESS": "MAC_ADDRESS",
    "PASSPORT_NUMBER": "US_PASSPORT",
    "DRIVER_ID": "US_DRIVER_LICENSE",
    "INTERNATIONAL_BANK_ACCOUNT_NUMBER": "IBAN_CODE",
    "UK_NATIONAL_INSURANCE_NUMBER": "UK_NINO",
    "UK_NATIONAL_HEALTH_SERVICE_NUMBER": "UK_NHS",
    "AWS_ACCESS_KEY": "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY": "AWS_SECRET_KEY",
    "PASSWORD": "GENERIC_SECRET",
    "BANK_ACCOUNT_NUMBER": "US_BANK_NUMBER",
    "BANK_ROUTING": "ABA_ROUTING_NUMBER",
    "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER": "US_ITIN",
    "DATE_TIME": "DATE_TIME",
}


def finding_type(comprehend_type: str) -> str:
    return COMPREHEND_TO_FINDING_TYPE.get(comprehend_type, comprehend_type)


@dataclass(frozen=True, slots=True)
class TextChunk:
    offset: int  # character offset of `text` in the whole text
    text: str


def _cut(window: str, minimum: int) -> int:
    """Where to end a full window: after the last line break, else the last space or tab, in its
    second half, so an entity is rarely split across two calls; a hard cut when there is neither."""
    for separator in ("\n", " ", "\t"):
        index = window.rfind(separator, minimum)
        if index >= 0:
            return index + 1
    return len(window)


def chunk_text(text: str, max_bytes: int = MAX_TEXT_BYTES) -> list[TextChunk]:
    """Consecutive chunks of at most `max_bytes` UTF-8 bytes that together cover `text` exactly.

    Whitespace-only chunks are dropped (nothing to detect, and Comprehend rejects blank text).
    Lone surrogates, which cannot be encoded, are sent as U+FFFD: one character for one, so offsets
    are unchanged.
    """
    if max_bytes < 4:
        raise ValueError("max_bytes must fit at least one UTF-8 character")
    clean = without_lone_surrogates(text)
    chunks: list[TextChunk] = []
    start = 0
    while start < len(clean):
        # At most max_bytes characters is at least max_bytes bytes; trimming the encoded form to the
        # budget and dropping a cut character gives the longest prefix that fits.
        candidate = clean[start : start + max_bytes]
        window = candidate.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")
        end = start + len(window)
        if end < len(clean):
            end = start + _cut(window, len(window) // 2)
        piece = clean[start:end]
        if piece.strip():
            chunks.append(TextChunk(start, piece))
        start = end
    return chunks


def to_request(chunk: TextChunk, language: str) -> dict[str, str]:
    return {"Text": chunk.text, "LanguageCode": language}


def findings_from_response(
    response: Mapping[str, Any],
    *,
    offset: int = 0,
    min_score: float = 0.0,
    text_length: int | None = None,
    entity_types: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Findings from one DetectPiiEntities response for a chunk that starts at `offset`.

    Entities below `min_score`, without offsets, or with offsets outside the chunk are dropped.
    `entity_types` (Comprehend type -> finding type, a policy's choice) keeps only those types,
    under those names; without it every type is kept, named by `COMPREHEND_TO_FINDING_TYPE`.
    """
    findings: list[Finding] = []
    entities: Iterable[Mapping[str, Any]] = response.get("Entities") or ()
    for entity in entities:
        begin, end = entity.get("BeginOffset"), entity.get("EndOffset")
        score = float(entity.get("Score") or 0.0)
        kind = entity.get("Type")
        if not isinstance(begin, int) or not isinstance(end, int) or not isinstance(kind, str):
            continue
        if score < min_score or begin < 0 or end <= begin:
            continue
        if text_length is not None and end > text_length:
            continue
        if entity_types:
            if kind not in entity_types:
                continue
            name = entity_types[kind]
        else:
            name = finding_type(kind)
        findings.append(Finding(name, offset + begin, offset + end, min(score, 1.0), DETECTOR_NAME))
    return findings
