"""Overlap resolution, numbered placeholders and the per-request pseudonym vault."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NoReturn

from llmops.domain.guard import safe_regex
from llmops.domain.guard.findings import Finding

__all__ = ["PlaceholderAllocator", "PseudonymVault", "apply_replacements", "resolve_overlaps"]

PLACEHOLDER = safe_regex.compile(r"\[([A-Z][A-Z0-9_]*?)_(\d+)\]")
# What models actually echo back: [EMAIL_1], [ EMAIL_1 ], [email_1], [EMAIL 1], [EMAIL1] and bare EMAIL_1.
# Python's re took O(n^2) on "[a" + "1" * n (the lazy type name and the digits overlap): 90 s at 100 KB,
# in the input guard (reserve_literals) and the output guard (restore). RE2 runs both forms in linear
# time; the bare form's look-around is emulated, so the two are searched separately and the earlier
# match wins (the bracketed one on a tie), as the alternation "bracketed|bare" did.
_ECHOED_BRACKETED = safe_regex.compile(r"\[\s*([A-Za-z][A-Za-z0-9_]*?)[ _]?(\d+)\s*\]")
_ECHOED_BARE = safe_regex.compile(
    r"([A-Z][A-Z0-9_]*?)_(\d+)", not_preceded_by=r"\pL\pN_\[", not_followed_by=r"\pL\pN_\]"
)


def _echoed(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, "[TYPE_N]") of every placeholder spelling in `text`, left to right, not overlapping."""
    size = len(text)
    position = 0
    bracketed = _ECHOED_BRACKETED.search(text) if "[" in text else None
    bare = _ECHOED_BARE.search(text) if "_" in text else None
    while bracketed is not None or bare is not None:
        if bracketed is not None and (bare is None or bracketed.start() <= bare.start()):
            start, end = bracketed.span()
            yield start, end, f"[{bracketed.group(1).upper()}_{bracketed.group(2)}]"
        else:
            assert bare is not None
            start, end = bare.span()
            yield start, end, f"[{bare.group(1)}_{bare.group(2)}]"
        position = end if end > start else start + 1
        if position > size:
            return
        if bracketed is not None and bracketed.start() < position:
            bracketed = _ECHOED_BRACKETED.search(text, position)
        if bare is not None and bare.start() < position:
            bare = _ECHOED_BARE.search(text, position)


def _priority(finding: Finding) -> tuple[float, int, int, str, str]:
    return (-finding.score, -(finding.end - finding.start), finding.start, finding.type, finding.detector)


def resolve_overlaps(findings: Iterable[Finding]) -> list[Finding]:
    """Keep a non-overlapping subset: higher score, then longer span, then earlier start, then type name.

    Returned in text order. Runs in O(n log n) so a megabyte of e-mail addresses stays cheap.
    """
    starts: list[int] = []
    kept: list[Finding] = []
    for finding in sorted(findings, key=_priority):
        if finding.end <= finding.start:
            continue
        index = bisect.bisect_right(starts, finding.start)
        if index > 0 and kept[index - 1].end > finding.start:
            continue
        if index < len(kept) and kept[index].start < finding.end:
            continue
        starts.insert(index, finding.start)
        kept.insert(index, finding)
    return kept


def apply_replacements(text: str, replacements: Sequence[tuple[int, int, str]]) -> str:
    """`replacements` are non-overlapping (start, end, new text), sorted by start."""
    if not replacements:
        return text
    parts: list[str] = []
    position = 0
    for start, end, new in replacements:
        parts.append(text[position:start])
        parts.append(new)
        position = end
    parts.append(text[position:])
    return "".join(parts)


class PlaceholderAllocator:
    """Numbers placeholders per type in order of appearance; the same value keeps its placeholder.

    Placeholder strings that already occur literally in the request are skipped, so restoring
    pseudonyms can never rewrite text the user typed.
    """

    __slots__ = ("_by_value", "_counters", "_reserved")

    def __init__(self) -> None:
        self._counters: dict[str, int] = {}
        self._by_value: dict[tuple[str, str], str] = {}
        self._reserved: set[str] = set()

    def reserve_literals(self, text: str, tick: Callable[[], None] | None = None) -> None:
        """Skip every placeholder the restore step would recognise in `text` (bracketed or bare).
        `tick` (the guard budget's) is called per placeholder seen."""
        if "_" in text or "[" in text:
            for _, _, canonical in _echoed(text):
                if tick is not None:
                    tick()
                self._reserved.add(canonical)

    def placeholder(self, finding_type: str, value: str) -> str:
        key = (finding_type, value)
        existing = self._by_value.get(key)
        if existing is not None:
            return existing
        number = self._counters.get(finding_type, 0)
        while True:
            number += 1
            token = f"[{finding_type}_{number}]"
            if token not in self._reserved:
                break
        self._counters[finding_type] = number
        self._by_value[key] = token
        return token

    def fork(self, also_reserved: Iterable[str] = ()) -> PlaceholderAllocator:
        """Continue the numbering without the value memory (for a later stage of the same request)."""
        child = PlaceholderAllocator()
        child._counters = dict(self._counters)
        child._reserved = set(self._reserved) | set(self._by_value.values()) | set(also_reserved)
        return child

    def __repr__(self) -> str:
        return f"PlaceholderAllocator(<{len(self._by_value)} values hidden>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("PlaceholderAllocator holds request PII and cannot be serialized")


class PseudonymVault:
    """placeholder -> original value, for one request, in memory only.

    It refuses to be pickled or copied and its repr shows no values, so it cannot end up in a log
    line, a cache or an audit record by accident. Drop it when the response is sent.
    """

    __slots__ = ("_allocator", "_originals")

    def __init__(self) -> None:
        self._originals: dict[str, str] = {}
        self._allocator = PlaceholderAllocator()

    @property
    def allocator(self) -> PlaceholderAllocator:
        return self._allocator

    def remember(self, placeholder: str, original: str) -> None:
        self._originals.setdefault(placeholder, original)

    def placeholders(self) -> frozenset[str]:
        return frozenset(self._originals)

    def __len__(self) -> int:
        return len(self._originals)

    def __bool__(self) -> bool:
        return True

    def __contains__(self, placeholder: object) -> bool:
        return placeholder in self._originals

    def restore(self, text: str) -> str:
        """Put original values back wherever the model echoed one of this vault's placeholders."""
        if not self._originals:
            return text
        originals = self._originals
        pieces: list[str] = []
        position = 0
        for start, end, canonical in _echoed(text):
            original = originals.get(canonical)
            if original is not None:
                pieces.append(text[position:start])
                pieces.append(original)
                position = end
        if not pieces:
            return text
        pieces.append(text[position:])
        return "".join(pieces)

    def __repr__(self) -> str:
        return f"PseudonymVault(<{len(self._originals)} pseudonyms hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("PseudonymVault holds request PII and cannot be serialized")

    def __copy__(self) -> NoReturn:
        raise TypeError("PseudonymVault cannot be copied")

    def __deepcopy__(self, memo: object) -> NoReturn:
        raise TypeError("PseudonymVault cannot be copied")
