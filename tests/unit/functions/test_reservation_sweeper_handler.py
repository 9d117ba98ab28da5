"""The reservation sweeper Lambda on its schedule event: releases what a killed invocation held."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from llmops.adapters import aws_clients
from llmops.adapters.dynamodb.quota_ledger import DynamoQuotaLedger
from llmops.config.env import EnvVar, Settings
from llmops.domain.quotas import Demand
from llmops.domain.tenancy import Limits, TenantContext
from llmops.local.lambda_runtime import LocalLambdaContext, load_handler_module

EVENT = Path(__file__).resolve().parents[3] / "events" / "reservation_sweeper_schedule.json"
CTX = TenantContext("acme", "key00001", limits=Limits(tokens_per_day=10_000))


def test_the_sweeper_releases_a_due_reservation_and_publishes_the_count(
    aws_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(EnvVar.QUOTAS_TABLE, aws_settings.quotas_table)
    monkeypatch.setenv(EnvVar.USAGE_TABLE, aws_settings.usage_table)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    dynamodb: Any = aws_clients.client("dynamodb", connect_timeout_s=1, read_timeout_s=5, max_attempts=2)
    ledger = DynamoQuotaLedger(dynamodb, aws_settings.quotas_table, aws_settings.usage_table)
    now = time.time()
    ledger.reserve(CTX, "killed-in-flight", Demand(tokens=700, cost_nanos=0), now - 600, release_at=int(now) - 1)

    result = load_handler_module("reservation_sweeper").handler(
        json.loads(EVENT.read_text()), LocalLambdaContext("reservation-sweeper", timeout_s=60)
    )

    assert result == {"released": 1, "already_settled": 0, "tenants": ["acme"]}
    assert [w.used for w in ledger.usage(CTX, now)] == [0]
    out = capsys.readouterr().out
    emf = [json.loads(line) for line in out.splitlines() if '"_aws"' in line]
    assert emf, out
    assert any(
        line.get("ReservationsExpired") == [1.0] and line.get("service") == "reservation-sweeper" for line in emf
    )
