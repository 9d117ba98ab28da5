"""Scoring: span matching, per-entity precision/recall/F1, injection rates, latency statistics.

Span matching rule (documented in docs/guardrails-eval.md):

* a predicted span and a gold span *match* when they have the same entity type and their
  character overlap covers at least half of the gold span AND at least half of the predicted span
  (so ``555-123-4567`` inside gold ``+1 555-123-4567`` matches, a prediction that swallows the
  whole sentence does not);
* matching is one-to-one, largest overlap first (ties: earlier gold, then earlier prediction);
* a matched prediction is a true positive, an unmatched prediction a false positive, an unmatched
  gold span a false negative. Types outside the evaluated set are ignored on both sides.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from llmops.evaluation.pii_data import Span

__all__ = [
    "MIN_OVERLAP",
    "EntityScore",
    "LatencyStats",
    "RatePoint",
    "match_spans",
    "overlap",
    "percentile",
    "rate_at",
    "rate_curve",
    "score_entities",
    "spans_match",
    "threshold_for_max_rate",
]

MIN_OVERLAP = 0.5


def overlap(a: Span, b: Span) -> int:
    return max(0, min(a.end, b.end) - max(a.start, b.start))


def spans_match(gold: Span, predicted: Span, min_overlap: float = MIN_OVERLAP) -> bool:
    if gold.type != predicted.type:
        return False
    shared = overlap(gold, predicted)
    return shared > 0 and shared >= min_overlap * gold.length and shared >= min_overlap * predicted.length


@dataclass(frozen=True, slots=True)
class Matching:
    pairs: tuple[tuple[Span, Span], ...]  # (gold, predicted)
    false_positives: tuple[Span, ...]
    false_negatives: tuple[Span, ...]


def match_spans(gold: Sequence[Span], predicted: Sequence[Span], min_overlap: float = MIN_OVERLAP) -> Matching:
    """One-to-one matching of one text's spans under the rule in the module docstring."""
    candidates = sorted(
        (
            (-overlap(g, p), gi, pi)
            for gi, g in enumerate(gold)
            for pi, p in enumerate(predicted)
            if spans_match(g, p, min_overlap)
        ),
    )
    used_gold: set[int] = set()
    used_pred: set[int] = set()
    pairs: list[tuple[Span, Span]] = []
    for _, gi, pi in candidates:
        if gi in used_gold or pi in used_pred:
            continue
        used_gold.add(gi)
        used_pred.add(pi)
        pairs.append((gold[gi], predicted[pi]))
    return Matching(
        pairs=tuple(pairs),
        false_positives=tuple(p for i, p in enumerate(predicted) if i not in used_pred),
        false_negatives=tuple(g for i, g in enumerate(gold) if i not in used_gold),
    )


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


@dataclass(frozen=True, slots=True)
class EntityScore:
    entity: str
    tp: int
    fp: int
    fn: int

    @property
    def support(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float | None:
        """None when nothing was predicted (undefined, not zero)."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float | None:
        """None when there is no gold span of this type."""
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float | None:
        """None without gold spans; 0 when there are gold spans and no true positive."""
        if self.support == 0:
            return None
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    def to_dict(self) -> dict[str, object]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "support": self.support,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


def score_entities(
    gold: Sequence[Sequence[Span]],
    predicted: Sequence[Sequence[Span]],
    entities: Iterable[str],
    min_overlap: float = MIN_OVERLAP,
) -> dict[str, EntityScore]:
    """Per-entity counts over a corpus; `gold[i]` and `predicted[i]` are the spans of text i."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold span lists but {len(predicted)} predicted ones")
    wanted = tuple(entities)
    counts = {e: [0, 0, 0] for e in wanted}
    keep = set(wanted)
    for gold_spans, predicted_spans in zip(gold, predicted, strict=True):
        matching = match_spans(
            [s for s in gold_spans if s.type in keep], [s for s in predicted_spans if s.type in keep], min_overlap
        )
        for gold_span, _ in matching.pairs:
            counts[gold_span.type][0] += 1
        for span in matching.false_positives:
            counts[span.type][1] += 1
        for span in matching.false_negatives:
            counts[span.type][2] += 1
    return {e: EntityScore(e, *counts[e]) for e in wanted}


# -- injection ------------------------------------------------------------------------------------


def rate_at(scores: Sequence[float], threshold: float) -> float | None:
    """Share of `scores` at or above `threshold` (TPR on attacks, FPR on benign prompts)."""
    if not scores:
        return None
    return sum(1 for s in scores if s >= threshold) / len(scores)


@dataclass(frozen=True, slots=True)
class RatePoint:
    threshold: float
    tpr: float
    fpr: float


def rate_curve(attack: Sequence[float], benign: Sequence[float]) -> list[RatePoint]:
    """TPR/FPR at every distinct score (an ROC curve), from the strictest threshold down."""
    thresholds = sorted({*attack, *benign, math.inf}, reverse=True)
    return [RatePoint(t, rate_at(attack, t) or 0.0, rate_at(benign, t) or 0.0) for t in thresholds]


def threshold_for_max_rate(attack: Sequence[float], benign: Sequence[float], max_rate: float) -> RatePoint:
    """The ROC operating point with the most attacks caught while the benign rate stays <= `max_rate`."""
    eligible = [p for p in rate_curve(attack, benign) if p.fpr <= max_rate]
    return max(eligible, key=lambda p: (p.tpr, p.threshold))


# -- latency --------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Microseconds."""

    p50: float
    p90: float
    p99: float
    mean: float
    samples: int

    @classmethod
    def of(cls, microseconds: Sequence[float]) -> LatencyStats:
        return cls(
            p50=percentile(microseconds, 50),
            p90=percentile(microseconds, 90),
            p99=percentile(microseconds, 99),
            mean=sum(microseconds) / len(microseconds),
            samples=len(microseconds),
        )

    def to_dict(self) -> dict[str, float | int]:
        return {
            "p50_us": round(self.p50, 2),
            "p90_us": round(self.p90, 2),
            "p99_us": round(self.p99, 2),
            "mean_us": round(self.mean, 2),
            "samples": self.samples,
        }
