"""How CloudWatch decides an alarm's state, as pure functions over metric samples.

What is implemented, after CloudWatch's documentation ("Using Amazon CloudWatch alarms": alarm
evaluation, and "Configuring how CloudWatch alarms treat missing data"):

- **Periods** are aligned to multiples of the period since the epoch; only complete periods are
  evaluated (the newest is the one that ended last).
- **Statistics**: Sum, Average, SampleCount, Minimum, Maximum and percentiles `pNN` (nearest rank
  over the raw samples: CloudWatch computes percentiles from the values it received, which for the
  small sample counts of a local stack is the nearest-rank value).
- **Metric math** in the catalogue's shapes (`llmops.observability.alarm_catalogue`): `FILL(m, 0)`
  fills every period of the evaluation range once the metric has a datapoint in it, so a ratio
  (`IF(den > 0, num / den, 0)`) or a gated rate reads 0 in idle periods; with no datapoint at all
  in the range the expression has no data either.
- **Evaluation range**: CloudWatch retrieves more periods than `EvaluationPeriods` (N) in case some
  are missing; here N + 2 (the documentation's example: 5 for an alarm of 3).
- **Datapoints to alarm** (M of N) and **missing data**:
  - no datapoint in the range: `missing` -> INSUFFICIENT_DATA, `ignore` -> the current state,
    `breaching` -> ALARM, `notBreaching` -> OK;
  - at least N real datapoints in the range: the N most recent real ones are evaluated and the
    treatment is not used: ALARM when at least M breach, else OK;
  - fewer than N: every real datapoint counts, and the missing ones are filled as few times as
    possible (N minus the real ones) with the treatment: `breaching` fills count as breaching,
    `notBreaching` fills as not; `missing` and `ignore` fill nothing, and then `ignore` keeps the
    current state unless the real datapoints alone reach M.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from llmops.local.metric_store import MetricKey, MetricStore
from llmops.observability.alarm_catalogue import (
    AlarmDefinition,
    Comparison,
    Expression,
    GatedRate,
    MetricQuery,
    MissingData,
    Ratio,
)

__all__ = [
    "AlarmState",
    "Verdict",
    "evaluate",
    "evaluation_range",
    "evaluation_times",
    "expression_values",
    "statistic",
    "timestamp",
]


_WORDS = {
    Comparison.GREATER_THAN: "greater than",
    Comparison.GREATER_THAN_OR_EQUAL: "greater than or equal to",
    Comparison.LESS_THAN: "less than",
    Comparison.LESS_THAN_OR_EQUAL: "less than or equal to",
}


class AlarmState(StrEnum):
    OK = "OK"
    ALARM = "ALARM"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


@dataclass(frozen=True, slots=True)
class Verdict:
    state: AlarmState
    reason: str
    breaching: int  # datapoints (real or filled) that breached in the evaluated window
    evaluated: int  # datapoints in the evaluated window


def statistic(values: Sequence[float], name: str) -> float | None:
    """One period's statistic of raw samples (None without samples)."""
    if not values:
        return None
    if name == "Sum":
        return float(sum(values))
    if name == "Average":
        return float(sum(values)) / len(values)
    if name == "SampleCount":
        return float(len(values))
    if name == "Minimum":
        return float(min(values))
    if name == "Maximum":
        return float(max(values))
    if name.startswith("p"):
        ordered = sorted(values)
        rank = math.ceil(float(name[1:]) / 100 * len(ordered))
        return float(ordered[min(max(rank, 1), len(ordered)) - 1])
    raise ValueError(f"unsupported statistic {name!r}")


def evaluation_range(definition: AlarmDefinition) -> int:
    return definition.evaluation_periods + 2


def evaluation_times(now_s: float, period_s: float, count: int) -> list[tuple[float, float]]:
    """The `count` most recent complete periods, oldest first, as (start, end)."""
    end = math.floor(now_s / period_s) * period_s
    return [(end - (count - i) * period_s, end - (count - i - 1) * period_s) for i in range(count)]


def _query(store: MetricStore, query: MetricQuery, periods: Sequence[tuple[float, float]]) -> list[float | None]:
    key = MetricKey.of(query.namespace, query.metric, query.dimensions)
    return [statistic(store.values(key, start, end), query.statistic) for start, end in periods]


def _filled(series: list[float | None]) -> list[float]:
    return [0.0 if value is None else value for value in series]


def expression_values(
    store: MetricStore, expression: Expression, periods: Sequence[tuple[float, float]]
) -> list[float | None]:
    """The expression's value per period (None where CloudWatch would have no datapoint)."""
    if isinstance(expression, MetricQuery):
        return _query(store, expression, periods)
    if isinstance(expression, Ratio):
        numerators = [_query(store, q, periods) for q in expression.numerators]
        denominators = [_query(store, q, periods) for q in expression.denominators]
        if all(v is None for series in (*numerators, *denominators) for v in series):
            return [None] * len(periods)
        nums = [sum(column) for column in zip(*map(_filled, numerators), strict=True)]
        dens = [sum(column) for column in zip(*map(_filled, denominators), strict=True)]
        return [n / d if d > 0 else 0.0 for n, d in zip(nums, dens, strict=True)]
    if isinstance(expression, GatedRate):
        rate, count = _query(store, expression.rate, periods), _query(store, expression.count, periods)
        if all(v is None for v in (*rate, *count)):
            return [None] * len(periods)
        return [r if n >= expression.min_count else 0.0 for r, n in zip(_filled(rate), _filled(count), strict=True)]
    raise TypeError(f"not an alarm catalogue expression: {expression!r}")


def evaluate(
    values: Sequence[float | None],
    *,
    threshold: float,
    comparison: Comparison,
    evaluation_periods: int,
    datapoints_to_alarm: int,
    treat_missing: MissingData,
    current: AlarmState,
) -> Verdict:
    """The alarm's state from its evaluation range (oldest first; None is a missing datapoint)."""
    n, m = evaluation_periods, datapoints_to_alarm
    real = [v for v in values if v is not None]
    words = _WORDS[comparison]
    if not real:
        state = {
            MissingData.MISSING: AlarmState.INSUFFICIENT_DATA,
            MissingData.IGNORE: current,
            MissingData.BREACHING: AlarmState.ALARM,
            MissingData.NOT_BREACHING: AlarmState.OK,
        }[treat_missing]
        return Verdict(state, f"no datapoints in the last {len(values)} periods (missing data: {treat_missing})", 0, 0)
    if len(real) >= n:
        window = real[-n:]
        breaching = sum(comparison.breaches(v, threshold) for v in window)
        evaluated = n
    else:
        window = real
        breaching = sum(comparison.breaches(v, threshold) for v in window)
        filled = n - len(real)
        if treat_missing is MissingData.BREACHING:
            breaching += filled
        evaluated = n if treat_missing in (MissingData.BREACHING, MissingData.NOT_BREACHING) else len(real)
    shown = ", ".join(f"{v:.4g}" for v in window)
    detail = f"{breaching} of the last {evaluated} datapoints [{shown}] were {words} the threshold ({threshold:g})"
    if breaching >= m:
        return Verdict(AlarmState.ALARM, f"Threshold Crossed: {detail}", breaching, evaluated)
    if treat_missing is MissingData.IGNORE and len(real) < n:
        return Verdict(current, f"{detail}; missing data ignored: state kept", breaching, evaluated)
    return Verdict(AlarmState.OK, f"Threshold not crossed: {detail} (minimum {m} to alarm)", breaching, evaluated)


def timestamp(now_s: float) -> str:
    """CloudWatch's timestamp format in state-change events."""
    return datetime.fromtimestamp(now_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
