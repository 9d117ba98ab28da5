"""One text, analysed once for all detectors: lower-cased copy, word set, digit clusters.

Python's ``re`` pays ~15-20 ns per character for every pattern that cannot start with a literal, so
scanning 1 KB with twenty patterns would blow the latency budget on its own. Detectors therefore
gate each pattern on this view (a word is present, a digit cluster has the right size) and run the
pattern only on the small windows where it can match. ``str.translate``, ``str.split`` and
single-character ``in`` tests run at C speed.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from typing import NamedTuple

from llmops.domain.guard import safe_regex
from llmops.domain.guard.budget import UNLIMITED, GuardBudget

__all__ = ["DigitCluster", "TextView", "byte_table", "find_all", "word_start"]


def byte_table(default: str, **classes: str) -> bytes:
    """A 256-entry bytes.translate table: each byte of `classes` values -> its key, others -> default."""
    table = bytearray(default.encode("ascii") * 256)
    for replacement, members in classes.items():
        for char in members:
            table[ord(char)] = ord(replacement)
    return bytes(table)


_PUNCTUATION_TO_SPACE = bytes(ord(" ") if chr(b) in string.punctuation else b for b in range(256))
# digits -> "0", the separators numbers are written with -> ".", everything else -> " "
_DIGIT_SHAPE = byte_table(" ", **{"0": string.digits, ".": " -()/:+.\t"})
# digit runs joined by up to three separators: "(415) 555" has ") " between its runs
_CLUSTER = safe_regex.compile_backtracking(
    rb"0(?:\.{0,3}0)*",
    needs="throughput: one match per digit cluster (~0.1 us each in re, ~1 us through RE2's binding);"
    " on shape bytes, literal-led, and every match that starts succeeds",
)


class DigitCluster(NamedTuple):
    """Digit runs joined by short separator runs: one candidate number such as "(415) 555-2671"."""

    start: int  # first digit
    end: int  # after the last digit
    digits: int  # how many digits


def find_all(haystack: str, needle: str, start: int = 0, end: int | None = None) -> Iterator[int]:
    stop = len(haystack) if end is None else end
    index = haystack.find(needle, start, stop)
    while index != -1:
        yield index
        index = haystack.find(needle, index + 1, stop)


def word_start(text: str, index: int) -> bool:
    """True if `index` is not preceded by a letter or digit."""
    return index == 0 or not text[index - 1].isalnum()


class TextView:
    """Lazily computed facts about one (folded) text. Cheap to create; each fact costs once."""

    __slots__ = ("_ascii", "_clusters", "_has_digit", "_lowered", "_words", "budget", "text")

    def __init__(self, text: str, budget: GuardBudget = UNLIMITED) -> None:
        self.text = text
        # the request's guard budget: detectors tick() it in their per-candidate loops
        self.budget = budget
        self._ascii: bytes | None = None
        self._lowered: str | None = None
        self._words: frozenset[str] | None = None
        self._clusters: tuple[DigitCluster, ...] | None = None
        self._has_digit: bool | None = None

    @property
    def lowered(self) -> str:
        """Lower-cased, same length as `text` (the few characters that lower to two are kept)."""
        if self._lowered is None:
            lowered = self.text.lower()
            if len(lowered) != len(self.text):
                lowered = "".join(c if len(c.lower()) != 1 else c.lower() for c in self.text)
            self._lowered = lowered
        return self._lowered

    @property
    def ascii_lowered(self) -> bytes:
        """One byte per character (non-ASCII -> '?'), lower-cased: offsets match `text`.

        ``bytes.translate`` with a 256-byte table is several times faster than ``str.translate``
        on text that is not pure ASCII, so the shape tests below work on this.
        """
        if self._ascii is None:
            self._ascii = self.text.encode("ascii", "replace").lower()
        return self._ascii

    @property
    def words(self) -> frozenset[str]:
        """Lower-cased ASCII words, punctuation (including '_') treated as a separator."""
        if self._words is None:
            self._words = frozenset(self.ascii_lowered.translate(_PUNCTUATION_TO_SPACE).decode("ascii").split())
        return self._words

    def mentions(self, *words: str) -> bool:
        vocabulary = self.words
        return any(word in vocabulary for word in words)

    @property
    def has_digit(self) -> bool:
        if self._has_digit is None:
            self._has_digit = any(map(self.text.__contains__, "0123456789"))  # ten C-speed searches
        return self._has_digit

    @property
    def digit_clusters(self) -> tuple[DigitCluster, ...]:
        if self._clusters is None:
            self._clusters = self._find_clusters() if self.has_digit else ()
        return self._clusters

    def _find_clusters(self) -> tuple[DigitCluster, ...]:
        shape = self.ascii_lowered.translate(_DIGIT_SHAPE)
        # Starts with a literal, so re finds each cluster with its fast literal search.
        return tuple(DigitCluster(m.start(), m.end(), m.group().count(b"0")) for m in _CLUSTER.finditer(shape))
