"""Pure request building for the quota ledger: TransactWriteItems for reserve and settle, reads
for `usage`, and decoding of DynamoDB's cancellation reasons. No network here.

Window item (Quotas table): `{pk: Window.item_key, used: N, lim: N, expires_at: N (TTL)}`.
Settle sentinel (Quotas table): `{pk: "settled#<request id>", expires_at}` - put with
`attribute_not_exists` in the settle transaction, so applying the same settle twice (a botocore
retry after a lost response, or a DLQ replay) fails as a whole instead of counting twice.
Usage item (Usage table): `{pk: "tenant#<id>", sk: "<yyyy-mm-dd>#<alias>", requests, input_tokens,
output_tokens, cost_nanos}`, incremented inside the same settle transaction (no extra write call).
Reservation record (Quotas table): `{pk: "reservation#<request id>", sweep_shard: "rsv#NN", release_at,
tenant_id, key_id, charges (JSON), expires_at}` - put by the reserve transaction itself (still one
write call), deleted by the settle transaction; `sweep_transaction` releases one whose request never
settled. Settle and sweep both put the settle sentinel, so whichever comes second changes nothing.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmops.config.tables import RESERVATIONS_INDEX
from llmops.domain.guard import safe_regex
from llmops.domain.quotas import Charge, ExpiredReservation, UsageEntry, Window, WindowDelta

__all__ = [
    "RESERVATION_SHARDS",
    "SETTLE_SENTINEL_TTL_S",
    "SettleTransaction",
    "SweepTransaction",
    "cancellation_codes",
    "expired_reservations_query",
    "reservation_from_item",
    "reservation_record",
    "reservation_record_key",
    "reservation_shard",
    "reserve_transaction",
    "settle_sentinel_key",
    "settle_transaction",
    "sweep_transaction",
    "usage_item_key",
    "used_by_key",
    "window_read_request",
]

SETTLE_SENTINEL_TTL_S = 35 * 86400
# Spreads reservation records over this many index partitions; the sweeper reads each one per run.
RESERVATION_SHARDS = 16

AttributeValue = dict[str, Any]


def _n(value: int) -> AttributeValue:
    return {"N": str(value)}


def reserve_transaction(
    table: str, charges: Sequence[Charge], record: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """One conditional ADD per window: all windows move together or none does.

    The condition `used <= limit - n` admits the request only if it still fits after it is added;
    a missing counter is an empty window. `plan_charges` guarantees n <= limit, so `:room` >= 0.
    `record` (`reservation_record`) rides last in the same transaction, unconditionally, so the
    windows' cancellation reasons keep their indexes.
    """
    updates: list[dict[str, Any]] = [
        {
            "Update": {
                "TableName": table,
                "Key": {"pk": {"S": c.window.item_key}},
                "UpdateExpression": "ADD #used :n SET #exp = if_not_exists(#exp, :exp), #lim = :lim",
                "ConditionExpression": "attribute_not_exists(#used) OR #used <= :room",
                "ExpressionAttributeNames": {"#used": "used", "#exp": "expires_at", "#lim": "lim"},
                "ExpressionAttributeValues": {
                    ":n": _n(c.amount),
                    ":room": _n(c.window.limit - c.amount),
                    ":exp": _n(c.window.expires_at),
                    ":lim": _n(c.window.limit),
                },
            }
        }
        for c in charges
    ]
    if record is not None:
        updates.append({"Put": {"TableName": table, "Item": record}})
    return updates


def reservation_record_key(request_id: str) -> dict[str, AttributeValue]:
    return {"pk": {"S": f"reservation#{request_id}"}}


def reservation_shard(request_id: str) -> str:
    return f"rsv#{zlib.crc32(request_id.encode()) % RESERVATION_SHARDS:02d}"


def reservation_record(
    request_id: str, tenant_id: str, key_id: str, charges: Sequence[Charge], release_at: int
) -> dict[str, Any] | None:
    """What the sweeper needs to give the charges back; None when nothing was charged.

    Its TTL outlives every window it charged: dropping the record earlier would make a leak
    permanent, keeping it longer would release into windows that are gone.
    """
    held = [c for c in charges if c.amount != 0]
    if not held:
        return None
    return {
        **reservation_record_key(request_id),
        "sweep_shard": {"S": reservation_shard(request_id)},
        "release_at": _n(release_at),
        "request_id": {"S": request_id},
        "tenant_id": {"S": tenant_id},
        "key_id": {"S": key_id},
        "charges": {"S": json.dumps([{"window": c.window.to_dict(), "amount": c.amount} for c in held])},
        "expires_at": _n(max(release_at, *(c.window.expires_at for c in held))),
    }


def reservation_from_item(item: Mapping[str, AttributeValue]) -> ExpiredReservation:
    charges = tuple(
        Charge(Window.from_dict(c["window"]), int(c["amount"])) for c in json.loads(str(item["charges"]["S"]))
    )
    return ExpiredReservation(
        request_id=str(item["request_id"]["S"]),
        tenant_id=str(item["tenant_id"]["S"]),
        key_id=str(item["key_id"]["S"]),
        charges=charges,
        release_at=int(item["release_at"]["N"]),
    )


def expired_reservations_query(table: str, shard: int, now: float, limit: int) -> dict[str, Any]:
    """Query (on the sparse index) for one shard's reservations due for release at `now`."""
    return {
        "TableName": table,
        "IndexName": RESERVATIONS_INDEX,
        "KeyConditionExpression": "sweep_shard = :shard AND release_at <= :now",
        "ExpressionAttributeValues": {":shard": {"S": f"rsv#{shard:02d}"}, ":now": _n(int(now))},
        "Limit": limit,
    }


def settle_sentinel_key(request_id: str) -> str:
    return f"settled#{request_id}"


def usage_item_key(entry: UsageEntry) -> dict[str, AttributeValue]:
    return {"pk": {"S": f"tenant#{entry.tenant_id}"}, "sk": {"S": f"{entry.day}#{entry.alias}"}}


@dataclass(frozen=True, slots=True)
class SettleTransaction:
    items: list[dict[str, Any]]
    sentinel_index: int  # its ConditionalCheckFailed means "already applied"


def settle_transaction(
    quotas_table: str,
    usage_table: str,
    *,
    request_id: str,
    deltas: Iterable[WindowDelta],
    usage: UsageEntry | None,
    now: float,
) -> SettleTransaction:
    """Unconditional window adjustments + the usage increment + the idempotency sentinel."""
    items: list[dict[str, Any]] = [
        {
            "Update": {
                "TableName": quotas_table,
                "Key": {"pk": {"S": d.window.item_key}},
                # if_not_exists: a counter TTL already removed must not come back without a TTL.
                "UpdateExpression": "ADD #used :d SET #exp = if_not_exists(#exp, :exp)",
                "ExpressionAttributeNames": {"#used": "used", "#exp": "expires_at"},
                "ExpressionAttributeValues": {":d": _n(d.delta), ":exp": _n(d.window.expires_at)},
            }
        }
        for d in deltas
    ]
    if usage is not None:
        items.append(
            {
                "Update": {
                    "TableName": usage_table,
                    "Key": usage_item_key(usage),
                    "UpdateExpression": "ADD requests :r, input_tokens :i, output_tokens :o, cost_nanos :c",
                    "ExpressionAttributeValues": {
                        ":r": _n(usage.requests),
                        ":i": _n(usage.input_tokens),
                        ":o": _n(usage.output_tokens),
                        ":c": _n(usage.cost_nanos),
                    },
                }
            }
        )
    # The request is done with its reservation; a record that was never written deletes as a no-op.
    items.append({"Delete": {"TableName": quotas_table, "Key": reservation_record_key(request_id)}})
    items.append(_sentinel(quotas_table, request_id, now))
    return SettleTransaction(items=items, sentinel_index=len(items) - 1)


def _sentinel(quotas_table: str, request_id: str, now: float) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": quotas_table,
            "Item": {
                "pk": {"S": settle_sentinel_key(request_id)},
                "expires_at": _n(int(now) + SETTLE_SENTINEL_TTL_S),
            },
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


@dataclass(frozen=True, slots=True)
class SweepTransaction:
    items: list[dict[str, Any]]
    record_index: int  # ConditionalCheckFailed: the request settled (or another sweep won) first
    sentinel_index: int  # ConditionalCheckFailed: the request settled first


def sweep_transaction(quotas_table: str, reservation: ExpiredReservation, now: float) -> SweepTransaction:
    """Releases an expired reservation: its record deleted only if still there and due, its charges
    given back, and the settle sentinel claimed, all at once - so it applies once or not at all."""
    items: list[dict[str, Any]] = [
        {
            "Delete": {
                "TableName": quotas_table,
                "Key": reservation_record_key(reservation.request_id),
                "ConditionExpression": "attribute_exists(pk) AND release_at <= :now",
                "ExpressionAttributeValues": {":now": _n(int(now))},
            }
        },
        *(
            {
                "Update": {
                    "TableName": quotas_table,
                    "Key": {"pk": {"S": c.window.item_key}},
                    "UpdateExpression": "ADD #used :d SET #exp = if_not_exists(#exp, :exp)",
                    "ExpressionAttributeNames": {"#used": "used", "#exp": "expires_at"},
                    "ExpressionAttributeValues": {":d": _n(-c.amount), ":exp": _n(c.window.expires_at)},
                }
            }
            for c in reservation.charges
            if c.amount != 0
        ),
        _sentinel(quotas_table, reservation.request_id, now),
    ]
    return SweepTransaction(items=items, record_index=0, sentinel_index=len(items) - 1)


def window_read_request(table: str, windows: Sequence[Window]) -> dict[str, Any]:
    """BatchGetItem request for the counters of `windows` (at most 8: 4 kinds x key and tenant)."""
    keys = list(dict.fromkeys(w.item_key for w in windows))
    return {
        "RequestItems": {
            table: {
                "Keys": [{"pk": {"S": k}} for k in keys],
                "ConsistentRead": True,
                "ProjectionExpression": "pk, #used",
                "ExpressionAttributeNames": {"#used": "used"},
            }
        }
    }


def used_by_key(items: Iterable[Mapping[str, AttributeValue]]) -> dict[str, int]:
    return {str(item["pk"]["S"]): int(item.get("used", {}).get("N", "0")) for item in items}


_REASONS_IN_MESSAGE = safe_regex.compile(r"\[([^\]]*)\]")


def cancellation_codes(error_response: Mapping[str, Any]) -> list[str]:
    """The per-item reason codes of a TransactionCanceledException, in TransactItems order.

    botocore exposes them as `CancellationReasons`; some emulators only put them in the message
    ("... reasons [ConditionalCheckFailed, None]"), so fall back to parsing that.
    """
    reasons = error_response.get("CancellationReasons")
    if reasons:
        return [str(r.get("Code", "None")) for r in reasons]
    message = str(error_response.get("Error", {}).get("Message", ""))
    match = _REASONS_IN_MESSAGE.search(message)
    if match is None:
        return []
    return [code.strip() for code in match.group(1).split(",")]
