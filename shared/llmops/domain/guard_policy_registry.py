"""Versioned guard policies: the registry's content model (pure, no I/O).

A guard policy version is an immutable `GuardPolicy.from_mapping` document under a policy name;
labels (`production`, ...) point at versions exactly as prompt labels do (`LabelState`, with the
policy name in `prompt_id`), so the same label store, the same `label set` / `rollback` semantics
and the same canary release-bundle states serve both.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmops.domain.guard import GuardPolicy
from llmops.domain.guard.policy import GATEWAY_DETECTORS
from llmops.domain.prompts import LabelState, validate_prompt_id

__all__ = [
    "PRODUCTION_LABEL",
    "GuardPolicyDraft",
    "GuardPolicySource",
    "GuardPolicyVersion",
    "validate_policy_name",
]

# The label the gateway serves; other labels (staging, ...) are for people and canaries.
PRODUCTION_LABEL = "production"


def validate_policy_name(name: str) -> str:
    """Policy names follow prompt ids (`[A-Za-z0-9][A-Za-z0-9._-]{0,63}`): both are table keys."""
    try:
        return validate_prompt_id(name)
    except ValueError:
        raise ValueError(f"invalid guard policy name {name!r}: use letters, digits, '.', '_' or '-'") from None


def _canonical(document: Mapping[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class GuardPolicyDraft:
    """A policy version's content before the registry numbers it."""

    name: str
    document: Mapping[str, Any]
    author: str = ""
    change_note: str = ""

    def problems(self) -> list[str]:
        found: list[str] = []
        try:
            validate_policy_name(self.name)
        except ValueError as exc:
            found.append(str(exc))
        try:
            # Refuses detectors the gateway cannot run yet, so a push never stores a policy that would
            # serve without one of its detectors.
            GuardPolicy.from_mapping(self.document, runnable_detectors=GATEWAY_DETECTORS)
        except ValueError as exc:  # PolicyError lists every problem
            found.append(str(exc))
        return found

    @property
    def fingerprint(self) -> str:
        """What makes two versions the same policy: authorship and notes do not."""
        return hashlib.sha256(_canonical({"name": self.name, "policy": self.document}).encode()).hexdigest()

    def to_version(self, version: int, created_at: float) -> GuardPolicyVersion:
        return GuardPolicyVersion(
            name=self.name,
            version=version,
            document=self.document,
            author=self.author,
            change_note=self.change_note,
            created_at=created_at,
        )


@dataclass(frozen=True, slots=True)
class GuardPolicyVersion:
    name: str
    version: int
    document: Mapping[str, Any] = field(default_factory=dict)
    author: str = ""
    change_note: str = ""
    created_at: float = 0.0

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def fingerprint(self) -> str:
        return GuardPolicyDraft(self.name, self.document).fingerprint

    def policy(self) -> GuardPolicy:
        """The policy this version describes (validated when pushed, so this does not raise).

        Not checked against `GATEWAY_DETECTORS` again: a version stored before that check keeps
        serving as it did, without the detector it names, rather than failing every request."""
        return GuardPolicy.from_mapping(self.document)

    def document_json(self) -> str:
        return _canonical(self.document)


class GuardPolicySource(Protocol):
    """Reads the guard policy registry; the DynamoDB store implements it, the gateway caches it."""

    def get_version(self, name: str, version: int) -> GuardPolicyVersion | None: ...

    def get_label(self, name: str, label: str) -> LabelState | None: ...
