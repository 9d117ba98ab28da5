"""The dead-letter queue for audit records and quota settlements (URL: `LLMOPS_AUDIT_DLQ_URL`).

`send_*` are the fallbacks the gateway wires into `DynamoAuditLog(dead_letter=...)` and
`DynamoQuotaLedger(on_settle_failure=...)`. `drain` is `llmops audit replay`: it deletes a message
only after its work is durably done (written, or found already written), so a crash mid-drain
replays at most what was not yet deleted, and the idempotent writers make that harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmops.adapters.sqs.dead_letter_transformation import (
    DeadLetterKind,
    audit_message,
    parse_message,
    settlement_message,
)
from llmops.domain.audit import AuditRecord, AuditWriteOutcome
from llmops.domain.quotas import PendingSettlement

__all__ = ["DeadLetterQueue", "DrainReport"]

_log = logging.getLogger(__name__)


@dataclass(slots=True)
class DrainReport:
    received: int = 0
    audit_written: int = 0
    audit_duplicates: int = 0
    settlements_applied: int = 0
    settlements_duplicates: int = 0
    failed: int = 0  # left in the queue for the next drain
    unreadable: int = 0  # left in the queue: needs a newer reader or a human

    def to_json(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class DeadLetterQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        if not queue_url:
            raise ValueError("no dead-letter queue URL (LLMOPS_AUDIT_DLQ_URL)")
        self._client = client
        self._url = queue_url

    def send_audit(self, record: AuditRecord) -> None:
        self._client.send_message(QueueUrl=self._url, **audit_message(record))

    def send_settlement(self, pending: PendingSettlement) -> None:
        self._client.send_message(QueueUrl=self._url, **settlement_message(pending))

    def drain(
        self,
        write_audit: Callable[[AuditRecord], AuditWriteOutcome],
        apply_settlement: Callable[[PendingSettlement], bool],
        *,
        max_messages: int = 10_000,
        visibility_timeout_s: int = 60,
    ) -> DrainReport:
        """`write_audit` is `DynamoAuditLog.write_once`; `apply_settlement` wraps
        `DynamoQuotaLedger.apply_pending` (True = applied now, False = had been applied)."""
        report = DrainReport()
        while report.received < max_messages:
            batch = self._client.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=min(10, max_messages - report.received),
                VisibilityTimeout=visibility_timeout_s,
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not batch:
                break
            for message in batch:
                report.received += 1
                if self._handle(message, write_audit, apply_settlement, report):
                    self._client.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        return report

    def _handle(
        self,
        message: dict[str, Any],
        write_audit: Callable[[AuditRecord], AuditWriteOutcome],
        apply_settlement: Callable[[PendingSettlement], bool],
        report: DrainReport,
    ) -> bool:
        try:
            letter = parse_message(str(message.get("Body", "")))
        except ValueError:
            report.unreadable += 1
            _log.error("unreadable dead-letter message", extra={"message_id": message.get("MessageId")})
            return False
        try:
            if letter.kind is DeadLetterKind.AUDIT and letter.audit is not None:
                outcome = write_audit(letter.audit)
                if outcome is AuditWriteOutcome.DUPLICATE:
                    report.audit_duplicates += 1
                else:
                    report.audit_written += 1
            elif letter.settlement is not None:
                if apply_settlement(letter.settlement):
                    report.settlements_applied += 1
                else:
                    report.settlements_duplicates += 1
        except Exception:  # the message stays queued; any failure here must not stop the drain
            report.failed += 1
            _log.exception("dead-letter replay failed", extra={"request_id": letter.request_id})
            return False
        return True
