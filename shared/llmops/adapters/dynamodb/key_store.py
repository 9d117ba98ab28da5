"""API keys and tenant policy in the ApiKeys table: the `KeyStore` port on DynamoDB.

`resolve` is the authorizer's hot path: one strongly consistent GetItem for the key (so a revoke is
seen by the next uncached authorization) and one for the tenant's shared policy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from llmops.adapters.dynamodb.key_items import (
    key_item,
    key_pk,
    record_from_item,
    tenant_from_item,
    tenant_item,
    tenant_pk,
)
from llmops.domain.keys import (
    ApiKeyRecord,
    InvalidApiKeyError,
    KeyNotFoundError,
    TenantRecord,
    generate_api_key,
    hash_api_key,
    parse_api_key,
    tenant_context,
    validate_limits,
    validate_tenant_id,
)
from llmops.domain.tenancy import Limits, TenantContext

__all__ = ["BY_TENANT_INDEX", "DynamoKeyStore"]

BY_TENANT_INDEX = "by-tenant"


class DynamoKeyStore:
    """`client` is a boto3 DynamoDB client (standard retries); `pepper` is `Settings.key_pepper`."""

    def __init__(
        self,
        client: Any,
        table: str,
        pepper: str,
        *,
        new_key: Callable[[], str] = generate_api_key,
    ) -> None:
        if not pepper:
            raise ValueError("DynamoKeyStore needs a key pepper (LLMOPS_KEY_PEPPER)")
        self._client = client
        self._table = table
        self._pepper = pepper
        self._new_key = new_key

    # -- the authorizer's path -------------------------------------------------------------------

    def resolve(self, raw_key: str, now: float) -> TenantContext:
        parsed = parse_api_key(raw_key or "")
        if parsed is None:
            raise InvalidApiKeyError()
        found = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": key_pk(hash_api_key(raw_key, self._pepper))}},
            ConsistentRead=True,
        ).get("Item")
        if found is None:
            raise InvalidApiKeyError()
        record = record_from_item(found)
        if record.prefix != parsed.prefix or not record.usable(now):
            raise InvalidApiKeyError()
        return tenant_context(record, self.get_tenant(record.tenant_id))

    # -- administration --------------------------------------------------------------------------

    def create(
        self,
        tenant_id: str,
        now: float,
        *,
        limits: Limits = Limits(),  # noqa: B008 - frozen dataclass, safe as a default
        allowed_models: Sequence[str] = ("*",),
        expires_at: float | None = None,
        label: str = "",
        raw_key: str | None = None,
    ) -> tuple[str, ApiKeyRecord]:
        raw, record = self._new_record(tenant_id, now, limits, allowed_models, expires_at, label, raw_key, None)
        self._client.put_item(
            TableName=self._table,
            Item=key_item(record),
            ConditionExpression="attribute_not_exists(pk)",
        )
        return raw, record

    def seed(
        self,
        raw_key: str,
        tenant_id: str,
        now: float,
        *,
        limits: Limits = Limits(),  # noqa: B008
        allowed_models: Sequence[str] = ("*",),
        tenant: TenantRecord | None = None,
        label: str = "dev",
    ) -> ApiKeyRecord:
        """Idempotent: the local stack seeds its dev tenant and a known key on every start."""
        _, record = self._new_record(tenant_id, now, limits, allowed_models, None, label, raw_key, None)
        self._client.put_item(TableName=self._table, Item=key_item(record))
        self.put_tenant(tenant or self.get_tenant(tenant_id) or TenantRecord(tenant_id))
        return record

    def list_keys(self, tenant_id: str) -> list[ApiKeyRecord]:
        records: list[ApiKeyRecord] = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": BY_TENANT_INDEX,
            "KeyConditionExpression": "tenant_id = :t",
            "ExpressionAttributeValues": {":t": {"S": tenant_id}},
        }
        while True:
            page = self._client.query(**request)
            records.extend(record_from_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(records, key=lambda r: r.created_at)

    def revoke(self, tenant_id: str, prefix: str, now: float) -> ApiKeyRecord:
        record = self._find(tenant_id, prefix)
        revoked = record.revoked(now)
        self._client.put_item(
            TableName=self._table,
            Item=key_item(revoked),
            ConditionExpression="tenant_id = :t",
            ExpressionAttributeValues={":t": {"S": tenant_id}},
        )
        return revoked

    def rotate(self, tenant_id: str, prefix: str, now: float, *, grace_s: float = 0) -> tuple[str, ApiKeyRecord]:
        """The new key and the old one's retirement commit together (one transaction)."""
        if grace_s < 0:
            raise ValueError("grace_s cannot be negative")
        old = self._find(tenant_id, prefix)
        if not old.usable(now):
            raise KeyNotFoundError(f"key {prefix} is revoked or expired; create a new key instead")
        raw, new = self._new_record(
            tenant_id, now, old.limits, old.allowed_models, old.expires_at, old.label, None, old.prefix
        )
        retired = old.revoked(now, effective_at=now + grace_s if grace_s else None)
        self._client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": key_item(new),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": key_item(retired),
                        "ConditionExpression": "tenant_id = :t AND #s = :active",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": {":t": {"S": tenant_id}, ":active": {"S": "active"}},
                    }
                },
            ]
        )
        return raw, new

    def put_tenant(self, tenant: TenantRecord) -> None:
        self._client.put_item(TableName=self._table, Item=tenant_item(tenant))

    def get_tenant(self, tenant_id: str) -> TenantRecord | None:
        found = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": tenant_pk(tenant_id)}}, ConsistentRead=True
        ).get("Item")
        return tenant_from_item(found) if found is not None else None

    # -- internals -------------------------------------------------------------------------------

    def _find(self, tenant_id: str, prefix: str) -> ApiKeyRecord:
        # Through the tenant's own index partition: another tenant's prefix is simply not found.
        for record in self.list_keys(tenant_id):
            if record.prefix == prefix:
                return record
        raise KeyNotFoundError(f"no key with prefix {prefix} for tenant {tenant_id}")

    def _new_record(
        self,
        tenant_id: str,
        now: float,
        limits: Limits,
        allowed_models: Sequence[str],
        expires_at: float | None,
        label: str,
        raw_key: str | None,
        rotated_from: str | None,
    ) -> tuple[str, ApiKeyRecord]:
        validate_tenant_id(tenant_id)
        validate_limits(limits)
        models = tuple(m.strip() for m in allowed_models if m.strip())
        if not models:
            raise ValueError("a key needs at least one allowed model alias (or '*')")
        if expires_at is not None and expires_at <= now:
            raise ValueError("expires_at must be in the future")
        raw = raw_key if raw_key is not None else self._new_key()
        parsed = parse_api_key(raw)
        if parsed is None:
            raise ValueError("malformed API key: expected llmops-<8 lowercase letters/digits>-<secret>")
        record = ApiKeyRecord(
            key_hash=hash_api_key(raw, self._pepper),
            prefix=parsed.prefix,
            tenant_id=tenant_id,
            created_at=now,
            allowed_models=models,
            limits=limits,
            expires_at=expires_at,
            label=label,
            rotated_from=rotated_from,
        )
        return raw, record
