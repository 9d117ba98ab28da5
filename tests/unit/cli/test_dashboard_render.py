"""`llmops dashboard ... --png`: the catalogue's dashboards drawn from a local metric store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops.adapters.dynamodb.route_source import load_route_document
from llmops.cli.dashboard_render import render_dashboard
from llmops.local.metric_store import MetricStore, parse_emf
from llmops.observability.alarm_catalogue import AlarmSettings
from llmops.observability.dashboard_catalogue import DASHBOARDS, dashboards

NOW = 1_800_000_000.0


def _store() -> MetricStore:
    store = MetricStore()
    for i in range(120):
        record = {
            "_aws": {
                "Timestamp": int((NOW - 120 + i) * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": "LLMOps",
                        "Dimensions": [["service"], ["service", "alias"]],
                        "Metrics": [{"Name": "Requests"}, {"Name": "gen_ai.server.request.duration"}],
                    }
                ],
            },
            "service": "gateway",
            "alias": "llama3-8b",
            "Requests": 1,
            "gen_ai.server.request.duration": [0.1 + (i % 7) / 10],
            "record": "request",
            "request_id": f"r{i}",
            "status": 500 if i % 10 == 0 else 200,
            "error_code": "upstream_unavailable" if i % 10 == 0 else None,
        }
        store.add(parse_emf(record))
        store.records.append(json.loads(json.dumps(record)))
    return store


@pytest.mark.parametrize("name", DASHBOARDS)
def test_each_dashboard_renders_from_the_local_store(tmp_path: Path, name: str) -> None:
    board = dashboards("local", load_route_document(), AlarmSettings())[name]
    alarms = {"llmops-local-latency-p99-llama3-8b": "ALARM", "llmops-local-canary-error-rate-x": "OK"}
    path = render_dashboard(tmp_path / f"{name}.png", board, _store(), alarms=alarms, now=NOW)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 20_000


def test_the_dashboards_are_the_ones_cdk_deploys() -> None:
    boards = dashboards("dev", load_route_document(), AlarmSettings())
    assert [b.name for b in boards.values()] == ["llmops-dev-executive", "llmops-dev-oncall", "llmops-dev-debug"]
    queries = [w.query for b in boards.values() for row in b.rows for w in row if hasattr(w, "query")]
    assert 'filter record = "request" and status >= 500' in " ".join(queries)
