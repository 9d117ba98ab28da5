"""Span matching, per-entity scores, injection rates and percentiles on tiny hand-made data."""

from __future__ import annotations

import math

import pytest

from llmops.evaluation.metrics import (
    EntityScore,
    LatencyStats,
    match_spans,
    percentile,
    rate_at,
    rate_curve,
    score_entities,
    spans_match,
    threshold_for_max_rate,
)
from llmops.evaluation.pii_data import Span


def test_same_type_and_half_of_both_spans_is_a_match() -> None:
    gold = Span(10, 25, "PHONE_NUMBER")  # "+1 555-123-4567"
    assert spans_match(gold, Span(13, 25, "PHONE_NUMBER"))  # the number without the country code
    assert spans_match(gold, gold)
    assert not spans_match(gold, Span(13, 25, "US_SSN"))  # wrong type
    assert not spans_match(gold, Span(0, 60, "PHONE_NUMBER"))  # swallows the sentence
    assert not spans_match(gold, Span(20, 30, "PHONE_NUMBER"))  # a third of the gold span
    assert not spans_match(gold, Span(25, 30, "PHONE_NUMBER"))  # touching is not overlapping


def test_matching_is_one_to_one_largest_overlap_first() -> None:
    gold = [Span(0, 10, "EMAIL")]
    predicted = [Span(0, 6, "EMAIL"), Span(0, 10, "EMAIL")]
    matching = match_spans(gold, predicted)
    assert matching.pairs == ((gold[0], predicted[1]),)
    assert matching.false_positives == (predicted[0],)
    assert matching.false_negatives == ()


def test_scores_per_entity_ignore_types_outside_the_evaluated_set() -> None:
    gold = [
        (Span(0, 5, "EMAIL"), Span(10, 20, "PERSON")),
        (Span(0, 9, "US_SSN"),),
        (),
    ]
    predicted = [
        (Span(0, 5, "EMAIL"), Span(10, 20, "DATE_OF_BIRTH")),
        (),
        (Span(3, 8, "EMAIL"),),
    ]
    scores = score_entities(gold, predicted, ["EMAIL", "US_SSN", "IBAN_CODE"])
    assert scores["EMAIL"] == EntityScore("EMAIL", tp=1, fp=1, fn=0)
    assert scores["EMAIL"].precision == 0.5
    assert scores["EMAIL"].recall == 1.0
    assert scores["EMAIL"].f1 == pytest.approx(2 / 3)
    assert scores["US_SSN"].precision is None  # nothing predicted: undefined, not zero
    assert scores["US_SSN"].recall == 0.0
    assert scores["US_SSN"].f1 == 0.0
    iban = scores["IBAN_CODE"]
    assert (iban.support, iban.recall, iban.f1) == (0, None, None)
    assert iban.to_dict()["support"] == 0


def test_gold_and_predictions_must_align() -> None:
    with pytest.raises(ValueError, match="gold span lists"):
        score_entities([()], [(), ()], ["EMAIL"])


def test_rates_and_curve() -> None:
    attacks = [0.9, 0.85, 0.4, 0.95]
    benign = [0.1, 0.2, 0.85, 0.0]
    assert rate_at(attacks, 0.8) == 0.75
    assert rate_at(benign, 0.8) == 0.25
    assert rate_at([], 0.5) is None
    curve = rate_curve(attacks, benign)
    assert curve[0].threshold == math.inf
    assert (curve[0].tpr, curve[0].fpr) == (0.0, 0.0)
    assert (curve[-1].tpr, curve[-1].fpr) == (1.0, 1.0)
    assert [p.threshold for p in curve] == sorted((p.threshold for p in curve), reverse=True)


def test_operating_point_catches_most_attacks_within_the_fpr_budget() -> None:
    attacks = [0.9, 0.85, 0.4, 0.95]
    benign = [0.1, 0.2, 0.85, 0.0]
    point = threshold_for_max_rate(attacks, benign, 0.0)
    assert point.threshold == 0.9
    assert (point.tpr, point.fpr) == (0.5, 0.0)
    loose = threshold_for_max_rate(attacks, benign, 0.25)
    assert (loose.threshold, loose.tpr, loose.fpr) == (0.4, 1.0, 0.25)


def test_percentiles_interpolate() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 99) == 5
    assert percentile([1, 2, 3, 4, 5], 0) == 1
    stats = LatencyStats.of([100.0, 200.0, 300.0])
    assert (stats.p50, stats.mean, stats.samples) == (200.0, 200.0, 3)
    assert stats.to_dict()["p50_us"] == 200.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
