"""Versioned guard policies: the registry's content model (pure, no I/O).

A guard policy version is an immutable `GuardPolicy.from_mapping` document under a policy name,
kept by the versioned-label registry prompts use too (`llmops.domain.registry`): the policy name
is the registry subject, and labels (`production`, ...) point at versions exactly as prompt labels
do, so the same store, the same `label set` / `rollback` semantics and the same canary
release-bundle states serve both.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmops.domain.guard import GuardPolicy
from llmops.domain.guard.policy import GATEWAY_DETECTORS
from llmops.domain.registry import (
    DEFAULT_LABEL,
    RegistryKind,
    RegistryNotFoundError,
    RegistrySource,
    unified_diff,
    validate_name,
)

__all__ = [
    "GUARD_POLICIES",
    "PRODUCTION_LABEL",
    "GuardPolicyDraft",
    "GuardPolicyNotFoundError",
    "GuardPolicySource",
    "GuardPolicyVersion",
    "diff",
    "validate_policy_name",
]

# The label the gateway serves; other labels (staging, ...) are for people and canaries.
PRODUCTION_LABEL = DEFAULT_LABEL


def validate_policy_name(name: str) -> str:
    """Policy names follow prompt ids (`[A-Za-z0-9][A-Za-z0-9._-]{0,63}`): both are table keys."""
    return validate_name(name, "guard policy name")


class GuardPolicyNotFoundError(RegistryNotFoundError):
    code = "guard_policy_not_found"


GUARD_POLICIES = RegistryKind("guard policy", validate_policy_name, GuardPolicyNotFoundError)


def _canonical(document: Mapping[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class GuardPolicyDraft:
    """A policy version's content before the registry numbers it."""

    name: str
    document: Mapping[str, Any]
    author: str = ""
    change_note: str = ""

    @property
    def subject(self) -> str:
        return self.name

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
        return GuardPolicyVersion(self.name, version, self.document, self.author, self.change_note, created_at)


@dataclass(frozen=True, slots=True)
class GuardPolicyVersion:
    name: str
    version: int
    document: Mapping[str, Any] = field(default_factory=dict)
    author: str = ""
    change_note: str = ""
    created_at: float = 0.0

    @property
    def subject(self) -> str:
        return self.name

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


class GuardPolicySource(RegistrySource[GuardPolicyVersion], Protocol):
    """Reads the guard policy registry by name; the DynamoDB store implements it, the gateway caches it."""


def diff(a: GuardPolicyVersion, b: GuardPolicyVersion) -> str:
    """A unified diff of two versions' policy documents (empty when they are the same)."""

    def lines(version: GuardPolicyVersion) -> list[str]:
        return json.dumps(version.document, indent=2, sort_keys=True, ensure_ascii=False).splitlines()

    return unified_diff(lines(a), lines(b), a.ref, b.ref)
