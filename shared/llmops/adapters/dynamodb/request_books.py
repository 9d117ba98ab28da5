"""The `RequestBooks` port on DynamoDB: a request's quota settle and its audit record in one write.

The settle's items (window adjustments, the usage increment, the reservation record's delete and the
settle sentinel: `quota_items.settle_transaction`) ride in the audit record's chain transaction
(entry + head move + request sentinel: `audit_items.entry_transaction`), so after the answer's last
byte an admitted request costs one TransactWriteItems call. The audit log's head cache and its
stale-head retry are unchanged: a cancelled transaction applied nothing, so retrying it with the
fresh head cannot count the settle twice.

When the one write cannot be made, the two go their own ways, as they did before they were joined:
- the settle's sentinel exists (the sweeper released the reservation first, or a replay applied
  it): nothing more to settle; the record is written alone;
- the record's request id is already in the trail: the settle is applied alone;
- anything else (throttling after botocore's retries, a table down, the head never settling): the
  ledger applies the settle (retried, else parked in the dead-letter queue) and the audit log writes
  the record (retried, else dead-lettered), which then says whether the settle is pending.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from botocore.exceptions import BotoCoreError, ClientError

from llmops.adapters.dynamodb.audit_log import AuditWriteFailedError, DynamoAuditLog, SettleAlreadyAppliedError
from llmops.adapters.dynamodb.quota_ledger import DynamoQuotaLedger
from llmops.domain.audit import AuditRecord, AuditWriteOutcome
from llmops.domain.quotas import PendingSettlement, SettleOutcome

__all__ = ["DynamoRequestBooks"]

_log = logging.getLogger(__name__)


class DynamoRequestBooks:
    def __init__(self, ledger: DynamoQuotaLedger, audit: DynamoAuditLog) -> None:
        self._ledger = ledger
        self._audit = audit

    def write(self, record: AuditRecord) -> AuditWriteOutcome:
        return self._audit.write(record)

    def settle_and_write(self, settlement: PendingSettlement, record: AuditRecord, now: float) -> SettleOutcome:
        if settlement.changes_nothing:
            self._audit.write(record)
            return SettleOutcome(applied=True)
        try:
            written = self._audit.write_once(record, settle=self._ledger.settle_transaction(settlement, now))
        except SettleAlreadyAppliedError:
            self._audit.write(record)
            return SettleOutcome(applied=True)
        except (ClientError, BotoCoreError, AuditWriteFailedError) as exc:
            _log.warning(
                "settle with the audit record failed; writing them apart",
                extra={"tenant": record.tenant_id, "request_id": record.request_id, "error": type(exc).__name__},
            )
            settled = self._ledger.apply_or_park(settlement, now)
            self._audit.write(replace(record, settle_pending=not settled.applied))
            return settled
        if written is AuditWriteOutcome.DUPLICATE:
            return self._ledger.apply_or_park(settlement, now)
        return SettleOutcome(applied=True)
