"""Detection-only Unicode normalization with a map back to the caller's original offsets.

Detectors run on a folded copy of the text so that hiding tricks do not defeat them:

* NFKC per character (fullwidth and mathematical letters, ligatures, exotic spaces and digits);
* format characters dropped: zero-width spaces/joiners, bidi controls, soft hyphens, the BOM and
  the Unicode tag block U+E0000-E007F ("ASCII smuggling"), plus combining marks (Zalgo text,
  variation selectors);
* accents stripped from Latin letters (``é`` -> ``e``) and common Cyrillic/Greek look-alikes folded
  to Latin (Cyrillic a, U+0430, -> ``a``), typographic dashes and quotes folded to ASCII.

The folded text is never shown to anyone: redaction always applies to the original text, through
:meth:`NormalizedText.to_original`. Normalization is per character (not per grapheme cluster), which
is all detection needs and keeps the offset map exact. Pure-ASCII text, the common case, is returned
as is with an identity map and costs one ``str.isascii`` call.
"""

from __future__ import annotations

import unicodedata
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["NormalizedText", "fold_char", "normalize", "without_lone_surrogates"]

# Look-alikes NFKC leaves alone. Not exhaustive (Unicode's confusables.txt has thousands): these are
# the ones seen in practice in obfuscated prompts and phishing domains.
# Written as escapes on purpose: the look-alikes would be unreadable (and flagged) in source.
_HOMOGLYPH_PAIRS: dict[str, str] = {
    # Cyrillic
    "\u0430": "a",
    "\u0435": "e",
    "\u0451": "e",
    "\u043a": "k",
    "\u043c": "m",
    "\u043e": "o",
    "\u0440": "p",
    "\u0441": "c",
    "\u0442": "t",
    "\u0443": "y",
    "\u0445": "x",
    "\u0455": "s",
    "\u0456": "i",
    "\u0457": "i",
    "\u0458": "j",
    "\u0501": "d",
    "\u051b": "q",
    "\u051d": "w",
    "\u04bb": "h",
    "\u04cf": "l",
    "\u0410": "A",
    "\u0412": "B",
    "\u0415": "E",
    "\u0401": "E",
    "\u041a": "K",
    "\u041c": "M",
    "\u041d": "H",
    "\u041e": "O",
    "\u0420": "P",
    "\u0421": "C",
    "\u0422": "T",
    "\u0423": "Y",
    "\u0425": "X",
    "\u0405": "S",
    "\u0406": "I",
    "\u0407": "I",
    "\u0408": "J",
    "\u0500": "D",
    "\u051a": "Q",
    "\u051c": "W",
    "\u04ba": "H",
    "\u04c0": "I",
    "\u0417": "3",
    # Greek
    "\u03b1": "a",
    "\u03b2": "b",
    "\u03b3": "y",
    "\u03b5": "e",
    "\u03b9": "i",
    "\u03ba": "k",
    "\u03bd": "v",
    "\u03bf": "o",
    "\u03c1": "p",
    "\u03c4": "t",
    "\u03c5": "u",
    "\u03c7": "x",
    "\u03c9": "w",
    "\u03c2": "c",
    "\u0391": "A",
    "\u0392": "B",
    "\u0395": "E",
    "\u0396": "Z",
    "\u0397": "H",
    "\u0399": "I",
    "\u039a": "K",
    "\u039c": "M",
    "\u039d": "N",
    "\u039f": "O",
    "\u03a1": "P",
    "\u03a4": "T",
    "\u03a5": "Y",
    "\u03a7": "X",
    # other Latin-like letters
    "\u0261": "g",
    "\u0131": "i",
    "\u0237": "j",
    "\u0269": "i",
    "\u0585": "o",
    "\u057d": "u",
    "\u217c": "l",
    "\u2223": "|",
    # dashes, minus signs and quotes (phone/SSN formats, contractions)
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2015": "-",
    "\u2212": "-",
    "\ufe58": "-",
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2033": '"',
}

# Characters that render as nothing but are not category Cf (so the category test misses them).
_INVISIBLE_EXTRA = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_DROP_CATEGORIES = frozenset({"Cf", "Mn", "Me"})


@lru_cache(maxsize=8192)
def fold_char(char: str) -> str:
    """The detection form of one character: "" for invisible ones, else its folded spelling."""
    if char in _INVISIBLE_EXTRA or unicodedata.category(char) in _DROP_CATEGORIES:
        return ""
    folded = unicodedata.normalize("NFKC", char)
    if folded.isascii():
        return folded
    out: list[str] = []
    for ch in folded:
        if ch.isascii():
            out.append(ch)
            continue
        look_alike = _HOMOGLYPH_PAIRS.get(ch)
        if look_alike is not None:
            out.append(look_alike)
            continue
        category = unicodedata.category(ch)
        if category in _DROP_CATEGORIES:
            continue
        if category == "Nd":
            out.append(str(unicodedata.digit(ch)))  # Arabic-Indic, Devanagari... digits
            continue
        decomposed = unicodedata.normalize("NFD", ch)
        if decomposed[0].isascii() and len(decomposed) > 1:
            out.append(decomposed[0])  # an accented Latin letter: keep the base letter
        else:
            out.append(ch)
    return "".join(out)


@dataclass(frozen=True, slots=True)
class NormalizedText:
    """The folded text plus, when it differs from the original, where each folded char came from."""

    original: str
    text: str
    # starts[i] / ends[i]: the original span of the character that produced folded char i.
    _starts: array[int] | None = None
    _ends: array[int] | None = None

    @property
    def is_identity(self) -> bool:
        return self._starts is None

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a span of `text` to the smallest span of `original` that produced it."""
        if self._starts is None or self._ends is None:
            return start, end
        size = len(self.text)
        start = min(max(start, 0), size)
        end = min(max(end, start), size)
        orig_start = self._starts[start] if start < size else len(self.original)
        if end == start:
            return orig_start, orig_start
        return orig_start, self._ends[end - 1]


# The folded form of every character of a 256-character block, computed for the whole block the
# first time one of its characters is seen: an input that cycles through thousands of code points
# then costs dictionary lookups, not thousands of NFKC calls (~2 us each). Bounded: past
# _MAX_BLOCKS, characters of new blocks fold one by one (fold_char's own cache).
_BLOCKS: dict[int, dict[int, str]] = {}
_MAX_BLOCKS = 512


def _folded(code: int) -> str:
    block = _BLOCKS.get(code >> 8)
    if block is None:
        if len(_BLOCKS) >= _MAX_BLOCKS:
            return fold_char(chr(code))
        base = code & ~0xFF
        block = {base + i: _fold_code(base + i) for i in range(256)}
        _BLOCKS[code >> 8] = block
    return block[code]


def _fold_code(code: int) -> str:
    if 0xD800 <= code <= 0xDFFF:
        return chr(code)  # a lone surrogate (possible in a str from JSON) stays as it is
    return fold_char(chr(code))


def normalize(text: str, tick: Callable[[], None] | None = None) -> NormalizedText:
    """O(len(text)) at C speed (one set, one str.translate) plus O(1) per dropped or expanded character.

    `tick` (the guard budget's) is called per dropped or expanded character: the one part that is
    Python work per character (50 000 zero-width characters in 100 KB)."""
    if text.isascii():
        return NormalizedText(text, text)
    table = {code: _folded(code) for code in map(ord, set(text)) if code > 0x7F}
    folded = text.translate(table)
    uneven = [chr(code) for code, piece in table.items() if len(piece) != 1]
    if not uneven:
        # Every character folds to exactly one (accents, look-alikes): offsets are unchanged.
        return NormalizedText(text, text if folded == text else folded)
    positions = sorted(index for char in uneven for index in _find_all(text, char))
    starts: array[int] = array("q")
    ends: array[int] = array("q")
    position = 0
    for index in positions:
        if tick is not None:
            tick()
        starts.extend(range(position, index))
        ends.extend(range(position + 1, index + 1))
        width = len(table[ord(text[index])])
        starts.extend([index] * width)
        ends.extend([index + 1] * width)
        position = index + 1
    starts.extend(range(position, len(text)))
    ends.extend(range(position + 1, len(text) + 1))
    return NormalizedText(text, folded, starts, ends)


def without_lone_surrogates(text: str, replacement: str = "\ufffd") -> str:
    """`text` with every surrogate code point (JSON may carry "\\ud800") replaced, one for one, so it
    can be encoded as UTF-8. No regex: one encode attempt, and a translate when it fails."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.translate({code: replacement for code in map(ord, set(text)) if 0xD800 <= code <= 0xDFFF})
    return text


def _find_all(haystack: str, needle: str) -> list[int]:
    """Every index of the one-character `needle` in `haystack` (str.find: C speed per occurrence)."""
    found: list[int] = []
    index = haystack.find(needle)
    while index != -1:
        found.append(index)
        index = haystack.find(needle, index + 1)
    return found
