"""The injection score: the table's signals run over a text and what it hides, combined by a logistic function.

``score = sigmoid(bias + sum(weights of the distinct signals that fired))``, where signals of one
family count once (the first that fires). Decoded base64 and hex blobs are scored with the same
signals (two levels deep); a suspicious hidden text adds the encoded-payload weight on top. rot13
and leetspeak are undone in place when the text looks like either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from llmops.domain.guard import safe_regex
from llmops.domain.guard.budget import GuardBudget
from llmops.domain.guard.injection.decoding import decoded_payloads, looks_leet, looks_rot13, rot13, unleet
from llmops.domain.guard.injection.signal_table import (
    BIAS,
    ENCODED_PAYLOAD,
    ENCODED_PAYLOAD_WEIGHT,
    SIGNALS,
    Signal,
)
from llmops.domain.guard.text_view import TextView, find_all, word_start

__all__ = ["InjectionAssessment", "InjectionScorer"]

_MAX_DECODE_DEPTH: Final = 2


@dataclass(frozen=True, slots=True)
class InjectionAssessment:
    """The score, which signals fired, and the span of `text` that carried them ((0, 0) if none)."""

    score: float
    signals: tuple[str, ...]
    start: int
    end: int


def _sigmoid(logit: float) -> float:
    return 1.0 / (1.0 + math.exp(-logit))


class InjectionScorer:
    """Stateless; safe to share across requests."""

    name = "injection"

    def __init__(self, signals: tuple[Signal, ...] = SIGNALS, bias: float = BIAS) -> None:
        self._signals = signals
        self._bias = bias
        # word -> indexes of the signals it gates, so a text only visits the signals its words can fire
        by_word: dict[str, set[int]] = {}
        for index, signal in enumerate(signals):
            for word in signal.start_set or signal.require_set:
                by_word.setdefault(word, set()).add(index)
        self._by_word = {word: frozenset(indexes) for word, indexes in by_word.items()}
        self._gate_words = frozenset(by_word)
        self._ungated = frozenset(i for i, s in enumerate(signals) if not (s.start_set or s.require_set))

    @property
    def signals(self) -> tuple[Signal, ...]:
        return self._signals

    def assess(self, text: str) -> InjectionAssessment:
        return self.assess_view(TextView(text))

    def assess_view(self, view: TextView) -> InjectionAssessment:
        fired: dict[str, tuple[float, int, int]] = {}
        self._collect(view, fired, depth=0, span=None)
        if not fired:
            return InjectionAssessment(_sigmoid(self._bias), (), 0, 0)
        logit = self._bias + sum(weight for weight, _, _ in fired.values())
        start = min(s for _, s, _ in fired.values())
        end = max(e for _, _, e in fired.values())
        return InjectionAssessment(_sigmoid(logit), tuple(sorted(fired)), start, end)

    def _collect(
        self, view: TextView, fired: dict[str, tuple[float, int, int]], *, depth: int, span: tuple[int, int] | None
    ) -> None:
        """Add the signals in `view` to `fired`; `span` (when decoding) is where the blob sits."""
        self._match_signals(view, view, fired, span)
        if depth >= _MAX_DECODE_DEPTH:
            return
        text = view.text
        lowered = view.lowered
        for start, end, decoded in decoded_payloads(view):
            where = span or (start, end)
            # Hiding counts only when what was hidden is itself suspicious: users paste base64 and ask
            # for it to be decoded all the time ("decode this for me: ...").
            inner: dict[str, tuple[float, int, int]] = {}
            self._collect(TextView(decoded, view.budget), inner, depth=depth + 1, span=where)
            if inner:
                _fire(fired, ENCODED_PAYLOAD, ENCODED_PAYLOAD_WEIGHT, where)
                for name, hit in inner.items():
                    fired.setdefault(name, hit)
        if looks_rot13(view):
            # rot13 and the leet table keep length, so spans in the decoded text are spans of the input
            before = len(fired)
            self._match_signals(view, TextView(rot13(lowered), view.budget), fired, span)
            if len(fired) > before:
                _fire(fired, ENCODED_PAYLOAD, ENCODED_PAYLOAD_WEIGHT, span or (0, len(text)))
        if looks_leet(view):
            self._match_signals(view, TextView(unleet(lowered), view.budget), fired, span)

    def _match_signals(
        self,
        original: TextView,
        view: TextView,
        fired: dict[str, tuple[float, int, int]],
        span: tuple[int, int] | None,
    ) -> None:
        words = view.words
        lowered = view.lowered
        candidates = set(self._ungated)
        for word in self._gate_words & words:
            candidates |= self._by_word[word]
        for index in sorted(candidates):
            signal = self._signals[index]
            key = signal.family or signal.name
            if key in fired:
                continue
            original.budget.check()
            if signal.case_sensitive:
                m = _search_gated(signal, original.text, words)
            elif signal.starts:
                m = _match_anchored(signal, lowered, words, original.budget)
            else:
                m = _search_gated(signal, lowered, words)
            if m is not None:
                _fire(fired, key, signal.weight, span or (m.start(), m.end()))


def _match_anchored(
    signal: Signal, lowered: str, words: frozenset[str], budget: GuardBudget
) -> safe_regex.Match[str] | None:
    if signal.require_set and signal.require_set.isdisjoint(words):
        return None
    present = signal.start_set & words
    if not present:
        return None
    for start_word in signal.starts:  # tuple order, so the reported span is deterministic
        if start_word not in present:
            continue
        for index in find_all(lowered, start_word):
            budget.tick()
            if word_start(lowered, index):
                m = signal.pattern.match(lowered, index)
                if m is not None:
                    return m
    return None


def _search_gated(signal: Signal, haystack: str, words: frozenset[str]) -> safe_regex.Match[str] | None:
    if signal.require_set and signal.require_set.isdisjoint(words):
        return None
    if signal.chars and not any(c in haystack for c in signal.chars):
        return None
    if signal.phrases and not any(p in haystack for p in signal.phrases):
        return None
    return signal.pattern.search(haystack)


def _fire(fired: dict[str, tuple[float, int, int]], name: str, weight: float, span: tuple[int, int]) -> None:
    if name not in fired:
        fired[name] = (weight, span[0], span[1])
