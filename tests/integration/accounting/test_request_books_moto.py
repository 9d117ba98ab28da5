"""A request's settle and its audit record in one DynamoDB transaction (issue 17, point 2), against
moto in-process: one write after the answer, the settle applied exactly once whatever the chain head
did, and each way the one write can fail handled as the two writes were before."""

from __future__ import annotations

from typing import Any
from unittest import mock

from botocore.exceptions import ClientError

from llmops.adapters.dynamodb.audit_log import DynamoAuditLog
from llmops.adapters.dynamodb.call_counter import DynamoCallCounter
from llmops.adapters.dynamodb.quota_ledger import DynamoQuotaLedger
from llmops.adapters.dynamodb.request_books import DynamoRequestBooks
from llmops.adapters.dynamodb.usage_store import DynamoUsageStore
from llmops.domain.audit import AuditRecord, AuditWriteOutcome
from llmops.domain.quotas import Demand, Reservation, UsageEntry, release_for, settlement_for
from llmops.domain.tenancy import Limits, TenantContext

NOW = 1_800_000_010.0  # 10 s into a minute
DAY = "2027-01-15"
SHARDS = 2
CTX = TenantContext(
    "acme",
    "key00001",
    limits=Limits(requests_per_minute=100, tokens_per_minute=10_000, tokens_per_day=100_000, monthly_budget_usd=5),
    tenant_limits=Limits(requests_per_minute=1000, monthly_budget_usd=50),
)
ACTUAL = Demand(tokens=50, cost_nanos=100)


def ledger_for(dynamodb: Any, names: dict[str, str]) -> DynamoQuotaLedger:
    return DynamoQuotaLedger(dynamodb, names["Quotas"], names["Usage"], sleep=lambda _s: None)


def container(dynamodb: Any, names: dict[str, str]) -> tuple[DynamoQuotaLedger, DynamoAuditLog, DynamoRequestBooks]:
    """One Lambda container's ledger, audit log (with its own head cache) and books."""
    ledger = ledger_for(dynamodb, names)
    audit = DynamoAuditLog(dynamodb, names["Audit"], shards=SHARDS, sleep=lambda _s: None)
    return ledger, audit, DynamoRequestBooks(ledger, audit)


def record(request_id: str) -> AuditRecord:
    return AuditRecord(request_id, "acme", "key00001", NOW, NOW + 1, 200, input_tokens=40, output_tokens=10)


def usage_entry() -> UsageEntry:
    return UsageEntry("acme", DAY, "chat", 40, 10, 100)


def used(ledger: DynamoQuotaLedger) -> dict[tuple[str, str], int]:
    return {(s.scope.value, s.kind.value): s.used for s in ledger.usage(CTX, NOW)}


def reserve(ledger: DynamoQuotaLedger, request_id: str) -> Reservation:
    return ledger.reserve(CTX, request_id, Demand(tokens=500, cost_nanos=1000), NOW)


def test_an_admitted_request_costs_the_reserve_and_one_transaction(dynamodb: Any, names: dict[str, str]) -> None:
    ledger, audit, books = container(dynamodb, names)
    audit.write(record("warm-up"))  # this container now knows the shard heads it wrote
    reservation = reserve(ledger, "r1")
    counter = DynamoCallCounter().attach(dynamodb)

    outcome = books.settle_and_write(settlement_for(reservation, ACTUAL, usage_entry()), record("r1"), NOW)

    assert outcome.applied and outcome.pending is None
    assert counter.writes == 1 and counter.calls.get("TransactWriteItems") == 1
    assert used(ledger)[("key", "tpm")] == ACTUAL.tokens
    assert used(ledger)[("key", "usd_month")] == ACTUAL.cost_nanos
    (row,) = DynamoUsageStore(dynamodb, names["Usage"]).daily("acme", DAY, DAY)
    assert (row.requests, row.input_tokens, row.output_tokens) == (1, 40, 10)
    got = audit.get("acme", "r1")
    assert got is not None and not got.settle_pending
    assert audit.verify("acme", NOW).ok


def test_a_stale_head_is_refreshed_and_the_settle_still_counts_once(dynamodb: Any, names: dict[str, str]) -> None:
    ledger, audit, books = container(dynamodb, names)
    _, other_audit, other_books = container(dynamodb, names)
    ids = [f"r{i}" for i in range(12)]
    for i, request_id in enumerate(ids):
        # Alternate containers: each one's remembered heads are stale whenever the other wrote last.
        writer = books if i % 3 else other_books
        reservation = reserve(ledger, request_id)
        assert writer.settle_and_write(settlement_for(reservation, ACTUAL, usage_entry()), record(request_id), NOW)
    assert used(ledger)[("key", "tpm")] == len(ids) * ACTUAL.tokens, "each settle applied exactly once"
    assert used(ledger)[("key", "rpm")] == len(ids)
    (row,) = DynamoUsageStore(dynamodb, names["Usage"]).daily("acme", DAY, DAY)
    assert row.requests == len(ids)
    report = audit.verify("acme", NOW)
    assert report.ok and report.records == len(ids)
    assert audit.write_calls + other_audit.write_calls > len(ids), "some heads were stale and retried"


def test_a_release_rides_with_the_record_too(dynamodb: Any, names: dict[str, str]) -> None:
    ledger, audit, books = container(dynamodb, names)
    reservation = reserve(ledger, "failed")
    assert books.settle_and_write(release_for(reservation), record("failed"), NOW).applied
    assert used(ledger) == {
        ("key", "rpm"): 0,
        ("key", "tpm"): 0,
        ("key", "tpd"): 0,
        ("key", "usd_month"): 0,
        ("tenant", "rpm"): 0,
        ("tenant", "usd_month"): 0,
    }
    assert audit.get("acme", "failed") is not None


def test_a_settle_the_sweeper_got_to_first_is_not_applied_and_the_record_is_still_written(
    dynamodb: Any, names: dict[str, str]
) -> None:
    ledger, audit, books = container(dynamodb, names)
    reservation = reserve(ledger, "late")
    assert ledger.release(reservation, NOW).applied  # what the sweeper does to an expired reservation
    outcome = books.settle_and_write(settlement_for(reservation, ACTUAL, usage_entry()), record("late"), NOW)
    assert outcome.applied
    assert used(ledger)[("key", "tpm")] == 0, "released once, not settled on top"
    assert audit.get("acme", "late") is not None
    assert audit.verify("acme", NOW).ok


def test_a_request_already_in_the_trail_is_settled_alone(dynamodb: Any, names: dict[str, str]) -> None:
    ledger, audit, books = container(dynamodb, names)
    reservation = reserve(ledger, "again")
    assert audit.write(record("again")) is AuditWriteOutcome.WRITTEN
    assert books.settle_and_write(settlement_for(reservation, ACTUAL, usage_entry()), record("again"), NOW).applied
    assert used(ledger)[("key", "tpm")] == ACTUAL.tokens
    report = audit.verify("acme", NOW)
    assert report.ok and report.records == 1


def test_when_the_one_write_fails_the_two_are_written_apart(dynamodb: Any, names: dict[str, str]) -> None:
    ledger, audit, books = container(dynamodb, names)
    reservation = reserve(ledger, "apart")
    real = dynamodb.transact_write_items
    audit_table = names["Audit"]

    def audit_table_throttled(**kwargs: Any) -> Any:
        if any(audit_table in str(item) for item in kwargs["TransactItems"]):
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                "TransactWriteItems",
            )
        return real(**kwargs)

    written: list[AuditRecord] = []
    with (
        mock.patch.object(dynamodb, "transact_write_items", side_effect=audit_table_throttled),
        mock.patch.object(audit, "write", side_effect=lambda r: written.append(r) or AuditWriteOutcome.DEAD_LETTERED),
    ):
        outcome = books.settle_and_write(settlement_for(reservation, ACTUAL, usage_entry()), record("apart"), NOW)
    assert outcome.applied, "the settle went through on its own"
    assert used(ledger)[("key", "tpm")] == ACTUAL.tokens
    (kept,) = written
    assert kept.request_id == "apart" and not kept.settle_pending


def test_when_every_table_fails_the_record_says_the_settle_is_pending(dynamodb: Any, names: dict[str, str]) -> None:
    ledger, audit, books = container(dynamodb, names)
    reservation = reserve(ledger, "down")
    down = ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "TransactWriteItems")
    written: list[AuditRecord] = []
    with (
        mock.patch.object(dynamodb, "transact_write_items", side_effect=down),
        mock.patch.object(audit, "write", side_effect=lambda r: written.append(r) or AuditWriteOutcome.DEAD_LETTERED),
    ):
        outcome = books.settle_and_write(settlement_for(reservation, ACTUAL, usage_entry()), record("down"), NOW)
    assert not outcome.applied and outcome.pending is not None
    (kept,) = written
    assert kept.settle_pending
    assert used(ledger)[("key", "tpm")] == 500, "still the reservation: nothing applied, nothing lost"


def test_contended_quota_windows_are_retried_on_the_same_head(dynamodb: Any, names: dict[str, str]) -> None:
    ledger, audit, books = container(dynamodb, names)
    for i in range(8):  # both shards: this container knows every head
        audit.write(record(f"warm-up-{i}"))
    assert audit.head_reads == SHARDS
    reservation = reserve(ledger, "busy")
    real = dynamodb.transact_write_items
    calls: list[int] = []

    def conflict_once(**kwargs: Any) -> Any:
        calls.append(len(kwargs["TransactItems"]))
        if len(calls) == 1:  # another request's settle or reserve held a window this one adjusts
            reasons = [{"Code": "None"}] * len(kwargs["TransactItems"])
            reasons[3] = {"Code": "TransactionConflict"}
            raise ClientError(
                {"Error": {"Code": "TransactionCanceledException", "Message": "x"}, "CancellationReasons": reasons},
                "TransactWriteItems",
            )
        return real(**kwargs)

    with mock.patch.object(dynamodb, "transact_write_items", side_effect=conflict_once):
        assert books.settle_and_write(settlement_for(reservation, ACTUAL, usage_entry()), record("busy"), NOW).applied
    assert len(calls) == 2 and audit.head_reads == SHARDS, "retried on the head it had, without a read"
    assert used(ledger)[("key", "tpm")] == ACTUAL.tokens
    assert audit.verify("acme", NOW).ok
