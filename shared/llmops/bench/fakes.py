"""In-memory stand-ins for the quota ledger and the audit log: what "no accounting" means in a benchmark."""

from __future__ import annotations

from dataclasses import dataclass

from llmops.domain.audit import AuditRecord
from llmops.domain.quotas import (
    Actual,
    Demand,
    PendingSettlement,
    Reservation,
    SettleOutcome,
    UsageEntry,
    WindowStatus,
    plan_charges,
)
from llmops.domain.tenancy import TenantContext

__all__ = ["InMemoryAuditSink", "InMemoryLedger"]


class InMemoryLedger:
    """A `QuotaLedger` that plans the same charges as the real one but keeps nothing."""

    def reserve(
        self, tenant: TenantContext, request_id: str, demand: Demand, now: float, *, release_at: int | None = None
    ) -> Reservation:
        return Reservation(request_id, tenant.tenant_id, tenant.key_id, plan_charges(tenant, demand, now), now)

    def settle(self, reservation: Reservation, actual: Actual, usage: UsageEntry | None, now: float) -> SettleOutcome:
        return SettleOutcome(applied=True)

    def release(self, reservation: Reservation, now: float) -> SettleOutcome:
        return SettleOutcome(applied=True)

    def usage(self, tenant: TenantContext, now: float) -> list[WindowStatus]:
        return []


@dataclass(slots=True)
class InMemoryAuditSink:
    """The `RequestBooks` of no accounting: counts the records, keeps nothing."""

    records: int = 0

    def write(self, record: AuditRecord) -> object:
        self.records += 1
        return None

    def settle_and_write(self, settlement: PendingSettlement, record: AuditRecord, now: float) -> SettleOutcome:
        self.records += 1
        return SettleOutcome(applied=True)
