"""What a detector reports and what the engine decides about it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

__all__ = [
    "CATEGORY_TYPES",
    "ENTITY_TYPES",
    "NON_ENTITY_TYPES",
    "PII_TYPES",
    "SECRET_TYPES",
    "Action",
    "BlockedBy",
    "Decision",
    "Detector",
    "Direction",
    "Finding",
    "FindingType",
    "is_entity",
]


class Action(StrEnum):
    """What to do with a finding, from least to most severe."""

    ALLOW = "allow"  # ignore it entirely: not reported, text untouched
    LOG_ONLY = "log_only"  # report it (metrics), text untouched, request allowed
    REDACT = "redact"  # replace the span with a numbered placeholder such as [EMAIL_1]
    PSEUDONYMIZE = "pseudonymize"  # like redact, but the response gets the original value back
    BLOCK = "block"  # refuse the request or the completion

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {
    Action.ALLOW: 0,
    Action.LOG_ONLY: 1,
    Action.REDACT: 2,
    Action.PSEUDONYMIZE: 3,
    Action.BLOCK: 4,
}


class Direction(StrEnum):
    INPUT = "input"
    OUTPUT = "output"


class FindingType(StrEnum):
    """The built-in finding types. Pluggable detectors may report others (e.g. PERSON)."""

    # PII
    EMAIL = "EMAIL"
    PHONE_NUMBER = "PHONE_NUMBER"
    CREDIT_CARD = "CREDIT_CARD"
    US_SSN = "US_SSN"
    IBAN_CODE = "IBAN_CODE"
    IP_ADDRESS = "IP_ADDRESS"
    MAC_ADDRESS = "MAC_ADDRESS"
    US_PASSPORT = "US_PASSPORT"
    US_DRIVER_LICENSE = "US_DRIVER_LICENSE"
    UK_NINO = "UK_NINO"
    UK_NHS = "UK_NHS"
    DATE_OF_BIRTH = "DATE_OF_BIRTH"
    # secrets
    AWS_ACCESS_KEY = "AWS_ACCESS_KEY"
    AWS_SECRET_KEY = "AWS_SECRET_KEY"  # noqa: S105 - a type name, not a secret
    PRIVATE_KEY = "PRIVATE_KEY"
    JWT = "JWT"
    GITHUB_TOKEN = "GITHUB_TOKEN"  # noqa: S105 - a type name, not a secret
    SLACK_TOKEN = "SLACK_TOKEN"  # noqa: S105 - a type name, not a secret
    API_KEY = "API_KEY"
    GENERIC_SECRET = "GENERIC_SECRET"  # noqa: S105 - a type name, not a secret
    # everything that is about the text as a whole rather than a value inside it
    PROMPT_INJECTION = "PROMPT_INJECTION"
    DENIED_WORD = "DENIED_WORD"
    DENIED_TOPIC = "DENIED_TOPIC"
    SYSTEM_PROMPT_LEAK = "SYSTEM_PROMPT_LEAK"
    GROUNDING = "GROUNDING"
    RELEVANCE = "RELEVANCE"
    INPUT_TOO_LARGE = "INPUT_TOO_LARGE"
    OUTPUT_TOO_LARGE = "OUTPUT_TOO_LARGE"  # a completion over the policy's max_output_chars
    GUARD_BUDGET_EXCEEDED = "GUARD_BUDGET_EXCEEDED"  # the guard spent its time budget: always a block
    # a service detector (Bedrock Guardrails, Comprehend) could not check the text: its fail mode decides
    DETECTOR_UNAVAILABLE = "DETECTOR_UNAVAILABLE"
    # the learned layer (llmops.domain.guard.learned): one type per category, about the whole text
    PROMPT_ATTACK = "PROMPT_ATTACK"  # jailbreak, injection, instruction extraction, adversarial suffix
    VIOLENCE_WEAPONS = "VIOLENCE_WEAPONS"
    SELF_HARM = "SELF_HARM"
    SEXUAL = "SEXUAL"
    SEXUAL_MINORS = "SEXUAL_MINORS"  # always blocked, whatever the policy says
    HATE_HARASSMENT = "HATE_HARASSMENT"
    CRIMINAL_INSTRUCTIONS = "CRIMINAL_INSTRUCTIONS"


PII_TYPES: frozenset[str] = frozenset(
    {
        FindingType.EMAIL,
        FindingType.PHONE_NUMBER,
        FindingType.CREDIT_CARD,
        FindingType.US_SSN,
        FindingType.IBAN_CODE,
        FindingType.IP_ADDRESS,
        FindingType.MAC_ADDRESS,
        FindingType.US_PASSPORT,
        FindingType.US_DRIVER_LICENSE,
        FindingType.UK_NINO,
        FindingType.UK_NHS,
        FindingType.DATE_OF_BIRTH,
    }
)
SECRET_TYPES: frozenset[str] = frozenset(
    {
        FindingType.AWS_ACCESS_KEY,
        FindingType.AWS_SECRET_KEY,
        FindingType.PRIVATE_KEY,
        FindingType.JWT,
        FindingType.GITHUB_TOKEN,
        FindingType.SLACK_TOKEN,
        FindingType.API_KEY,
        FindingType.GENERIC_SECRET,
    }
)
# The learned layer's categories (its `scores` keys) and the finding type each reports.
CATEGORY_TYPES: dict[str, str] = {
    "prompt_attack": FindingType.PROMPT_ATTACK,
    "violence_weapons": FindingType.VIOLENCE_WEAPONS,
    "self_harm": FindingType.SELF_HARM,
    "sexual": FindingType.SEXUAL,
    "sexual_minors": FindingType.SEXUAL_MINORS,
    "hate_harassment": FindingType.HATE_HARASSMENT,
    "criminal_instructions": FindingType.CRIMINAL_INSTRUCTIONS,
}
ENTITY_TYPES: frozenset[str] = PII_TYPES | SECRET_TYPES
# Findings about the text rather than a value in it: they never compete in overlap resolution and
# a `block` on them does not mask their span.
NON_ENTITY_TYPES: frozenset[str] = frozenset(
    {
        FindingType.PROMPT_INJECTION,
        FindingType.DENIED_WORD,
        FindingType.DENIED_TOPIC,
        FindingType.SYSTEM_PROMPT_LEAK,
        FindingType.GROUNDING,
        FindingType.RELEVANCE,
        FindingType.INPUT_TOO_LARGE,
        FindingType.OUTPUT_TOO_LARGE,
        FindingType.GUARD_BUDGET_EXCEEDED,
        FindingType.DETECTOR_UNAVAILABLE,
        *CATEGORY_TYPES.values(),
    }
)


def is_entity(finding_type: str) -> bool:
    """True for values inside the text (PII, secrets, and unknown types from pluggable detectors)."""
    return finding_type not in NON_ENTITY_TYPES


@dataclass(frozen=True, slots=True)
class Finding:
    """One hit. `start`/`end` are character offsets into the text the caller gave to the scan.

    `score` is the detector's confidence in [0, 1] that the finding is real.
    """

    type: str
    start: int
    end: int
    score: float
    detector: str

    def to_dict(self) -> dict[str, object]:
        return {
            "type": self.type,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 4),
            "detector": self.detector,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """A finding and the action the policy assigned to it (for metrics: counts by type/action)."""

    finding: Finding
    action: Action


@dataclass(frozen=True, slots=True)
class BlockedBy:
    """Which guard refused the content. Safe to return to callers: it never holds the matched text."""

    type: str
    detector: str
    direction: Direction

    @property
    def message(self) -> str:
        where = "request" if self.direction is Direction.INPUT else "completion"
        return f"The {where} was blocked by the {self.type} guardrail (detector '{self.detector}')."


class Detector(Protocol):
    """Anything that finds spans in (normalized) text. Offsets are into the text it was given."""

    @property
    def name(self) -> str: ...

    def detect(self, text: str) -> Iterable[Finding]: ...
