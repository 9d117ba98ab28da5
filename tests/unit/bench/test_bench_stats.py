"""Percentile math and summaries used by every benchmark."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmops.bench.stats import difference, linear_trend, median, percentile, ratio, summarize

samples = st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=200)


@given(samples, st.floats(min_value=0, max_value=100))
def test_percentile_matches_numpy_linear_method(values: list[float], q: float) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-9, abs=1e-9)


def test_percentile_interpolates_between_closest_ranks() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([10, 20], 99) == pytest.approx(19.9)
    assert percentile([7], 99) == 7
    assert median([3, 1, 2]) == 2


def test_percentile_of_nothing_is_nan_and_bad_q_is_refused() -> None:
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], 101)


def test_summarize_reports_count_percentiles_and_extremes() -> None:
    summary = summarize([float(v) for v in range(1, 101)])
    assert summary.count == 100
    assert summary.p50 == pytest.approx(50.5)
    assert summary.p99 == pytest.approx(99.01)
    assert (summary.minimum, summary.maximum, summary.mean) == (1.0, 100.0, 50.5)
    assert summary.to_dict()["unit"] == "ms"


def test_summarize_empty_is_all_nan_but_the_count() -> None:
    summary = summarize([])
    assert summary.count == 0
    assert math.isnan(summary.p50)
    assert math.isnan(summary.p99)


def test_ratio_is_none_when_meaningless() -> None:
    assert ratio(1.0, 4.0) == 0.25
    assert ratio(1.0, 0.0) is None
    assert ratio(math.nan, 1.0) is None


def test_difference_never_reports_negative_overhead() -> None:
    assert difference(5.0, 3.0) == 2.0
    assert difference(3.0, 5.0) == 0.0
    assert math.isnan(difference(math.nan, 1.0))


def test_linear_trend_recovers_a_line_and_handles_flat_x() -> None:
    trend = linear_trend([0, 1, 2, 3], [1, 3, 5, 7])
    assert trend.slope == pytest.approx(2.0)
    assert trend.intercept == pytest.approx(1.0)
    assert trend.at(10) == pytest.approx(21.0)
    flat = linear_trend([1, 1], [2, 4])
    assert (flat.slope, flat.intercept) == (0.0, 3.0)
    with pytest.raises(ValueError, match="same length"):
        linear_trend([1], [])
