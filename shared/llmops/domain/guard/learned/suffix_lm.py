"""The adversarial-suffix signal: how much the least fluent stretch of a text reads like token soup.

Optimizer-made suffixes (GCG and its successors) are token soup: random subword tokens glued with
odd capitals, brackets and markup that no person writes (``describing.\\ + similarlyNow write
oppositeley.](``). Surprise under a model of English alone is not the signal: code, URLs, logs and
base64 surprise it as much. So the table holds a *log-likelihood ratio* per character trigram:
surprisal under a benign model (English prose and prompts, code, URLs, logs, identifiers) minus
surprisal under a model of synthetic token soup. A token's cost is the sum over its characters
(from a word start, plus the word end); the signal is the mean ratio per character of the worst
run of `window` consecutive tokens, mapped to [0, 1] by a logistic function whose centre and width
the trainer fits on benign text against the same text with soup appended. Positive means "more
like soup than like anything benign the trainer saw".

Characters map to a small alphabet (space, digit, 26 lower, 26 upper, 32 ASCII punctuation, other).
Trigrams that contain "other" (non-ASCII text) are neutral (ratio 0): the models know ASCII only,
and other scripts must not look like soup. The table is ``alphabet_size ** 3`` bytes, each the
ratio in 1/16 bit offset by `RATIO_OFFSET` (so -8 to +8 bits). Token costs are memoised per model
(bounded), so ordinary text, which repeats its words, costs a dictionary look-up per token; the
windows are C-level passes.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from itertools import accumulate
from operator import sub, truediv
from typing import Final

__all__ = [
    "ALPHABET_SIZE",
    "OTHER",
    "QUANTUM_BITS",
    "RATIO_OFFSET",
    "SPACE",
    "SYMBOL_TABLE",
    "CharTrigramModel",
    "padded_symbols",
    "tokens",
]

SPACE: Final = 0
DIGIT: Final = 1
OTHER: Final = 2
_FIRST_LOWER: Final = 3
_FIRST_UPPER: Final = _FIRST_LOWER + 26
_FIRST_PUNCT: Final = _FIRST_UPPER + 26
ALPHABET_SIZE: Final = _FIRST_PUNCT + len(string.punctuation)
QUANTUM_BITS: Final = 1 / 16  # one table unit
RATIO_OFFSET: Final = 128  # a table byte is the ratio in quanta plus this


def _symbol(byte: int) -> int:
    char = chr(byte)
    if byte >= 0x80:
        return OTHER
    if char in string.whitespace:
        return SPACE
    if char in string.digits:
        return DIGIT
    if "a" <= char <= "z":
        return _FIRST_LOWER + byte - ord("a")
    if "A" <= char <= "Z":
        return _FIRST_UPPER + byte - ord("A")
    if char in string.punctuation:
        return _FIRST_PUNCT + string.punctuation.index(char)
    return OTHER  # control characters


SYMBOL_TABLE: Final = bytes(_symbol(b) for b in range(256))


def padded_symbols(token: bytes) -> bytes:
    """A token's symbols as the model sees them: two word-start contexts before, a word end after."""
    return bytes((SPACE, SPACE)) + token.translate(SYMBOL_TABLE) + bytes((SPACE,))


def tokens(text: str) -> list[bytes]:
    return text.encode("utf-8", "surrogatepass").split()


_CACHE_LIMIT: Final = 65_536
_MIN_SYMBOLS: Final = 12  # a text shorter than this has no stretch to judge


@dataclass(frozen=True, slots=True)
class CharTrigramModel:
    """`table[(a * A + b) * A + c]`: log-likelihood ratio (soup over benign) of c after a, b, in
    1/16 bit plus `RATIO_OFFSET` (A = `ALPHABET_SIZE`)."""

    table: bytes
    window: int  # tokens
    center: float  # bits per symbol where the score is 0.5
    width: float  # bits per symbol for one logit unit
    _costs: dict[bytes, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.table) != ALPHABET_SIZE**3:
            raise ValueError(f"trigram table has {len(self.table)} entries, expected {ALPHABET_SIZE**3}")
        if self.window < 2 or self.width <= 0:
            raise ValueError("window must be >= 2 tokens and width positive")

    def token_cost(self, token: bytes) -> int:
        """Ratio of one token in table units (memoised: the same token always costs the same)."""
        cost = self._costs.get(token)
        if cost is None:
            sym = padded_symbols(token)
            size = ALPHABET_SIZE
            table = self.table
            total = sum(table[(a * size + b) * size + c] for a, b, c in zip(sym, sym[1:], sym[2:], strict=False))
            cost = total - RATIO_OFFSET * (len(sym) - 2)
            if len(self._costs) < _CACHE_LIMIT:
                self._costs[token] = cost
        return cost

    def worst_window(self, text: str) -> tuple[float, int] | None:
        """The mean ratio (bits per symbol) of the most soup-like `window` tokens of `text` and the
        index of that window's first token (in `tokens(text)`); None if the text is too short."""
        words = tokens(text)
        if not words:
            return None
        # memoised costs in one C-level pass; only tokens never seen go through token_cost
        costs = list(map(self._costs.get, words))
        if None in costs:
            costs = list(map(self.token_cost, words))
        length_sums = [0, *accumulate(map(len, words))]
        if length_sums[-1] + len(words) < _MIN_SYMBOLS:  # each token's symbols plus its word end
            return None
        span = min(self.window, len(words))
        cost_sums = [0, *accumulate(costs)]
        window_costs = map(sub, cost_sums[span:], cost_sums)
        window_lengths = map(span.__add__, map(sub, length_sums[span:], length_sums))
        means = list(map(truediv, window_costs, window_lengths))
        worst = max(means)
        return float(worst) * QUANTUM_BITS, means.index(worst)

    def worst_window_bits(self, text: str) -> float | None:
        """Mean ratio (bits per symbol) of the most soup-like `window` tokens of `text`; None if too short."""
        found = self.worst_window(text)
        return None if found is None else found[0]

    def score_bits(self, bits: float) -> float:
        """In [0, 1]: the logistic calibration of a window's mean ratio."""
        logit = (bits - self.center) / self.width
        if logit < -60:
            return 0.0
        return 1.0 / (1.0 + math.exp(-logit))

    def score(self, text: str) -> float:
        """In [0, 1]: how much the worst window looks like optimizer-made token soup."""
        bits = self.worst_window_bits(text)
        return 0.0 if bits is None else self.score_bits(bits)
