from llmops.adapters.dynamodb.key_items import (
    key_item,
    record_from_item,
    tenant_from_item,
    tenant_item,
)
from llmops.domain.keys import ApiKeyRecord, KeyStatus, TenantRecord
from llmops.domain.tenancy import Limits, TextRetention


def test_key_records_round_trip_and_index_on_tenant_and_iso_time() -> None:
    record = ApiKeyRecord(
        key_hash="ab" * 32,
        prefix="abcd1234",
        tenant_id="acme",
        created_at=1_800_000_000.25,
        allowed_models=("chat", "nova-lite"),
        limits=Limits(requests_per_minute=10, monthly_budget_usd=12.5),
        expires_at=1_900_000_000.0,
        status=KeyStatus.REVOKED,
        revoked_at=1_850_000_000.0,
        rotated_from="zzzz9999",
        label="ci",
    )
    item = key_item(record)
    assert item["pk"] == {"S": "key#" + "ab" * 32}
    assert item["tenant_id"] == {"S": "acme"}
    assert item["created_at"] == {"S": "2027-01-15T08:00:00.250000Z"}
    assert "expires_at" not in item  # the key's expiry is not a TTL: revoked keys stay listable
    assert item["limits"] == {"M": {"requests_per_minute": {"N": "10"}, "monthly_budget_usd": {"N": "12.5"}}}
    assert record_from_item(item) == record


def test_minimal_key_item_has_no_optional_attributes() -> None:
    record = ApiKeyRecord(key_hash="h", prefix="abcd1234", tenant_id="acme", created_at=0.0)
    item = key_item(record)
    assert {"key_expires_at", "revoked_at", "rotated_from", "label"}.isdisjoint(item)
    assert record_from_item(item) == record


def test_tenant_items_stay_out_of_the_by_tenant_index_and_round_trip() -> None:
    tenant = TenantRecord(
        "acme",
        limits=Limits(tokens_per_day=1000),
        quota_fail_open=True,
        audit_retention_days=30,
        audit_text=TextRetention.NONE,
    )
    item = tenant_item(tenant)
    assert item["pk"] == {"S": "tenant#acme"}
    assert "tenant_id" not in item and "created_at" not in item
    assert tenant_from_item(item) == tenant
