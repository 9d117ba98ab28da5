"""Exactness under concurrency: 16 clients race for a window that fits N; exactly N get in.

Runs against the local stack's moto server, whose request handling is serialized by one lock (the
`moto_endpoint` fixture starts `MotoService(serialized=True)`): moto itself races concurrent
conditional writes, which real DynamoDB does not, so without the lock the emulator - not the
ledger - would overshoot.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from llmops.adapters.dynamodb.audit_log import DynamoAuditLog
from llmops.adapters.dynamodb.quota_ledger import DynamoQuotaLedger
from llmops.adapters.dynamodb.request_books import DynamoRequestBooks
from llmops.adapters.dynamodb.usage_store import DynamoUsageStore
from llmops.domain.audit import AuditRecord, AuditWriteOutcome
from llmops.domain.quotas import Demand, RateLimitExceededError, Reservation, SettleOutcome, UsageEntry, settlement_for
from llmops.domain.tenancy import Limits, TenantContext

CLIENTS = 16
ROUNDS = 20
NOW = 1_800_000_010.0


def race(ledger: DynamoQuotaLedger, ctx: TenantContext, demand: Demand, round_no: int) -> list[Reservation]:
    barrier = threading.Barrier(CLIENTS)

    def attempt(i: int) -> Reservation | None:
        barrier.wait()
        try:
            return ledger.reserve(ctx, f"round{round_no}-client{i}", demand, NOW)
        except RateLimitExceededError:
            return None

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(attempt, range(CLIENTS)))
    return [r for r in results if r is not None]


def test_a_request_limit_admits_exactly_n(server_client: Callable[[str], Any], server_tables: dict[str, str]) -> None:
    ledger = DynamoQuotaLedger(server_client("dynamodb"), server_tables["Quotas"], server_tables["Usage"])
    for round_no in range(ROUNDS):
        limit = 1 + round_no % 7  # 1..7, always below the 16 contenders
        ctx = TenantContext("acme", f"rpm{round_no:05d}", limits=Limits(requests_per_minute=limit))
        admitted = race(ledger, ctx, Demand(tokens=1, cost_nanos=0), round_no)
        assert len(admitted) == limit, f"round {round_no}"
        (status,) = ledger.usage(ctx, NOW)
        assert status.used == limit


def test_a_token_limit_admits_exactly_what_fits(
    server_client: Callable[[str], Any], server_tables: dict[str, str]
) -> None:
    ledger = DynamoQuotaLedger(server_client("dynamodb"), server_tables["Quotas"], server_tables["Usage"])
    for round_no in range(ROUNDS):
        n = 3 + round_no % 5
        ctx = TenantContext("acme", f"tpm{round_no:05d}", limits=Limits(tokens_per_minute=n * 100 + 99))
        admitted = race(ledger, ctx, Demand(tokens=100, cost_nanos=0), round_no)
        assert len(admitted) == n, f"round {round_no}"
        (status,) = ledger.usage(ctx, NOW)
        assert status.used == n * 100


def test_concurrent_audit_writers_keep_every_chain_intact(
    server_client: Callable[[str], Any], server_tables: dict[str, str]
) -> None:
    log = DynamoAuditLog(server_client("dynamodb"), server_tables["Audit"], shards=2, chain_attempts=64)
    barrier = threading.Barrier(CLIENTS)

    def write(i: int) -> AuditWriteOutcome:
        barrier.wait()
        return log.write(AuditRecord(f"req-{i}", "acme", "key00001", NOW, NOW + 1, 200))

    with ThreadPoolExecutor(CLIENTS) as pool:
        outcomes = list(pool.map(write, range(CLIENTS * 2)))
    assert outcomes == [AuditWriteOutcome.WRITTEN] * (CLIENTS * 2)
    report = log.verify("acme", NOW)
    assert report.ok and report.records == CLIENTS * 2


def test_concurrent_containers_with_their_own_cached_heads_keep_every_chain_intact(
    server_client: Callable[[str], Any], server_tables: dict[str, str]
) -> None:
    # One DynamoAuditLog per Lambda container: each remembers the heads it wrote, so all but one are
    # stale at every step, and only the head's condition keeps the chains whole.
    logs = [
        DynamoAuditLog(server_client("dynamodb"), server_tables["Audit"], shards=2, chain_attempts=64)
        for _ in range(CLIENTS)
    ]
    barrier = threading.Barrier(CLIENTS)

    def write(i: int) -> list[AuditWriteOutcome]:
        barrier.wait()
        container = logs[i]
        return [container.write(AuditRecord(f"req-{i}-{n}", "acme", "key00001", NOW, NOW + 1, 200)) for n in range(3)]

    with ThreadPoolExecutor(CLIENTS) as pool:
        outcomes = [o for batch in pool.map(write, range(CLIENTS)) for o in batch]
    assert outcomes == [AuditWriteOutcome.WRITTEN] * (CLIENTS * 3)
    report = logs[0].verify("acme", NOW)
    assert report.ok and report.records == CLIENTS * 3


def test_concurrent_containers_settling_with_their_records_keep_quotas_exact_and_chains_intact(
    server_client: Callable[[str], Any], server_tables: dict[str, str]
) -> None:
    # As Lambda runs it: each container settles every request in its audit record's transaction, on
    # the heads it remembers. A stale head cancels the whole transaction, so the retry with the fresh
    # head must apply each settle exactly once and the chains must stay whole.
    ctx = TenantContext("acme", "key00001", limits=Limits(requests_per_minute=10_000, tokens_per_minute=1_000_000))
    day = "2027-01-15"
    containers = []
    for _ in range(CLIENTS):
        client = server_client("dynamodb")
        ledger = DynamoQuotaLedger(client, server_tables["Quotas"], server_tables["Usage"])
        audit = DynamoAuditLog(client, server_tables["Audit"], shards=2, chain_attempts=64)
        containers.append((ledger, audit, DynamoRequestBooks(ledger, audit)))
    barrier = threading.Barrier(CLIENTS)

    def serve(i: int) -> list[SettleOutcome]:
        ledger, _, books = containers[i]
        barrier.wait()
        outcomes = []
        for n in range(3):
            request_id = f"req-{i}-{n}"
            reservation = ledger.reserve(ctx, request_id, Demand(tokens=500, cost_nanos=0), NOW)
            used = 10 + i  # each request's own actual tokens, so a settle applied twice shows in the sum
            usage = UsageEntry("acme", day, "chat", used, 0, 0)
            record = AuditRecord(request_id, "acme", "key00001", NOW, NOW + 1, 200, input_tokens=used)
            outcomes.append(books.settle_and_write(settlement_for(reservation, Demand(used, 0), usage), record, NOW))
        return outcomes

    with ThreadPoolExecutor(CLIENTS) as pool:
        outcomes = [o for batch in pool.map(serve, range(CLIENTS)) for o in batch]
    assert all(o.applied for o in outcomes) and len(outcomes) == CLIENTS * 3
    ledger, audit, _ = containers[0]
    windows = {s.kind.value: s.used for s in ledger.usage(ctx, NOW)}
    assert windows == {"rpm": CLIENTS * 3, "tpm": 3 * sum(10 + i for i in range(CLIENTS))}
    (row,) = DynamoUsageStore(server_client("dynamodb"), server_tables["Usage"]).daily("acme", day, day)
    assert (row.requests, row.input_tokens) == (CLIENTS * 3, 3 * sum(10 + i for i in range(CLIENTS)))
    report = audit.verify("acme", NOW)
    assert report.ok and report.records == CLIENTS * 3
    assert sum(c[1].write_calls for c in containers) > CLIENTS * 3, "stale heads were met and retried"
