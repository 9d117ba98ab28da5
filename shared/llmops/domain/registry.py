"""The versioned-label registry: immutable numbered versions and movable labels (pure, no I/O).

Prompts and guard policies are kept the same way. A registry keeps versions of *subjects*: a
prompt's scoped id (`team-a/support`, or `support` when shared), a guard policy's name. Each push
of new content becomes the subject's next version (1, 2, ...) and is never changed again; pushing
content equal to the latest version's is a no-op, so re-running a push (e.g. in CI) mints nothing.
A label (`production`, `staging`, ...) points at one version and remembers where it pointed
before, so `rollback` can step back. The gateway serves what a label points at, so moving a label
is a release and rolling it back is the undo.

This module holds that model and its rules, generic over the kind of document versioned; what a
version holds and how it is validated belong to each kind (`llmops.domain.prompts`,
`llmops.domain.guard_policy_registry`), how it is stored to the adapters
(`llmops.adapters.dynamodb.registry_store`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeGuard, TypeVar

from llmops.domain.errors import GatewayError
from llmops.domain.guard import safe_regex

__all__ = [
    "DEFAULT_LABEL",
    "MAX_LABEL_HISTORY",
    "LabelState",
    "PushResult",
    "RegistryDraft",
    "RegistryKind",
    "RegistryNotFoundError",
    "RegistrySource",
    "RegistryVersion",
    "Selector",
    "SubjectSummary",
    "is_valid_label",
    "is_valid_name",
    "move_label",
    "next_version",
    "parse_selector",
    "unified_diff",
    "validate_label",
    "validate_name",
]

DEFAULT_LABEL = "production"  # what the gateway serves, and what a reference without version or label means
MAX_LABEL_HISTORY = 50  # the earlier versions a label remembers

# Names are table keys: prompt ids and guard policy names alike.
_NAME_RE = safe_regex.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Labels never look like a number, so a selector (`diff ID A B`) can tell a version from a label.
_LABEL_RE = safe_regex.compile(r"^[A-Za-z_][A-Za-z0-9._-]{0,31}$")


def is_valid_name(name: object) -> TypeGuard[str]:
    """1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."""
    return isinstance(name, str) and _NAME_RE.match(name) is not None


def validate_name(name: str, what: str) -> str:
    """`name` if it is a valid name; else ValueError saying which `what` ("prompt id", ...) is not."""
    if not is_valid_name(name):
        raise ValueError(f"invalid {what} {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return name


def is_valid_label(label: object) -> TypeGuard[str]:
    return isinstance(label, str) and _LABEL_RE.match(label) is not None


def validate_label(label: str) -> str:
    if not is_valid_label(label):
        raise ValueError(
            f"invalid label {label!r}: 1-32 letters, digits, '.', '_' or '-', starting with a letter or '_'"
        )
    return label


Selector = int | str  # a version number or a label name


def parse_selector(text: str) -> Selector:
    """A version number (digits) or a label name; raises ValueError for a malformed label."""
    return int(text) if text.isdigit() else validate_label(text)


class RegistryNotFoundError(GatewayError):
    """A version or label that does not exist (each kind of registry has its own subclass)."""

    status = 404
    error_type = "invalid_request_error"
    code = "not_found"


@dataclass(frozen=True, slots=True)
class RegistryKind:
    """What sets one kind of registry apart from another, as far as the mechanism cares."""

    noun: str  # "prompt", "guard policy": how messages name a subject of this kind
    validate_subject: Callable[[str], str]  # raises ValueError naming what is wrong
    not_found: type[RegistryNotFoundError]
    param: str | None = None  # the request parameter a not-found error names, where there is one

    def missing(self, message: str) -> RegistryNotFoundError:
        return self.not_found(message, param=self.param)


class RegistryVersion(Protocol):
    """An immutable, numbered version of a subject's content."""

    @property
    def subject(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def ref(self) -> str:
        """`<subject>@<version>`: how people, headers and audit records name the version."""
        ...

    @property
    def author(self) -> str: ...

    @property
    def change_note(self) -> str: ...

    @property
    def created_at(self) -> float: ...

    @property
    def fingerprint(self) -> str:
        """A hash of the content: two versions with equal fingerprints are the same content
        (authorship, notes and dates do not count)."""
        ...


V = TypeVar("V", bound=RegistryVersion)
V_co = TypeVar("V_co", bound=RegistryVersion, covariant=True)


class RegistryDraft(Protocol[V_co]):
    """A version's content before the registry numbers it."""

    @property
    def subject(self) -> str: ...

    @property
    def fingerprint(self) -> str: ...

    def problems(self) -> list[str]:
        """Everything wrong with the draft (empty: it may be pushed)."""
        ...

    def to_version(self, version: int, created_at: float) -> V_co: ...


class RegistrySource(Protocol[V_co]):
    """Reads a registry by subject; the DynamoDB store implements it, the gateway caches it."""

    def get_version(self, subject: str, version: int, /) -> V_co | None: ...

    def get_label(self, subject: str, label: str, /) -> LabelState | None: ...


@dataclass(frozen=True, slots=True)
class LabelState:
    """A label of `subject` and where it pointed before (oldest first), so `rollback` can step back."""

    subject: str
    label: str
    version: int
    history: tuple[int, ...] = ()
    updated_at: float = 0.0
    updated_by: str = ""

    def rolled_back(self, now: float, actor: str = "") -> LabelState:
        """The label moved back to the version it pointed at before its last move."""
        if not self.history:
            raise ValueError(f"label {self.label!r} of {self.subject} has no earlier version to roll back to")
        return LabelState(self.subject, self.label, self.history[-1], self.history[:-1], now, actor)


def move_label(
    current: LabelState | None, subject: str, label: str, version: int, now: float, actor: str = ""
) -> LabelState | None:
    """`label` pointed at `version`, remembering where it pointed; None when it already does (a
    no-op keeps the history clean)."""
    if current is not None and current.version == version:
        return None
    history = (*current.history, current.version) if current else ()
    return LabelState(subject, label, version, history[-MAX_LABEL_HISTORY:], now, actor)


@dataclass(frozen=True, slots=True)
class PushResult(Generic[V]):
    version: V
    created: bool  # False: the latest version already had this content, nothing was written


def next_version(draft: RegistryDraft[V], latest: V | None, now: float) -> V | None:
    """The version pushing `draft` creates after `latest`; None when `latest` has its content."""
    if latest is not None and latest.fingerprint == draft.fingerprint:
        return None
    return draft.to_version((latest.version if latest else 0) + 1, now)


@dataclass(frozen=True, slots=True)
class SubjectSummary:
    """A subject as a listing shows it: its latest version and where its labels point."""

    subject: str
    latest_version: int = 0
    latest_created_at: float = 0.0
    labels: dict[str, int] = field(default_factory=dict)


def unified_diff(a: Sequence[str], b: Sequence[str], a_ref: str, b_ref: str) -> str:
    """A unified diff of two versions rendered as lines (empty when they are the same)."""
    return "".join(
        difflib.unified_diff([f"{line}\n" for line in a], [f"{line}\n" for line in b], fromfile=a_ref, tofile=b_ref)
    )
