"""The local alarm evaluator against CloudWatch's documented semantics, on fixed series.

Series are written as CloudWatch's documentation draws them, oldest first: `0` a datapoint within
the threshold, `X` a breaching one, `-` a missing one. The alarms have 3 evaluation periods and an
evaluation range of 5 (the documentation's example).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from llmops.local.alarm_evaluation import (
    AlarmState,
    evaluate,
    evaluation_times,
    expression_values,
    statistic,
)
from llmops.local.metric_store import EmfStdout, MetricKey, MetricStore, Sample, parse_emf
from llmops.observability.alarm_catalogue import (
    AlarmSettings,
    Comparison,
    GatedRate,
    MissingData,
    canary_gate_definitions,
    catalogue_query,
)
from llmops.observability.metrics import FEEDBACK_NEGATIVE, NAMESPACE, PROVIDER_ERRORS, REQUEST_DURATION, Dim

THRESHOLD = 1.0


def _series(drawn: str) -> list[float | None]:
    return [None if c == "-" else (2.0 if c == "X" else 0.0) for c in drawn.replace(" ", "")]


def _state(drawn: str, treat: MissingData, m: int = 3, current: AlarmState = AlarmState.OK) -> AlarmState:
    return evaluate(
        _series(drawn),
        threshold=THRESHOLD,
        comparison=Comparison.GREATER_THAN,
        evaluation_periods=3,
        datapoints_to_alarm=m,
        treat_missing=treat,
        current=current,
    ).state


A, OK, INS = AlarmState.ALARM, AlarmState.OK, AlarmState.INSUFFICIENT_DATA
M, IG, B, NB = MissingData.MISSING, MissingData.IGNORE, MissingData.BREACHING, MissingData.NOT_BREACHING


@pytest.mark.parametrize(
    ("drawn", "missing", "ignore", "breaching", "not_breaching"),
    [
        # Enough real datapoints in the range: the 3 most recent real ones decide, whatever the treatment.
        ("0 - X - X", OK, OK, OK, OK),
        ("0 X X - X", A, A, A, A),
        ("X X X X X", A, A, A, A),
        ("X X 0 X X", OK, OK, OK, OK),
        # Nothing in the range: the treatment alone decides (ignore keeps the current state, OK here).
        ("- - - - -", INS, OK, A, OK),
        # Fewer than 3: real ones all count, missing ones filled as few times as possible.
        ("- - - - 0", OK, OK, OK, OK),  # breaching fills 2: X X 0 is 2 of 3
        ("- - - X -", OK, OK, A, OK),  # breaching fills 2: 3 of 3
        ("- - X X -", OK, OK, A, OK),
    ],
)
def test_m_of_n_with_each_missing_data_treatment(
    drawn: str,
    missing: AlarmState,
    ignore: AlarmState,
    breaching: AlarmState,
    not_breaching: AlarmState,
) -> None:
    assert [_state(drawn, t) for t in (M, IG, B, NB)] == [missing, ignore, breaching, not_breaching]


def test_ignore_keeps_the_current_state_when_data_is_short_or_absent() -> None:
    assert _state("- - - - -", IG, current=A) is A
    assert _state("- - - 0 -", IG, current=A) is A
    assert _state("- - - 0 -", NB, current=A) is OK


def test_datapoints_to_alarm_fewer_than_evaluation_periods() -> None:
    assert _state("0 0 X 0 X", NB, m=2) is A  # 2 of the last 3 breach
    assert _state("X X 0 0 X", NB, m=2) is OK  # the older breaches are outside the last 3


def test_comparison_operators_and_the_threshold_itself() -> None:
    at = [1.0, 1.0, 1.0]
    common = {"evaluation_periods": 3, "datapoints_to_alarm": 3, "treat_missing": NB, "current": OK}
    assert evaluate(at, threshold=1.0, comparison=Comparison.GREATER_THAN, **common).state is OK
    assert evaluate(at, threshold=1.0, comparison=Comparison.GREATER_THAN_OR_EQUAL, **common).state is A
    assert evaluate(at, threshold=2.0, comparison=Comparison.LESS_THAN, **common).state is A
    reason = evaluate([0.5, 2, 3], threshold=1.0, comparison=Comparison.GREATER_THAN, **common).reason
    assert "2 of the last 3 datapoints [0.5, 2, 3] were greater than the threshold (1)" in reason


def test_statistics() -> None:
    values = [float(v) for v in range(1, 101)]
    assert statistic(values, "Sum") == 5050
    assert statistic(values, "Average") == 50.5
    assert statistic(values, "SampleCount") == 100
    assert (statistic(values, "Minimum"), statistic(values, "Maximum")) == (1, 100)
    assert statistic(values, "p99") == 99
    assert statistic([5.0], "p99") == 5
    assert statistic([], "Sum") is None


def test_periods_are_aligned_and_complete() -> None:
    assert evaluation_times(125.5, 60, 2) == [(0.0, 60.0), (60.0, 120.0)]
    assert evaluation_times(10.0, 2, 3) == [(4.0, 6.0), (6.0, 8.0), (8.0, 10.0)]


def _store(samples: list[tuple[MetricKey, float, float]]) -> MetricStore:
    store = MetricStore()
    store.add(Sample(key, t, v) for key, t, v in samples)
    return store


def _key(spec: str, **dims: str) -> MetricKey:
    return MetricKey.of(NAMESPACE, spec, {"service": "gateway", **dims})


def test_a_ratio_reads_zero_in_idle_periods_once_it_has_data_and_nothing_before() -> None:
    gate = canary_gate_definitions("local", "cand", AlarmSettings())[0]  # error rate
    periods = evaluation_times(10, 1, 5)
    assert expression_values(MetricStore(), gate.expression, periods) == [None] * 5
    errors = _key(PROVIDER_ERRORS.name, target="cand")
    store = _store([(errors, 6.2, 1), (errors, 6.5, 1), (_key("Requests", target="cand"), 8.1, 1)])
    # calls failed over calls: 2 / (0 + 2) at 6 s, 0 / 1 at 8 s, idle periods read 0
    assert expression_values(store, gate.expression, periods) == [0.0, 1.0, 0.0, 0.0, 0.0]


def test_a_percentile_gate_over_request_durations() -> None:
    gate = canary_gate_definitions("local", "cand", AlarmSettings())[1]  # p99 latency
    key = _key(REQUEST_DURATION.name, target="cand")
    store = _store([(key, 5.1, 0.2), (key, 5.2, 20.0), (key, 7.5, 0.1)])
    values = expression_values(store, gate.expression, evaluation_times(8, 1, 3))
    assert values == [20.0, None, 0.1]


def test_the_feedback_trigger_counts_only_periods_with_enough_ratings() -> None:
    ratings = {Dim.ALIAS: "a"}
    expression = GatedRate(
        rate=catalogue_query(FEEDBACK_NEGATIVE, statistic="Average", period_s=1, dimensions=ratings),
        count=catalogue_query(FEEDBACK_NEGATIVE, statistic="SampleCount", period_s=1, dimensions=ratings),
        min_count=3,
        label="rate",
        period_s=1,
    )
    key = _key(FEEDBACK_NEGATIVE.name, alias="a")
    store = _store([(key, 1.1, 1), (key, 1.2, 1), (key, 2.1, 1), (key, 2.2, 1), (key, 2.3, 0)])
    assert expression_values(store, expression, evaluation_times(3, 1, 2)) == [0.0, pytest.approx(2 / 3)]


def test_emf_records_become_one_sample_per_value_and_dimension_set() -> None:
    line = (
        '{"_aws":{"Timestamp":1796283087854,"CloudWatchMetrics":[{"Namespace":"LLMOps","Dimensions":'
        '[["service"],["service","target"]],"Metrics":[{"Name":"Requests","Unit":"Count"}]}]},'
        '"service":"gateway","target":"t","Requests":[1.0,2.0],"request_id":"r"}'
    )
    samples = parse_emf(json.loads(line))
    assert len(samples) == 4
    assert {s.key for s in samples} == {_key("Requests"), _key("Requests", target="t")}
    assert samples[0].timestamp_s == pytest.approx(1796283087.854)
    assert parse_emf({"level": "INFO", "message": "not a metric"}) == []


def test_emf_lines_printed_by_handlers_reach_the_store_and_other_lines_pass_through(tmp_path: Path) -> None:
    out = io.StringIO()
    path = tmp_path / "metrics" / "emf.jsonl"
    stdout = EmfStdout(out, path, echo=False)
    record = {
        "_aws": {
            "Timestamp": 1000,
            "CloudWatchMetrics": [
                {"Namespace": NAMESPACE, "Dimensions": [["service"]], "Metrics": [{"Name": "Requests"}]}
            ],
        },
        "service": "gateway",
        "Requests": 1,
    }
    stdout.write(json.dumps(record, separators=(",", ":"))[:20])  # a line written in pieces
    stdout.write(json.dumps(record, separators=(",", ":"))[20:] + "\n")
    stdout.write('{"level":"WARNING","message":"kept"}\n')
    assert out.getvalue() == '{"level":"WARNING","message":"kept"}\n'
    store = MetricStore(path)
    assert store.refresh() == 1
    assert store.values(_key("Requests"), 0, 2) == [1.0]
    assert store.refresh() == 0  # only what was appended since


def test_the_store_drops_what_no_alarm_reads_any_more() -> None:
    key = _key("Requests")
    store = _store([(key, t, 1.0) for t in (1.0, 2.0, 3.0)])
    assert store.prune(2.5) == 2
    assert store.values(key, 0, 10) == [1.0]
    assert store.prune(10) == 1
    assert store.keys() == []
