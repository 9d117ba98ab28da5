"""Latency statistics: percentiles, summaries, ratios and a least-squares trend. Pure Python.

Percentiles interpolate linearly between closest ranks (numpy's default "linear" method), so the
figures match what anyone re-analysing the raw JSON with numpy or pandas would compute.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["LatencySummary", "Trend", "difference", "linear_trend", "median", "percentile", "ratio", "summarize"]


def percentile(samples: Iterable[float], q: float) -> float:
    """The q-th percentile (0 <= q <= 100) of `samples`, linearly interpolated; NaN when empty."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be between 0 and 100, got {q}")
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(samples: Iterable[float]) -> float:
    return percentile(samples, 50.0)


@dataclass(frozen=True, slots=True)
class LatencySummary:
    count: int
    p50: float
    p90: float
    p99: float
    mean: float
    minimum: float
    maximum: float
    unit: str = "ms"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(samples: Sequence[float], unit: str = "ms") -> LatencySummary:
    """Count, p50/p90/p99, mean, min and max of `samples` (all NaN but the count when empty)."""
    if not samples:
        return LatencySummary(0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, unit)
    ordered = sorted(samples)
    return LatencySummary(
        count=len(ordered),
        p50=percentile(ordered, 50),
        p90=percentile(ordered, 90),
        p99=percentile(ordered, 99),
        mean=math.fsum(ordered) / len(ordered),
        minimum=ordered[0],
        maximum=ordered[-1],
        unit=unit,
    )


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when the ratio means nothing (no data, zero or negative base)."""
    if math.isnan(numerator) or math.isnan(denominator) or denominator <= 0:
        return None
    return numerator / denominator


def difference(value: float, baseline: float) -> float:
    """value - baseline, floored at zero: measured noise must not report a negative overhead."""
    if math.isnan(value) or math.isnan(baseline):
        return math.nan
    return max(0.0, value - baseline)


@dataclass(frozen=True, slots=True)
class Trend:
    slope: float  # y units per x unit
    intercept: float

    def at(self, x: float) -> float:
        return self.intercept + self.slope * x


def linear_trend(xs: Sequence[float], ys: Sequence[float]) -> Trend:
    """Ordinary least squares fit y = intercept + slope * x (slope 0 when x does not vary)."""
    if len(xs) != len(ys):
        raise ValueError("xs and ys must have the same length")
    if not xs:
        return Trend(0.0, math.nan)
    mean_x = math.fsum(xs) / len(xs)
    mean_y = math.fsum(ys) / len(ys)
    spread = math.fsum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return Trend(0.0, mean_y)
    slope = math.fsum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    return Trend(slope, mean_y - slope * mean_x)
