"""Hashed n-gram features, shared by training and inference so both see exactly the same vector.

A text becomes the set of bucket indexes of its lower-cased word unigrams, word bigrams and word
prefixes (the first five letters of words longer than five: "explosive", "explosion" and
"exploding" share "explo", a stemmer's benefit at a hash's cost). Character 4-grams were tried:
three times the cost per KB for no better dev average precision. Buckets come from CRC-32 with a
different start value per kind: deterministic across processes and machines (Python's ``hash`` of
a ``str`` is salted per process), and computed in C.
Binary presence, not counts: a linear model over presence with 1/sqrt(n) normalisation (n at least
`MIN_NORM_FEATURES`) is what the
trainer fits (``llmops.evaluation.guard_training``) and what the scorer evaluates.

No regular expression: ``bytes.translate`` and ``split`` run at C speed and cannot go super-linear.
"""

from __future__ import annotations

import math
import string
from itertools import pairwise
from typing import Final
from zlib import crc32

__all__ = ["DIM_BITS", "MIN_NORM_FEATURES", "WINDOW_CHARS", "WINDOW_STEP", "hashed_features", "norm", "windows"]

DIM_BITS: Final = 18
_MASK: Final = (1 << DIM_BITS) - 1
_WORD_SEED: Final = 0x9E3779B1
_BIGRAM_SEED: Final = 0x85EBCA77
_PREFIX_SEED: Final = 0xC2B2AE3D
_PREFIX: Final = 5
# Long texts are scored window by window (the worst window counts), so padding an attack with
# benign text cannot dilute it; windows overlap so an attack cut by a boundary is still whole in one.
WINDOW_CHARS: Final = 2048
WINDOW_STEP: Final = 1536

# ASCII punctuation and control bytes -> space; letters lower-cased; bytes >= 0x80 (UTF-8 of
# non-ASCII text, already Unicode-folded by the engine) kept, so other scripts still make n-grams.
_TABLE: Final = bytes(
    ord(" ")
    if (b < 0x80 and chr(b) in string.punctuation) or b < 0x20 or b == 0x7F
    else (b + 32 if 0x41 <= b <= 0x5A else b)
    for b in range(256)
)


# A text's features are scaled by 1/sqrt(max(n, MIN_NORM_FEATURES)): a short text ("mail me at
# a@x.com", "thanks!") has too few words to carry a confident score, and plain 1/sqrt(n) would
# give each of its few words the weight of a whole sentence.
MIN_NORM_FEATURES: Final = 24


def norm(count: int) -> float:
    return 1.0 / math.sqrt(max(count, MIN_NORM_FEATURES))


_PLACEHOLDER_EDGES: Final = b"[]().,!?:;'\"<>"


def _is_placeholder(token: bytes) -> bool:
    """The guard's own pseudonyms ("[EMAIL_1]", "phone_number_1"): a type name, "_", an index."""
    core = token.strip(_PLACEHOLDER_EDGES)
    name, sep, index = core.rpartition(b"_")
    return bool(sep) and index.isdigit() and name.replace(b"_", b"").isalpha()


def hashed_features(text: str) -> list[int]:
    """Sorted distinct bucket indexes of `text` (empty for text without words).

    The guard's own placeholders are left out: output text is checked before its pseudonyms are
    restored, and "[PHONE_NUMBER_1]" is no evidence of anything.
    """
    raw = text.encode("utf-8", "surrogatepass")
    if b"_" in raw:  # only a text with an underscore can hold a placeholder
        raw = b" ".join(t for t in raw.split() if not _is_placeholder(t))
    data = raw.translate(_TABLE)
    words = data.split()
    if not words:
        return []
    buckets = {crc32(w, _WORD_SEED) & _MASK for w in words}
    buckets.update(crc32(a + b" " + b, _BIGRAM_SEED) & _MASK for a, b in pairwise(words))
    buckets.update(crc32(w[:_PREFIX], _PREFIX_SEED) & _MASK for w in words if len(w) > _PREFIX)
    return sorted(buckets)


def windows(text: str) -> list[str]:
    """`text` itself when short, else overlapping windows of `WINDOW_CHARS` covering all of it."""
    if len(text) <= WINDOW_CHARS:
        return [text]
    starts = range(0, len(text) - WINDOW_CHARS + WINDOW_STEP, WINDOW_STEP)
    return [text[s : s + WINDOW_CHARS] for s in starts]
