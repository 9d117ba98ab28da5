"""Reads of the Usage table (spend per tenant, alias and day). Writes happen in the quota settle
transaction (see `quota_items.settle_transaction`), never here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmops.domain.quotas import NANOS_PER_USD

__all__ = ["DailyUsage", "DynamoUsageStore", "daily_usage_from_item"]


@dataclass(frozen=True, slots=True)
class DailyUsage:
    tenant_id: str
    day: str  # yyyy-mm-dd
    alias: str
    requests: int
    input_tokens: int
    output_tokens: int
    cost_nanos: int

    @property
    def cost_usd(self) -> float:
        return self.cost_nanos / NANOS_PER_USD

    def to_json(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "alias": self.alias,
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": round(self.cost_usd, 9),
        }


def daily_usage_from_item(item: Mapping[str, Any]) -> DailyUsage:
    day, _, alias = str(item["sk"]["S"]).partition("#")

    def number(name: str) -> int:
        return int(item.get(name, {}).get("N", "0"))

    return DailyUsage(
        tenant_id=str(item["pk"]["S"]).removeprefix("tenant#"),
        day=day,
        alias=alias,
        requests=number("requests"),
        input_tokens=number("input_tokens"),
        output_tokens=number("output_tokens"),
        cost_nanos=number("cost_nanos"),
    )


class DynamoUsageStore:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def daily(self, tenant_id: str, since_day: str, until_day: str) -> list[DailyUsage]:
        """The tenant's rows for days in [since_day, until_day] (yyyy-mm-dd), oldest first."""
        rows: list[DailyUsage] = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {
                ":pk": {"S": f"tenant#{tenant_id}"},
                ":lo": {"S": since_day},
                ":hi": {"S": f"{until_day}#\uffff"},
            },
        }
        while True:
            page = self._client.query(**request)
            rows.extend(daily_usage_from_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return rows
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
