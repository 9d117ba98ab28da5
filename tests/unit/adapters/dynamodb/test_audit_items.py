from llmops.adapters.dynamodb.audit_items import (
    ENTRY_INDEX,
    HEAD_INDEX,
    SENTINEL_INDEX,
    entry_pk,
    entry_transaction,
    head_from_item,
    parse_seq,
    stored_entry_from_item,
)
from llmops.domain.audit import AuditRecord, chain_entry

RECORD = AuditRecord("req-1", "acme", "abcd1234", 1_800_000_000.0, 1_800_000_001.0, 200)


def test_keys_are_per_tenant_shard_and_sequence() -> None:
    assert entry_pk("acme", 3) == "audit#acme#03"
    assert parse_seq("r#000000000042") == 42
    assert parse_seq("head") is None
    assert parse_seq("r#42") is None
    assert parse_seq("r#00000000004x") is None


def test_first_write_creates_the_head_and_later_writes_are_conditional_on_it() -> None:
    first = chain_entry(RECORD, 3, None)
    items = entry_transaction("audit", first, None)
    entry, head, sentinel = items[ENTRY_INDEX]["Put"], items[HEAD_INDEX]["Put"], items[SENTINEL_INDEX]["Put"]
    assert entry["Item"]["sk"] == {"S": "r#000000000001"}
    assert entry["Item"]["request_id"] == {"S": "req-1"}
    assert entry["Item"]["expires_at"] == {"N": str(RECORD.expires_at)}
    assert head["ConditionExpression"] == "attribute_not_exists(pk)"
    assert "expires_at" not in head["Item"]  # TTL must never remove a head
    assert sentinel["Item"]["pk"] == {"S": "audit-req#acme#req-1"}
    assert sentinel["ConditionExpression"] == "attribute_not_exists(pk)"

    second = chain_entry(AuditRecord("req-2", "acme", "k", 1.0, 2.0, 200), 3, first.head)
    head2 = entry_transaction("audit", second, first.head)[HEAD_INDEX]["Put"]
    assert head2["ConditionExpression"] == "#h = :prev"
    assert head2["ExpressionAttributeValues"] == {":prev": {"S": first.hash}}
    assert head_from_item(head2["Item"]) == second.head


def test_stored_entries_are_read_back_untrusted() -> None:
    entry = chain_entry(RECORD, 0, None)
    item = entry_transaction("audit", entry, None)[ENTRY_INDEX]["Put"]["Item"]
    stored = stored_entry_from_item(item)
    assert (stored.seq, stored.body, stored.hash, stored.request_id) == (1, entry.body, entry.hash, "req-1")
    assert head_from_item(None) is None
