"""PII evaluation data: presidio-evaluator's generated sentences with gold spans, in our entity names."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "EVALUATED_ENTITIES",
    "PRESIDIO_TO_OURS",
    "PiiSample",
    "Span",
    "kilobyte_documents",
    "load_samples",
    "parse_spans",
]

# Presidio's entity names -> ours (FindingType; docs/architecture.md lists them). Names not listed are kept as they are.
PRESIDIO_TO_OURS: Mapping[str, str] = {
    "EMAIL_ADDRESS": "EMAIL",
}

# The pattern entities both tools claim; precision/recall/F1 are reported for each. DATE_OF_BIRTH
# is left out: the generator labels every date DATE_TIME, which is not the same claim.
EVALUATED_ENTITIES: tuple[str, ...] = (
    "EMAIL",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "US_SSN",
    "IBAN_CODE",
    "IP_ADDRESS",
    "MAC_ADDRESS",
    "US_PASSPORT",
    "US_DRIVER_LICENSE",
    "UK_NINO",
    "UK_NHS",
)


@dataclass(frozen=True, slots=True, order=True)
class Span:
    start: int
    end: int
    type: str

    @property
    def length(self) -> int:
        return max(0, self.end - self.start)


@dataclass(frozen=True, slots=True)
class PiiSample:
    text: str
    spans: tuple[Span, ...]  # gold, every entity type the generator labelled (PERSON, GPE, ...)
    template_id: int | None = None


def ours(entity_type: str) -> str:
    return PRESIDIO_TO_OURS.get(entity_type, entity_type)


def parse_spans(items: Iterable[Mapping[str, Any]]) -> tuple[Span, ...]:
    return tuple(sorted(Span(int(i["start"]), int(i["end"]), ours(str(i["type"]))) for i in items))


def load_samples(path: Path) -> list[PiiSample]:
    """The worker's `generate` output."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    return [
        PiiSample(
            text=str(item["text"]),
            spans=parse_spans(item["spans"]),
            template_id=item.get("template_id"),
        )
        for item in doc["samples"]
    ]


def kilobyte_documents(texts: Sequence[str], count: int, size_bytes: int = 1024) -> list[str]:
    """`count` documents of exactly `size_bytes` UTF-8 bytes (a cut character is dropped), each made by
    joining consecutive sample texts with a space, cycling through `texts`."""
    if not texts:
        return []
    documents: list[str] = []
    cursor = 0
    for _ in range(count):
        parts: list[str] = []
        size = 0
        while size < size_bytes:
            piece = texts[cursor % len(texts)]
            cursor += 1
            parts.append(piece)
            size += len(piece.encode("utf-8")) + 1
        encoded = " ".join(parts).encode("utf-8")[:size_bytes]
        documents.append(encoded.decode("utf-8", errors="ignore"))
    return documents
