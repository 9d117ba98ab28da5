"""Pure mapping between dead-lettered work and SQS message bodies.

Two kinds share the queue: an audit record whose table write failed, and a quota settlement
(settle or release) the ledger could not apply. Both are replayed by `llmops audit replay`;
both replays are idempotent by request id, so SQS's at-least-once delivery is harmless. Audit
records carry no raw prompt text (only what the tenant's policy allows), so neither does the queue.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from llmops.domain.audit import AuditRecord, canonical_json
from llmops.domain.quotas import PendingSettlement

__all__ = [
    "MESSAGE_VERSION",
    "DeadLetter",
    "DeadLetterKind",
    "audit_message",
    "parse_message",
    "settlement_message",
]

MESSAGE_VERSION = 1


class DeadLetterKind(StrEnum):
    AUDIT = "audit"
    SETTLEMENT = "settlement"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    kind: DeadLetterKind
    request_id: str
    tenant_id: str
    audit: AuditRecord | None = None
    settlement: PendingSettlement | None = None


def _message(kind: DeadLetterKind, request_id: str, tenant_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "MessageBody": canonical_json({"version": MESSAGE_VERSION, "kind": kind.value, "payload": payload}),
        "MessageAttributes": {
            "kind": {"DataType": "String", "StringValue": kind.value},
            "tenant": {"DataType": "String", "StringValue": tenant_id},
            "request_id": {"DataType": "String", "StringValue": request_id},
        },
    }


def audit_message(record: AuditRecord) -> dict[str, Any]:
    """SendMessage arguments (without QueueUrl) for a dead-lettered audit record."""
    return _message(DeadLetterKind.AUDIT, record.request_id, record.tenant_id, record.to_dict())


def settlement_message(pending: PendingSettlement) -> dict[str, Any]:
    return _message(DeadLetterKind.SETTLEMENT, pending.request_id, pending.tenant_id, pending.to_dict())


def parse_message(body: str) -> DeadLetter:
    """Raises ValueError for a body this version cannot read."""
    try:
        data = json.loads(body)
        kind = DeadLetterKind(data["kind"])
        payload = data["payload"]
        if kind is DeadLetterKind.AUDIT:
            record = AuditRecord.from_dict(payload)
            return DeadLetter(kind, record.request_id, record.tenant_id, audit=record)
        pending = PendingSettlement.from_dict(payload)
        return DeadLetter(kind, pending.request_id, pending.tenant_id, settlement=pending)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"unreadable dead-letter message: {exc}") from exc
