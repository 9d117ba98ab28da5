"""The quota ledger against moto (in-process): windows, 429s, settle, release, faults, usage."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from llmops.adapters.dynamodb.audit_log import DynamoAuditLog
from llmops.adapters.dynamodb.call_counter import DynamoCallCounter
from llmops.adapters.dynamodb.quota_ledger import DynamoQuotaLedger
from llmops.adapters.dynamodb.request_books import DynamoRequestBooks
from llmops.adapters.dynamodb.usage_store import DynamoUsageStore
from llmops.adapters.sqs.dead_letter_queue import DeadLetterQueue
from llmops.domain.audit import AuditRecord
from llmops.domain.errors import StoreUnavailableError
from llmops.domain.quotas import (
    Demand,
    InsufficientQuotaError,
    PendingSettlement,
    RateLimitExceededError,
    UsageEntry,
    WindowKind,
    settlement_for,
)
from llmops.domain.tenancy import Limits, TenantContext

NOW = 1_800_000_010.0  # 10 s into a minute
DAY = "2027-01-15"


def ledger_for(dynamodb: Any, names: dict[str, str], **kw: Any) -> DynamoQuotaLedger:
    return DynamoQuotaLedger(dynamodb, names["Quotas"], names["Usage"], sleep=lambda _s: None, **kw)


def used(ledger: DynamoQuotaLedger, ctx: TenantContext) -> dict[tuple[str, str], int]:
    return {(s.scope.value, s.kind.value): s.used for s in ledger.usage(ctx, NOW)}


def throttled(*_a: Any, **_kw: Any) -> Any:
    raise ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
        "TransactWriteItems",
    )


def test_requests_per_minute_admits_up_to_the_limit_then_429_with_retry_after(
    dynamodb: Any, names: dict[str, str]
) -> None:
    ledger = ledger_for(dynamodb, names)
    ctx = TenantContext("acme", "key00001", limits=Limits(requests_per_minute=3))
    for i in range(3):
        ledger.reserve(ctx, f"r{i}", Demand(tokens=10, cost_nanos=0), NOW)
    with pytest.raises(RateLimitExceededError) as info:
        ledger.reserve(ctx, "r3", Demand(tokens=10, cost_nanos=0), NOW)
    assert (info.value.status, info.value.code, info.value.retry_after_s) == (429, "rate_limit_exceeded", 50)
    assert used(ledger, ctx) == {("key", "rpm"): 3}
    # The next minute is a new window.
    ledger.reserve(ctx, "r4", Demand(tokens=10, cost_nanos=0), NOW + 60)


def test_a_rejection_moves_no_window(dynamodb: Any, names: dict[str, str]) -> None:
    ledger = ledger_for(dynamodb, names)
    ctx = TenantContext("acme", "key00001", limits=Limits(requests_per_minute=10, tokens_per_day=100))
    ledger.reserve(ctx, "r1", Demand(tokens=80, cost_nanos=0), NOW)
    with pytest.raises(InsufficientQuotaError) as info:
        ledger.reserve(ctx, "r2", Demand(tokens=30, cost_nanos=0), NOW)
    assert info.value.code == "insufficient_quota"
    assert used(ledger, ctx) == {("key", "rpm"): 1, ("key", "tpd"): 80}


def test_tenant_windows_are_shared_by_all_its_keys(dynamodb: Any, names: dict[str, str]) -> None:
    ledger = ledger_for(dynamodb, names)
    shared = Limits(monthly_budget_usd=0.000001)  # 1000 nano-USD
    a = TenantContext("acme", "key0000a", tenant_limits=shared)
    b = TenantContext("acme", "key0000b", tenant_limits=shared)
    ledger.reserve(a, "r1", Demand(tokens=1, cost_nanos=600), NOW)
    with pytest.raises(InsufficientQuotaError):
        ledger.reserve(b, "r2", Demand(tokens=1, cost_nanos=600), NOW)
    other_tenant = TenantContext("globex", "key0000c", tenant_limits=shared)
    ledger.reserve(other_tenant, "r3", Demand(tokens=1, cost_nanos=600), NOW)


def test_settle_moves_windows_to_actuals_and_records_usage(dynamodb: Any, names: dict[str, str]) -> None:
    ledger = ledger_for(dynamodb, names)
    ctx = TenantContext("acme", "key00001", limits=Limits(requests_per_minute=5, tokens_per_minute=1000))
    reservation = ledger.reserve(ctx, "r1", Demand(tokens=600, cost_nanos=900), NOW)
    assert used(ledger, ctx)[("key", "tpm")] == 600
    usage = UsageEntry("acme", DAY, "chat", input_tokens=100, output_tokens=20, cost_nanos=150)
    outcome = ledger.settle(reservation, Demand(tokens=120, cost_nanos=150), usage, NOW)
    assert outcome.applied and outcome.pending is None
    assert used(ledger, ctx) == {("key", "rpm"): 1, ("key", "tpm"): 120}
    (row,) = DynamoUsageStore(dynamodb, names["Usage"]).daily("acme", DAY, DAY)
    assert (row.alias, row.requests, row.input_tokens, row.output_tokens, row.cost_nanos) == (
        "chat",
        1,
        100,
        20,
        150,
    )
    # The freed tokens are available again.
    ledger.reserve(ctx, "r2", Demand(tokens=880, cost_nanos=0), NOW)


def test_release_returns_the_whole_reservation(dynamodb: Any, names: dict[str, str]) -> None:
    ledger = ledger_for(dynamodb, names)
    ctx = TenantContext("acme", "key00001", limits=Limits(requests_per_minute=1, tokens_per_minute=100))
    reservation = ledger.reserve(ctx, "r1", Demand(tokens=100, cost_nanos=0), NOW)
    assert ledger.release(reservation, NOW).applied
    assert used(ledger, ctx) == {("key", "rpm"): 0, ("key", "tpm"): 0}
    ledger.reserve(ctx, "r2", Demand(tokens=100, cost_nanos=0), NOW)


def test_settling_twice_counts_once(dynamodb: Any, names: dict[str, str]) -> None:
    ledger = ledger_for(dynamodb, names)
    ctx = TenantContext("acme", "key00001", limits=Limits(tokens_per_minute=1000))
    reservation = ledger.reserve(ctx, "r1", Demand(tokens=500, cost_nanos=0), NOW)
    usage = UsageEntry("acme", DAY, "chat", 1, 1, 1)
    assert ledger.settle(reservation, Demand(tokens=2, cost_nanos=1), usage, NOW).applied
    pending = PendingSettlement("r1", "acme", (), usage)
    assert ledger.apply_pending(pending, NOW) is False
    assert used(ledger, ctx)[("key", "tpm")] == 2
    (row,) = DynamoUsageStore(dynamodb, names["Usage"]).daily("acme", DAY, DAY)
    assert row.requests == 1


def test_throttled_reserve_fails_closed_with_503(dynamodb: Any, names: dict[str, str]) -> None:
    ledger = ledger_for(dynamodb, names)
    ctx = TenantContext("acme", "key00001", limits=Limits(requests_per_minute=5))
    with (
        mock.patch.object(dynamodb, "transact_write_items", side_effect=throttled),
        pytest.raises(StoreUnavailableError) as info,
    ):
        ledger.reserve(ctx, "r1", Demand(tokens=1, cost_nanos=0), NOW)
    assert (info.value.status, info.value.code, info.value.retry_after_s) == (503, "quota_unavailable", 1)


def test_unreachable_dynamodb_fails_open_when_the_tenant_allows_and_still_accounts(
    dynamodb: Any, names: dict[str, str]
) -> None:
    ledger = ledger_for(dynamodb, names)
    ctx = TenantContext("acme", "key00001", limits=Limits(requests_per_minute=5), quota_fail_open=True)
    down = EndpointConnectionError(endpoint_url="http://dynamodb")
    with mock.patch.object(dynamodb, "transact_write_items", side_effect=down):
        reservation = ledger.reserve(ctx, "r1", Demand(tokens=1, cost_nanos=0), NOW)
    assert reservation.reserved is False
    assert used(ledger, ctx) == {("key", "rpm"): 0}
    assert ledger.settle(reservation, Demand(tokens=1, cost_nanos=0), None, NOW).applied
    assert used(ledger, ctx) == {("key", "rpm"): 1}


def test_a_failed_settle_is_parked_in_the_dlq_and_replayed_exactly_once(
    dynamodb: Any, names: dict[str, str], sqs: Any, dlq_url: str
) -> None:
    dlq = DeadLetterQueue(sqs, dlq_url)
    ledger = ledger_for(dynamodb, names, on_settle_failure=dlq.send_settlement)
    ctx = TenantContext("acme", "key00001", limits=Limits(tokens_per_minute=1000))
    reservation = ledger.reserve(ctx, "r1", Demand(tokens=700, cost_nanos=0), NOW)
    usage = UsageEntry("acme", DAY, "chat", 90, 10, 5)
    with mock.patch.object(dynamodb, "transact_write_items", side_effect=throttled):
        outcome = ledger.settle(reservation, Demand(tokens=100, cost_nanos=5), usage, NOW)
    assert not outcome.applied
    assert outcome.pending is not None and outcome.pending.reason == "ProvisionedThroughputExceededException"
    assert used(ledger, ctx)[("key", "tpm")] == 700  # still the reservation: nothing lost, nothing applied

    dlq.send_settlement(outcome.pending)  # SQS may deliver twice; replay must not count twice
    audit = DynamoAuditLog(dynamodb, names["Audit"])
    report = dlq.drain(audit.write_once, lambda p: ledger.apply_pending(p, NOW))
    assert (report.settlements_applied, report.settlements_duplicates, report.failed) == (1, 1, 0)
    assert used(ledger, ctx)[("key", "tpm")] == 100
    (row,) = DynamoUsageStore(dynamodb, names["Usage"]).daily("acme", DAY, DAY)
    assert (row.requests, row.input_tokens) == (1, 90)


def test_an_admitted_request_costs_two_writes(dynamodb: Any, names: dict[str, str]) -> None:
    """The reserve, then the settle with the audit record in one transaction (the request path's books)."""
    counter = DynamoCallCounter().attach(dynamodb)
    ledger = ledger_for(dynamodb, names)
    audit = DynamoAuditLog(dynamodb, names["Audit"])
    books = DynamoRequestBooks(ledger, audit)
    ctx = TenantContext(
        "acme",
        "key00001",
        limits=Limits(requests_per_minute=100, tokens_per_minute=10_000, tokens_per_day=100_000, monthly_budget_usd=5),
        tenant_limits=Limits(requests_per_minute=1000, monthly_budget_usd=50),
    )
    reservation = ledger.reserve(ctx, "r1", Demand(tokens=500, cost_nanos=1000), NOW)
    settlement = settlement_for(
        reservation, Demand(tokens=50, cost_nanos=100), UsageEntry("acme", DAY, "chat", 40, 10, 100)
    )
    assert books.settle_and_write(settlement, AuditRecord("r1", "acme", "key00001", NOW, NOW + 1, 200), NOW).applied
    assert counter.writes == 2
    assert ledger.write_calls == 1 and audit.write_calls == 1
    assert counter.calls.get("TransactWriteItems") == 2
    assert used(ledger, ctx)[("key", "tpm")] == 50


def test_usage_shows_only_the_callers_windows(dynamodb: Any, names: dict[str, str]) -> None:
    ledger = ledger_for(dynamodb, names)
    limits = Limits(requests_per_minute=10)
    acme = TenantContext("acme", "key00001", limits=limits)
    globex = TenantContext("globex", "key00001", limits=limits)  # same prefix text, other tenant
    ledger.reserve(acme, "r1", Demand(tokens=1, cost_nanos=0), NOW)
    ledger.reserve(acme, "r2", Demand(tokens=1, cost_nanos=0), NOW)
    (status,) = ledger.usage(globex, NOW)
    assert (status.kind, status.used, status.remaining) == (WindowKind.REQUESTS_PER_MINUTE, 0, 10)
    (status,) = ledger.usage(acme, NOW)
    assert (status.used, status.remaining) == (2, 8)
    assert ledger.usage(TenantContext("acme", "key00001"), NOW) == []
