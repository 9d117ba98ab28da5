"""The streaming metrics in the EMF output: TTFT and time per output token, per alias and per target,
in seconds, for streamed requests only."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools import Metrics

from llmops.domain.request_trace import RequestTrace
from llmops.domain.tenancy import TenantContext
from llmops.observability.emit import emit_request_metrics
from llmops.observability.metrics import NAMESPACE, TIME_PER_OUTPUT_TOKEN, TIME_TO_FIRST_TOKEN

TENANT = TenantContext(tenant_id="tenant-acme", key_id="sk-abc123")
TTFT = TIME_TO_FIRST_TOKEN.name
TPOT = TIME_PER_OUTPUT_TOKEN.name


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(namespace=NAMESPACE, service="gateway")


def _trace(**changes: Any) -> RequestTrace:
    trace = RequestTrace(request_id="req-1", tenant=TENANT, started_at=1_000.0)
    trace.alias, trace.target, trace.provider = "chat-default", "bedrock-nova-lite", "bedrock"
    trace.attempts, trace.input_tokens, trace.output_tokens = 1, 120, 30
    for name, value in changes.items():
        setattr(trace, name, value)
    return trace


def _emit(metrics: Metrics, capsys: pytest.CaptureFixture[str], trace: RequestTrace) -> list[dict[str, Any]]:
    emit_request_metrics(metrics, trace, clock=lambda: 1_002.5)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return [line for line in lines if "_aws" in line]


def _published(records: list[dict[str, Any]], metric: str) -> list[tuple[str, dict[str, str], list[Any]]]:
    """(unit, dimensions, value) of `metric` in every dimension set it was published under."""
    rows = []
    for record in records:
        directive = record["_aws"]["CloudWatchMetrics"][0]
        for declared in directive["Metrics"]:
            if declared["Name"] != metric:
                continue
            for dims in directive["Dimensions"]:
                value = record[metric]
                rows.append(
                    (declared["Unit"], {d: record[d] for d in dims}, value if isinstance(value, list) else [value])
                )
    return rows


def test_a_streamed_request_publishes_ttft_and_tpot_in_seconds_per_service_alias_and_target(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:
    records = _emit(metrics, capsys, _trace(streamed=True, ttft_ms=182.0, time_per_output_token_ms=21.5))

    expected_dims = [
        {"service": "gateway"},
        {"service": "gateway", "alias": "chat-default"},
        {"service": "gateway", "target": "bedrock-nova-lite"},
    ]
    assert _published(records, TTFT) == [("Seconds", dims, [pytest.approx(0.182)]) for dims in expected_dims]
    assert _published(records, TPOT) == [("Seconds", dims, [pytest.approx(0.0215)]) for dims in expected_dims]
    (request,) = [r for r in records if r.get("record") == "request"]
    assert request["streamed"] is True
    assert request["ttft_ms"] == 182.0


def test_a_buffered_request_publishes_neither_even_with_times_set(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:
    records = _emit(metrics, capsys, _trace(streamed=False, ttft_ms=182.0, time_per_output_token_ms=21.5))

    assert _published(records, TTFT) == []
    assert _published(records, TPOT) == []
    assert "ttft_ms" not in next(r for r in records if r.get("record") == "request")


def test_a_stream_that_never_wrote_a_token_publishes_no_ttft(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:
    records = _emit(metrics, capsys, _trace(streamed=True, status=502, error_code="upstream_unavailable"))

    assert _published(records, TTFT) == []
    assert _published(records, TPOT) == []


def test_a_one_token_stream_publishes_ttft_without_tpot(metrics: Metrics, capsys: pytest.CaptureFixture[str]) -> None:
    records = _emit(metrics, capsys, _trace(streamed=True, ttft_ms=95.0, output_tokens=1))

    assert [value for _, _, value in _published(records, TTFT)] == [[pytest.approx(0.095)]] * 3
    assert _published(records, TPOT) == []


def test_an_unrouted_streamed_request_publishes_ttft_for_the_service_only(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:
    # A cache hit on a stream: no target, no attempt, so the alias is not a dimension either.
    records = _emit(metrics, capsys, _trace(streamed=True, ttft_ms=12.0, target="", attempts=0, cache="hit"))

    assert [dims for _, dims, _ in _published(records, TTFT)] == [{"service": "gateway"}]
