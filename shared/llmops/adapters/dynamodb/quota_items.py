"""Pure request building for the quota ledger: TransactWriteItems for reserve and settle, reads
for `usage`, and decoding of DynamoDB's cancellation reasons. No network here.

Window item (Quotas table): `{pk: Window.item_key, used: N, lim: N, expires_at: N (TTL)}`.
Settle sentinel (Quotas table): `{pk: "settled#<request id>", expires_at}` - put with
`attribute_not_exists` in the settle transaction, so applying the same settle twice (a botocore
retry after a lost response, or a DLQ replay) fails as a whole instead of counting twice.
Usage item (Usage table): `{pk: "tenant#<id>", sk: "<yyyy-mm-dd>#<alias>", requests, input_tokens,
output_tokens, cost_nanos}`, incremented inside the same settle transaction (no extra write call).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmops.domain.quotas import Charge, UsageEntry, Window, WindowDelta

__all__ = [
    "SETTLE_SENTINEL_TTL_S",
    "SettleTransaction",
    "cancellation_codes",
    "reserve_transaction",
    "settle_sentinel_key",
    "settle_transaction",
    "usage_item_key",
    "used_by_key",
    "window_read_request",
]

SETTLE_SENTINEL_TTL_S = 35 * 86400

AttributeValue = dict[str, Any]


def _n(value: int) -> AttributeValue:
    return {"N": str(value)}


def reserve_transaction(table: str, charges: Sequence[Charge]) -> list[dict[str, Any]]:
    """One conditional ADD per window: all windows move together or none does.

    The condition `used <= limit - n` admits the request only if it still fits after it is added;
    a missing counter is an empty window. `plan_charges` guarantees n <= limit, so `:room` >= 0.
    """
    return [
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
    items.append(
        {
            "Put": {
                "TableName": quotas_table,
                "Item": {
                    "pk": {"S": settle_sentinel_key(request_id)},
                    "expires_at": _n(int(now) + SETTLE_SENTINEL_TTL_S),
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
    )
    return SettleTransaction(items=items, sentinel_index=len(items) - 1)


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


_REASONS_IN_MESSAGE = re.compile(r"\[([^\]]*)\]")


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
