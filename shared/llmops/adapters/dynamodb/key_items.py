"""Pure mapping between API key / tenant records and ApiKeys table items (low-level JSON).

One table holds two item kinds:
- `key#<hmac>`: an API key, found by the HMAC of the presented key. `tenant_id` + `created_at`
  (ISO-8601 UTC, sortable) put it in the `by-tenant` index for listing.
- `tenant#<id>`: tenant-wide limits and policy. It has no `created_at`, so it stays out of the
  sparse `by-tenant` index.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from llmops.domain.keys import ApiKeyRecord, KeyStatus, TenantRecord
from llmops.domain.tenancy import Limits, TextRetention

__all__ = [
    "KEY_PK_PREFIX",
    "TENANT_PK_PREFIX",
    "iso_timestamp",
    "key_item",
    "key_pk",
    "record_from_item",
    "tenant_from_item",
    "tenant_item",
    "tenant_pk",
]

KEY_PK_PREFIX = "key#"
TENANT_PK_PREFIX = "tenant#"

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]


def key_pk(key_hash: str) -> str:
    return f"{KEY_PK_PREFIX}{key_hash}"


def tenant_pk(tenant_id: str) -> str:
    return f"{TENANT_PK_PREFIX}{tenant_id}"


def iso_timestamp(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _epoch(iso: str) -> float:
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def _num(value: float) -> AttributeValue:
    # repr() is the shortest string that round-trips a float; DynamoDB stores it as an exact decimal.
    return {"N": str(value) if isinstance(value, int) else str(Decimal(repr(value)))}


def _limits_attr(limits: Limits) -> AttributeValue:
    fields = {
        "requests_per_minute": limits.requests_per_minute,
        "tokens_per_minute": limits.tokens_per_minute,
        "tokens_per_day": limits.tokens_per_day,
        "monthly_budget_usd": limits.monthly_budget_usd,
    }
    return {"M": {name: _num(value) for name, value in fields.items() if value is not None}}


def _limits(attr: AttributeValue | None) -> Limits:
    values: Mapping[str, AttributeValue] = (attr or {}).get("M", {})

    def whole(name: str) -> int | None:
        return int(values[name]["N"]) if name in values else None

    budget = values.get("monthly_budget_usd")
    return Limits(
        requests_per_minute=whole("requests_per_minute"),
        tokens_per_minute=whole("tokens_per_minute"),
        tokens_per_day=whole("tokens_per_day"),
        monthly_budget_usd=float(budget["N"]) if budget is not None else None,
    )


def key_item(record: ApiKeyRecord) -> Item:
    item: Item = {
        "pk": {"S": key_pk(record.key_hash)},
        "kind": {"S": "key"},
        "prefix": {"S": record.prefix},
        "tenant_id": {"S": record.tenant_id},
        "created_at": {"S": iso_timestamp(record.created_at)},
        "allowed_models": {"L": [{"S": m} for m in record.allowed_models]},
        "limits": _limits_attr(record.limits),
        "status": {"S": record.status.value},
    }
    if record.expires_at is not None:
        item["key_expires_at"] = _num(record.expires_at)  # not `expires_at`: that name is TTL elsewhere
    if record.revoked_at is not None:
        item["revoked_at"] = _num(record.revoked_at)
    if record.rotated_from:
        item["rotated_from"] = {"S": record.rotated_from}
    if record.label:
        item["label"] = {"S": record.label}
    return item


def record_from_item(item: Mapping[str, AttributeValue]) -> ApiKeyRecord:
    pk = str(item["pk"]["S"])
    return ApiKeyRecord(
        key_hash=pk.removeprefix(KEY_PK_PREFIX),
        prefix=str(item["prefix"]["S"]),
        tenant_id=str(item["tenant_id"]["S"]),
        created_at=_epoch(str(item["created_at"]["S"])),
        allowed_models=tuple(str(m["S"]) for m in item.get("allowed_models", {}).get("L", [])) or ("*",),
        limits=_limits(item.get("limits")),
        expires_at=float(item["key_expires_at"]["N"]) if "key_expires_at" in item else None,
        status=KeyStatus(item.get("status", {}).get("S", "active")),
        revoked_at=float(item["revoked_at"]["N"]) if "revoked_at" in item else None,
        rotated_from=str(item["rotated_from"]["S"]) if "rotated_from" in item else None,
        label=str(item["label"]["S"]) if "label" in item else "",
    )


def tenant_item(tenant: TenantRecord) -> Item:
    return {
        "pk": {"S": tenant_pk(tenant.tenant_id)},
        "kind": {"S": "tenant"},
        "tenant": {"S": tenant.tenant_id},
        "limits": _limits_attr(tenant.limits),
        "quota_fail_open": {"BOOL": tenant.quota_fail_open},
        "audit_retention_days": {"N": str(tenant.audit_retention_days)},
        "audit_text": {"S": tenant.audit_text.value},
        "guard_policy": {"S": tenant.guard_policy},
    }


def tenant_from_item(item: Mapping[str, AttributeValue]) -> TenantRecord:
    return TenantRecord(
        tenant_id=str(item["tenant"]["S"]),
        limits=_limits(item.get("limits")),
        quota_fail_open=bool(item.get("quota_fail_open", {}).get("BOOL", False)),
        audit_retention_days=int(item.get("audit_retention_days", {}).get("N", 365)),
        audit_text=TextRetention(item.get("audit_text", {}).get("S", TextRetention.HASH.value)),
        guard_policy=str(item.get("guard_policy", {}).get("S", "default")),
    )
