import json

import pytest

from llmops.adapters.sqs.dead_letter_transformation import (
    DeadLetterKind,
    audit_message,
    parse_message,
    settlement_message,
)
from llmops.domain.audit import AuditRecord, GuardVerdict
from llmops.domain.quotas import (
    Demand,
    PendingSettlement,
    Reservation,
    UsageEntry,
    plan_charges,
    release_deltas,
)
from llmops.domain.tenancy import Limits, TenantContext


def test_audit_records_survive_the_queue() -> None:
    record = AuditRecord(
        "req-1",
        "acme",
        "abcd1234",
        1.5,
        2.5,
        429,
        error_code="rate_limit_exceeded",
        guard=(GuardVerdict("input", "allow", {}),),
    )
    message = audit_message(record)
    assert message["MessageAttributes"]["kind"]["StringValue"] == "audit"
    letter = parse_message(message["MessageBody"])
    assert (letter.kind, letter.request_id, letter.audit) == (DeadLetterKind.AUDIT, "req-1", record)


def test_settlements_survive_the_queue() -> None:
    ctx = TenantContext("acme", "abcd1234", limits=Limits(requests_per_minute=3, tokens_per_minute=90))
    reservation = Reservation("req-2", "acme", "abcd1234", plan_charges(ctx, Demand(10, 0), 1e9), 1e9)
    pending = PendingSettlement(
        "req-2", "acme", release_deltas(reservation), UsageEntry("acme", "2001-09-09", "chat", 1, 1, 1)
    )
    letter = parse_message(settlement_message(pending)["MessageBody"])
    assert (letter.kind, letter.settlement) == (DeadLetterKind.SETTLEMENT, pending)


@pytest.mark.parametrize("body", ["", "{}", json.dumps({"kind": "audit", "payload": {}}), json.dumps({"kind": "x"})])
def test_unreadable_messages_raise_value_error(body: str) -> None:
    with pytest.raises(ValueError, match="unreadable"):
        parse_message(body)
