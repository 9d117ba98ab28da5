"""Input drift: how far recent traffic has moved from a reference window, with no model.

Four features, each compared as a distance in [0, 1]:
- `token_length`: Jensen-Shannon distance between log-spaced histograms of input tokens;
- `script_mix`: Jensen-Shannon distance between the dominant Unicode scripts of the texts
  (a proxy for language mix that needs no language model);
- `guard_hits`: the largest change in the share of requests on which a guard detector fired;
- `top_terms`: 1 - Jaccard overlap of the most frequent terms.
The score is their weighted mean over the features both windows have data for. Jensen-Shannon
(base 2) is bounded and symmetric, unlike PSI, so a threshold means the same on any window.

Inputs are guard-redacted texts (or no text, where the tenant keeps only hashes): placeholders
such as `<EMAIL>` are not terms.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from llmops.domain.guard import safe_regex

__all__ = [
    "DEFAULT_WEIGHTS",
    "LENGTH_BINS",
    "DriftReport",
    "InputSample",
    "dominant_script",
    "drift_score",
    "jensen_shannon",
]

# Upper bounds (tokens) of the length bins; the last bin is open.
LENGTH_BINS: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
DEFAULT_WEIGHTS: Mapping[str, float] = {"token_length": 0.3, "script_mix": 0.2, "guard_hits": 0.2, "top_terms": 0.3}
_TOP_TERMS = 50
_TERM = safe_regex.compile_backtracking(
    r"[^\W\d_]{3,}", needs="Unicode letters and throughput: one match per word, ~0.1 us each in re vs ~1 us in RE2"
)
_PLACEHOLDER = safe_regex.compile(r"<[A-Z_]+(?:_\d+)?>|\[[A-Z_]+(?:_\d+)?\]")
_STOPWORDS = frozenset(
    {
        "the",
        "and",
        "for",
        "are",
        "but",
        "not",
        "you",
        "your",
        "with",
        "this",
        "that",
        "have",
        "from",
        "they",
        "will",
        "what",
        "when",
        "can",
        "all",
        "was",
        "were",
        "which",
        "there",
        "their",
        "has",
        "been",
        "would",
        "could",
        "should",
        "about",
        "into",
        "than",
        "then",
        "them",
        "these",
        "those",
        "its",
        "our",
        "out",
    }
)


@dataclass(frozen=True, slots=True)
class InputSample:
    """One request's model-free features: never raw text, at most the guard-redacted text."""

    input_tokens: int
    text: str | None = None
    guard_findings: Mapping[str, int] = field(default_factory=dict)  # detector/type -> count


@dataclass(frozen=True, slots=True)
class DriftReport:
    score: float  # in [0, 1]; 0 when either window is too small
    parts: Mapping[str, float]  # feature -> distance in [0, 1], for the features computed
    recent_count: int
    reference_count: int
    sufficient: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "score": self.score,
            "parts": dict(self.parts),
            "recent_count": self.recent_count,
            "reference_count": self.reference_count,
            "sufficient": self.sufficient,
        }


def jensen_shannon(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Jensen-Shannon distance (sqrt of the base-2 divergence) between two count maps; in [0, 1]."""
    p_total, q_total = sum(p.values()), sum(q.values())
    if p_total <= 0 or q_total <= 0:
        return 0.0
    divergence = 0.0
    for key in set(p) | set(q):
        pi, qi = p.get(key, 0.0) / p_total, q.get(key, 0.0) / q_total
        mi = (pi + qi) / 2
        if pi > 0:
            divergence += 0.5 * pi * math.log2(pi / mi)
        if qi > 0:
            divergence += 0.5 * qi * math.log2(qi / mi)
    return min(1.0, math.sqrt(max(0.0, divergence)))


def _length_bin(tokens: int) -> str:
    for bound in LENGTH_BINS:
        if tokens < bound:
            return f"<{bound}"
    return f">={LENGTH_BINS[-1]}"


def dominant_script(text: str) -> str:
    """The Unicode script most of the text's letters belong to (first word of their names)."""
    scripts: Counter[str] = Counter()
    for char in text:
        if char.isalpha():
            name = unicodedata.name(char, "")
            scripts[name.split(" ", 1)[0] if name else "UNKNOWN"] += 1
    if not scripts:
        return "NONE"
    return scripts.most_common(1)[0][0]


def _terms(text: str) -> Iterable[str]:
    for match in _TERM.finditer(_PLACEHOLDER.sub(" ", text)):
        term = match.group(0).lower()
        if term not in _STOPWORDS:
            yield term


def _top_terms(samples: Sequence[InputSample]) -> set[str]:
    counts: Counter[str] = Counter()
    for sample in samples:
        if sample.text:
            counts.update(set(_terms(sample.text)))  # document frequency: one long prompt is one vote
    return {term for term, _ in counts.most_common(_TOP_TERMS)}


def _guard_rates(samples: Sequence[InputSample]) -> dict[str, float]:
    hits: Counter[str] = Counter()
    for sample in samples:
        hits.update({kind for kind, count in sample.guard_findings.items() if count > 0})
    return {kind: count / len(samples) for kind, count in hits.items()}


def drift_score(
    recent: Sequence[InputSample],
    reference: Sequence[InputSample],
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
    min_samples: int = 30,
) -> DriftReport:
    """Compares `recent` inputs with `reference` inputs; see the module docstring for the features."""
    if len(recent) < min_samples or len(reference) < min_samples:
        return DriftReport(0.0, {}, len(recent), len(reference), sufficient=False)

    parts: dict[str, float] = {
        "token_length": jensen_shannon(
            Counter(_length_bin(s.input_tokens) for s in recent),
            Counter(_length_bin(s.input_tokens) for s in reference),
        )
    }
    recent_texts = [s for s in recent if s.text]
    reference_texts = [s for s in reference if s.text]
    if len(recent_texts) >= min_samples and len(reference_texts) >= min_samples:
        parts["script_mix"] = jensen_shannon(
            Counter(dominant_script(s.text or "") for s in recent_texts),
            Counter(dominant_script(s.text or "") for s in reference_texts),
        )
        recent_top, reference_top = _top_terms(recent_texts), _top_terms(reference_texts)
        union = recent_top | reference_top
        parts["top_terms"] = 1.0 - len(recent_top & reference_top) / len(union) if union else 0.0
    recent_rates, reference_rates = _guard_rates(recent), _guard_rates(reference)
    kinds = set(recent_rates) | set(reference_rates)
    parts["guard_hits"] = max((abs(recent_rates.get(k, 0.0) - reference_rates.get(k, 0.0)) for k in kinds), default=0.0)

    total_weight = sum(weights.get(name, 0.0) for name in parts)
    score = sum(weights.get(name, 0.0) * value for name, value in parts.items()) / total_weight if total_weight else 0.0
    return DriftReport(
        score=round(min(1.0, max(0.0, score)), 6),
        parts={k: round(v, 6) for k, v in sorted(parts.items())},
        recent_count=len(recent),
        reference_count=len(reference),
        sufficient=True,
    )
