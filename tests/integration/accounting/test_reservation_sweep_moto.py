"""Reservations expire on their own (issue 11, item 2): a request killed mid-flight never settles, and
the sweeper gives its charges back once it is due, exactly once, whatever a late settle does."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from llmops.adapters.dynamodb.quota_items import reservation_record_key
from llmops.adapters.dynamodb.quota_ledger import DynamoQuotaLedger
from llmops.config.timeouts import GATEWAY_TIMEOUT_S
from llmops.domain.chat import Usage
from llmops.domain.quotas import (
    RESERVATION_GRACE_S,
    Demand,
    PendingSettlement,
    SweepReport,
    UsageEntry,
    release_at_for,
    settle_deltas,
)
from llmops.domain.routing import Provider, Target
from llmops.domain.tenancy import Limits, TenantContext

NOW = 1_800_000_010.0  # 10 s into a minute
TIMEOUT_S = 29.0
CTX = TenantContext(
    "acme",
    "key00001",
    limits=Limits(requests_per_minute=100, tokens_per_minute=100_000, tokens_per_day=1_000_000, monthly_budget_usd=50),
    tenant_limits=Limits(tokens_per_day=2_000_000),
)
DEMAND = Demand(tokens=1_200, cost_nanos=900_000)
TARGET = Target(
    id="t",
    provider=Provider.BEDROCK,
    model_id="m",
    price_per_1k_input_usd=0.0008,
    price_per_1k_output_usd=0.004,
    context_window=8192,
)


def ledger_for(client: Any, names: dict[str, str]) -> DynamoQuotaLedger:
    return DynamoQuotaLedger(client, names["Quotas"], names["Usage"], sleep=lambda _s: None)


def used(ledger: DynamoQuotaLedger, at: float = NOW) -> dict[tuple[str, str], int]:
    return {(s.scope.value, s.kind.value): s.used for s in ledger.usage(CTX, at)}


def due(now: float = NOW) -> int:
    return release_at_for(now, TIMEOUT_S)


def test_a_reservation_never_settled_is_released_once_it_is_due(dynamodb: Any, names: dict[str, str]) -> None:
    ledger = ledger_for(dynamodb, names)
    before = used(ledger)
    reservation = ledger.reserve(CTX, "killed-1", DEMAND, NOW, release_at=due())
    assert used(ledger)[("key", "tpd")] == DEMAND.tokens  # held while the request may still run

    assert ledger.sweep(NOW + TIMEOUT_S).released == 0  # not due yet: its function could still settle it
    report = ledger.sweep(due() + 1)

    assert (report.released, report.already_settled, report.tenants) == (1, 0, ("acme",))
    assert used(ledger) == {key: before.get(key, 0) for key in used(ledger)}  # every window back where it was
    assert ledger.sweep(due() + 120).released == 0  # exactly once
    # A settlement replayed from the dead-letter queue after the sweep is skipped, not applied on top.
    actual = Demand(tokens=300, cost_nanos=100_000)
    late = PendingSettlement("killed-1", CTX.tenant_id, settle_deltas(reservation, actual), None)
    assert ledger.apply_pending(late, due() + 130) is False
    assert used(ledger)[("key", "tpd")] == 0


def test_settled_and_released_reservations_leave_nothing_to_sweep(dynamodb: Any, names: dict[str, str]) -> None:
    ledger = ledger_for(dynamodb, names)
    settled = ledger.reserve(CTX, "ok-1", DEMAND, NOW, release_at=due())
    released = ledger.reserve(CTX, "failed-1", DEMAND, NOW, release_at=due())
    actual = Demand(tokens=300, cost_nanos=100_000)
    assert ledger.settle(settled, actual, None, NOW + 1).applied
    assert ledger.release(released, NOW + 1).applied

    for request_id in ("ok-1", "failed-1"):
        record = dynamodb.get_item(TableName=names["Quotas"], Key=reservation_record_key(request_id))
        assert "Item" not in record  # deleted in the settle/release transaction itself
    assert ledger.sweep(due() + 1) == SweepReport()  # nothing found
    assert used(ledger)[("key", "tpd")] == actual.tokens


def test_reserve_stays_one_write_call_with_its_record(dynamodb: Any, names: dict[str, str]) -> None:
    ledger = ledger_for(dynamodb, names)
    ledger.reserve(CTX, "r-1", DEMAND, NOW, release_at=due())
    assert ledger.write_calls == 1
    item = dynamodb.get_item(TableName=names["Quotas"], Key=reservation_record_key("r-1"))["Item"]
    assert int(item["release_at"]["N"]) == due()
    assert int(item["expires_at"]["N"]) > due()  # the TTL backstop outlives the sweep


def test_without_a_deadline_the_default_function_timeout_bounds_the_hold(dynamodb: Any, names: dict[str, str]) -> None:
    ledger = ledger_for(dynamodb, names)
    ledger.reserve(CTX, "r-1", DEMAND, NOW)
    # Held for the deployed function's timeout plus the grace, whatever that timeout is today.
    assert ledger.sweep(NOW + GATEWAY_TIMEOUT_S).released == 0
    assert ledger.sweep(NOW + GATEWAY_TIMEOUT_S + RESERVATION_GRACE_S + 1).released == 1


def test_settle_racing_the_sweep_applies_exactly_one_of_them(
    server_client: Callable[[str], Any], server_tables: dict[str, str]
) -> None:
    """Late settles and sweeps at the same moment: per reservation either the actual usage is
    charged (settle won) or nothing is (the sweep won), never both and never neither."""
    ledger = ledger_for(server_client("dynamodb"), server_tables)
    count = 12
    reservations = [ledger.reserve(CTX, f"race-{i}", DEMAND, NOW, release_at=due()) for i in range(count)]
    actual = Demand(tokens=500, cost_nanos=400_000)
    usage = UsageEntry.for_request(CTX.tenant_id, "chat", TARGET, Usage(400, 100), NOW)
    late = due() + 5

    expired = {r.request_id: r for r in ledger.expired_reservations(late)}
    assert len(expired) == count

    def settle(i: int) -> bool:
        pending = PendingSettlement(f"race-{i}", CTX.tenant_id, settle_deltas(reservations[i], actual), usage)
        return ledger.apply_pending(pending, late)

    with ThreadPoolExecutor(8) as pool:
        # Each reservation's settle and sweep are submitted together, so they overlap.
        pairs = [(pool.submit(settle, i), pool.submit(ledger.expire, expired[f"race-{i}"], late)) for i in range(count)]
        outcomes = [(s.result(), e.result()) for s, e in pairs]

    assert all(settled != swept for settled, swept in outcomes), outcomes
    settled = sum(s for s, _ in outcomes)
    windows = used(ledger)
    assert windows[("key", "tpd")] == settled * actual.tokens
    assert windows[("key", "rpm")] == settled
    assert windows[("tenant", "tpd")] == settled * actual.tokens
    assert ledger.sweep(late + 60).released == 0
