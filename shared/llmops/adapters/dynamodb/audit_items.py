"""Pure mapping between audit chain entries and Audit table items, and the write transaction.

Per tenant and shard, one partition `audit#<tenant>#<shard>` holds:
- entries, sk `r#<seq, 12 digits>`: `body` (the hashed canonical JSON), `hash`, `request_id`
  (feeds the `by-request` index), `tenant_id`, `expires_at` (TTL);
- the head, sk `head`: `seq`, `hash` and `last_expires_at` of the newest entry. It has no
  `expires_at` so TTL never removes it.
A per-request sentinel `audit-req#<tenant>#<request id>` (sk `req`) points at the entry and makes a
second write of the same request fail inside the same transaction: replays are exactly once, and
reads by request id stay inside the caller's tenant without the (eventually consistent) index.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmops.domain.audit import ChainEntry, ShardHead, StoredEntry

__all__ = [
    "ENTRY_INDEX",
    "HEAD_INDEX",
    "HEAD_SK",
    "SENTINEL_INDEX",
    "SENTINEL_SK",
    "entry_pk",
    "entry_sk",
    "entry_transaction",
    "head_from_item",
    "parse_seq",
    "sentinel_key",
    "stored_entry_from_item",
]

HEAD_SK = "head"
SENTINEL_SK = "req"
_ENTRY_PREFIX = "r#"
_SEQ_DIGITS = 12

# Positions in the write transaction, for reading CancellationReasons.
ENTRY_INDEX, HEAD_INDEX, SENTINEL_INDEX = 0, 1, 2

AttributeValue = dict[str, Any]


def entry_pk(tenant_id: str, shard: int) -> str:
    return f"audit#{tenant_id}#{shard:02d}"


def entry_sk(seq: int) -> str:
    return f"{_ENTRY_PREFIX}{seq:0{_SEQ_DIGITS}d}"


def parse_seq(sort_key: str) -> int | None:
    digits = sort_key.removeprefix(_ENTRY_PREFIX)
    if not sort_key.startswith(_ENTRY_PREFIX) or len(digits) != _SEQ_DIGITS or not digits.isdigit():
        return None
    return int(digits)


def sentinel_key(tenant_id: str, request_id: str) -> dict[str, AttributeValue]:
    return {"pk": {"S": f"audit-req#{tenant_id}#{request_id}"}, "sk": {"S": SENTINEL_SK}}


def entry_transaction(table: str, entry: ChainEntry, previous: ShardHead | None) -> list[dict[str, Any]]:
    """Entry + head move + sentinel: one TransactWriteItems call.

    The head's condition is what serializes writers of one shard: it only moves if it still points
    at the entry this one was chained to.
    """
    record = entry.record
    pk = entry_pk(record.tenant_id, entry.shard)
    head_item = {
        "pk": {"S": pk},
        "sk": {"S": HEAD_SK},
        "seq": {"N": str(entry.seq)},
        "hash": {"S": entry.hash},
        "last_expires_at": {"N": str(record.expires_at)},
    }
    if previous is None:
        head_condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
    else:
        head_condition = {
            "ConditionExpression": "#h = :prev",
            "ExpressionAttributeNames": {"#h": "hash"},
            "ExpressionAttributeValues": {":prev": {"S": previous.hash}},
        }
    return [
        {
            "Put": {
                "TableName": table,
                "Item": {
                    "pk": {"S": pk},
                    "sk": {"S": entry_sk(entry.seq)},
                    "request_id": {"S": record.request_id},
                    "tenant_id": {"S": record.tenant_id},
                    "body": {"S": entry.body},
                    "hash": {"S": entry.hash},
                    "expires_at": {"N": str(record.expires_at)},
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        },
        {"Put": {"TableName": table, "Item": head_item, **head_condition}},
        {
            "Put": {
                "TableName": table,
                "Item": {
                    **sentinel_key(record.tenant_id, record.request_id),
                    "shard": {"N": str(entry.shard)},
                    "seq": {"N": str(entry.seq)},
                    "expires_at": {"N": str(record.expires_at)},
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        },
    ]


def head_from_item(item: Mapping[str, AttributeValue] | None) -> ShardHead | None:
    if item is None:
        return None
    expires = item.get("last_expires_at")
    return ShardHead(
        seq=int(item["seq"]["N"]),
        hash=str(item["hash"]["S"]),
        expires_at=int(expires["N"]) if expires else None,
    )


def stored_entry_from_item(item: Mapping[str, AttributeValue]) -> StoredEntry:
    sort_key = str(item["sk"]["S"])

    def text(name: str) -> str:
        return str(item.get(name, {}).get("S", ""))

    return StoredEntry(
        seq=parse_seq(sort_key),
        sort_key=sort_key,
        body=text("body"),
        hash=text("hash"),
        request_id=text("request_id"),
        tenant_id=text("tenant_id"),
    )
