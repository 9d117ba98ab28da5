"""Dashboards: executive, on-call and debug exist with the widgets the seed documents ask for,
built only from catalogued metrics, with Logs Insights queries that read no text fields."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import routes_document
from llmops.domain.stages import RequestStage
from llmops.observability.metrics import NAMESPACE, metric_spec

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cdk-synth")]

EXPECTED_WIDGETS = {
    "executive": [
        "Availability (dashboard range)",
        "Model spend, USD (dashboard range)",
        "Availability per day (%)",
        "Model spend per day by alias (USD)",
        "Top errors (status, error code)",
        "Guard trend: blocks and redactions per day",
        "Feedback trend: ratings and negative rate per day",
    ],
    "oncall": [
        "Alarms",
        "p99 latency by alias (s)",
        "Error rate (%)",
        "Time to first token p50 / p99 by alias (s, streamed)",
        "Output tokens per second by alias",
        "Canary gates (failed canaries are in ALARM)",
        "Guard blocks and bypasses",
        "Routing failures and fallbacks",
        "Provider errors and throttles",
    ],
    "debug": [
        "Per-stage latency p50 (ms)",
        "Per-stage latency p99 (ms)",
        "Time to first token p50 / p99 by target (s, streamed)",
        "Output tokens per second by target (p50 stream)",
        "Tokens by alias: input",
        "Tokens by alias: output",
        "Fallbacks by alias",
        "Response cache",
        "Recent failed requests (5xx)",
        "Recent feedback",
    ],
}


@pytest.fixture(scope="module", params=["dev", "prod"])
def synth(request: pytest.FixtureRequest, synthesized: Any) -> Any:
    return synthesized(request.param)


def _flatten(value: Any) -> str:
    """A dashboard body with tokens replaced by placeholders that keep the JSON valid."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_flatten(p) for p in parts)
    return "TOKEN"


def _dashboards(synth: Any) -> dict[str, dict[str, Any]]:
    bodies = {}
    for resource in synth.resources("AWS::CloudWatch::Dashboard").values():
        props = resource["Properties"]
        bodies[props["DashboardName"]] = json.loads(_flatten(props["DashboardBody"]))
    return bodies


def _widgets(body: dict[str, Any]) -> list[dict[str, Any]]:
    return list(body["widgets"])


def test_the_three_dashboards_exist_with_the_expected_widgets(synth: Any) -> None:
    dashboards = _dashboards(synth)
    assert set(dashboards) == {f"llmops-{synth.stage}-{kind}" for kind in EXPECTED_WIDGETS}
    for kind, titles in EXPECTED_WIDGETS.items():
        present = {w["properties"].get("title") for w in _widgets(dashboards[f"llmops-{synth.stage}-{kind}"])}
        assert set(titles) <= present, (kind, set(titles) - present)


def test_p99_latency_has_a_line_per_alias(synth: Any) -> None:
    oncall = _dashboards(synth)[f"llmops-{synth.stage}-oncall"]
    (widget,) = [w for w in _widgets(oncall) if w["properties"].get("title") == "p99 latency by alias (s)"]
    lines = widget["properties"]["metrics"]
    assert sorted(line[-1]["label"] for line in lines) == sorted(routes_document()["routes"])
    assert all(line[-1]["stat"] == "p99" for line in lines)


def _widget(synth: Any, kind: str, title: str) -> dict[str, Any]:
    (widget,) = [
        w for w in _widgets(_dashboards(synth)[f"llmops-{synth.stage}-{kind}"]) if w["properties"].get("title") == title
    ]
    return widget


@pytest.mark.parametrize(
    ("kind", "title", "dimension", "names"),
    [
        ("oncall", "Time to first token p50 / p99 by alias (s, streamed)", "alias", "routes"),
        ("debug", "Time to first token p50 / p99 by target (s, streamed)", "target", "targets"),
    ],
)
def test_ttft_has_a_p50_and_a_p99_line_per_alias_or_target(
    synth: Any, kind: str, title: str, dimension: str, names: str
) -> None:
    lines = _widget(synth, kind, title)["properties"]["metrics"]
    assert {line[1] for line in lines} == {"gen_ai.server.time_to_first_token"}
    got = sorted((line[line.index(dimension) + 1], line[-1]["stat"]) for line in lines)
    assert got == sorted((name, stat) for name in routes_document()[names] for stat in ("p50", "p99"))


@pytest.mark.parametrize(
    ("kind", "title", "names"),
    [
        ("oncall", "Output tokens per second by alias", "routes"),
        ("debug", "Output tokens per second by target (p50 stream)", "targets"),
    ],
)
def test_tokens_per_second_is_the_inverse_of_the_median_time_per_output_token(
    synth: Any, kind: str, title: str, names: str
) -> None:
    lines = _widget(synth, kind, title)["properties"]["metrics"]
    expressions = [line[0]["expression"] for line in lines if isinstance(line[0], dict) and "expression" in line[0]]
    inverses = [e for e in expressions if "1 / tpot" in e]
    assert len(inverses) == len(routes_document()[names])
    hidden = [line for line in lines if isinstance(line[0], str)]
    assert {line[1] for line in hidden if line[1].startswith("gen_ai.server")} == {
        "gen_ai.server.time_per_output_token"
    }
    assert all(line[-1]["stat"] == "p50" for line in hidden if line[1] == "gen_ai.server.time_per_output_token")
    if kind == "oncall":
        assert any("PERIOD(out_tokens)" in e for e in expressions)


@pytest.mark.parametrize("title", ["Per-stage latency p50 (ms)", "Per-stage latency p99 (ms)"])
def test_per_stage_latency_has_a_line_per_request_stage(synth: Any, title: str) -> None:
    debug = _dashboards(synth)[f"llmops-{synth.stage}-debug"]
    (widget,) = [w for w in _widgets(debug) if w["properties"].get("title") == title]
    stages = [line[line.index("stage") + 1] for line in widget["properties"]["metrics"]]
    assert stages == [stage.value for stage in RequestStage]  # request order, `route` included


def test_dashboard_metrics_are_catalogued_with_their_dimension_sets(synth: Any) -> None:
    checked = 0
    for body in _dashboards(synth).values():
        for widget in _widgets(body):
            for line in widget["properties"].get("metrics", []):
                names = [part for part in line if isinstance(part, str)]
                if not names or names[0] != NAMESPACE:
                    continue
                metric, pairs = names[1], names[2:]
                dims = set(pairs[0::2])
                assert metric_spec(metric).has_dimensions(dims), (metric, dims)
                assert "tenant" not in " ".join(dims)
                checked += 1
    assert checked > 50


def test_logs_insights_widgets_read_ids_and_codes_never_text(synth: Any) -> None:
    queries = [
        w["properties"]["query"] for body in _dashboards(synth).values() for w in _widgets(body) if w["type"] == "log"
    ]
    assert len(queries) >= 3
    for query in queries:
        assert "record =" in query
        for forbidden in ("prompt", "completion", "comment", "tenant", "@message"):
            assert forbidden not in query
