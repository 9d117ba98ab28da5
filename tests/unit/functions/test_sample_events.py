"""Every sample event in events/ is accepted by its handler: they are the documented way to invoke
the functions locally, so they must not rot."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from llmops.config.env import Settings
from llmops.local.lambda_runtime import LocalLambdaContext, load_handler_module
from tests.fakes import read_to_end

EVENTS = Path(__file__).resolve().parents[3] / "events"
GATEWAY_EVENTS = [
    "chat_completion",
    "chat_completion_stream",
    "embeddings",
    "list_models",
    "health",
    "guardrails_scan",
    "usage",
]


def _event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


@pytest.mark.parametrize("name", GATEWAY_EVENTS)
def test_gateway_accepts_its_sample_event(gateway: ModuleType, name: str) -> None:
    result = read_to_end(gateway.handler(_event(name), LocalLambdaContext("gateway")))
    assert result["statusCode"] == 200, result["body"]


def test_feedback_event_rates_the_chat_event(gateway: ModuleType) -> None:
    assert gateway.handler(_event("chat_completion"), LocalLambdaContext("gateway"))["statusCode"] == 200
    result = gateway.handler(_event("feedback"), LocalLambdaContext("gateway"))
    assert result["statusCode"] == 200, result["body"]
    assert json.loads(result["body"])["negative"] is False


def test_every_event_file_is_exercised() -> None:
    # reservation_sweeper_schedule is exercised by test_reservation_sweeper_handler.py.
    covered = {
        *GATEWAY_EVENTS,
        "feedback",
        "authorizer_request",
        "drift_monitor_schedule",
        "reservation_sweeper_schedule",
    }
    assert {p.stem for p in EVENTS.glob("*.json")} <= covered


def test_authorizer_allows_the_sample_key_and_refuses_others(aws_settings: Settings) -> None:
    import time

    from llmops.application.wiring import build_authorizer, build_key_store

    event = _event("authorizer_request")
    raw_key = event["headers"]["Authorization"].removeprefix("Bearer ")
    build_key_store(aws_settings).seed(raw_key, "dev", time.time())
    module = load_handler_module("authorizer")
    module._runtime = build_authorizer(aws_settings)
    try:
        policy = module.handler(event, LocalLambdaContext("authorizer"))
        assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"
        assert policy["policyDocument"]["Statement"][0]["Resource"].endswith("/v1/*/*")
        assert policy["context"]["tenant_id"] == "dev"
        bad = {**event, "headers": {"Authorization": "Bearer llmops-nope0000-" + "x" * 40}}
        with pytest.raises(PermissionError, match="Unauthorized"):
            module.handler(bad, LocalLambdaContext("authorizer"))
    finally:
        module._runtime = None


def test_drift_monitor_runs_on_its_schedule_event(
    gateway: ModuleType, aws_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from llmops.config.env import EnvVar

    # One audited chat request, so the monitor has an alias to report on.
    assert gateway.handler(_event("chat_completion"), LocalLambdaContext("gateway"))["statusCode"] == 200
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="llmops-test-artifacts")
    monkeypatch.setenv(EnvVar.AUDIT_TABLE, aws_settings.audit_table)
    monkeypatch.setenv(EnvVar.FEEDBACK_TABLE, aws_settings.feedback_table)
    monkeypatch.setenv(EnvVar.ARTIFACT_BUCKET, "llmops-test-artifacts")
    monkeypatch.setenv(EnvVar.DRIFT_START_RETRAINING, "false")
    result = load_handler_module("drift_monitor").handler(_event("drift_monitor_schedule"), LocalLambdaContext("drift"))
    (outcome,) = result["aliases"]
    assert (outcome["alias"], outcome["baseline_target"]) == ("chat-default", "bedrock-claude-haiku")
    # One recent request and no reference window: too few samples to call drift, so nothing starts.
    assert outcome["drift"]["recent_count"] == 1
    assert outcome["drift"]["reference_count"] == 0
    assert outcome["drift"]["sufficient"] is False
    assert (outcome["ratings"], outcome["retraining"], outcome["execution_name"]) == (0, "not_needed", None)
