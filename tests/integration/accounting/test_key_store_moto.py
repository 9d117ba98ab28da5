"""API keys against moto: resolve, revoke, expire, rotate, tenant isolation, seeding."""

from __future__ import annotations

from typing import Any

import pytest

from llmops.adapters.dynamodb.key_store import DynamoKeyStore
from llmops.domain.keys import InvalidApiKeyError, InvalidLimitsError, KeyNotFoundError, TenantRecord
from llmops.domain.tenancy import Limits, TextRetention

NOW = 1_800_000_000.0
PEPPER = "test-pepper"


@pytest.fixture
def store(dynamodb: Any, names: dict[str, str]) -> DynamoKeyStore:
    return DynamoKeyStore(dynamodb, names["ApiKeys"], PEPPER)


def test_a_created_key_resolves_to_its_tenant_context(store: DynamoKeyStore) -> None:
    store.put_tenant(TenantRecord("acme", limits=Limits(tokens_per_day=99), quota_fail_open=True))
    raw, record = store.create("acme", NOW, limits=Limits(requests_per_minute=7), allowed_models=["chat", "nova-lite"])
    ctx = store.resolve(raw, NOW + 1)
    assert (ctx.tenant_id, ctx.key_id) == ("acme", record.prefix)
    assert ctx.allowed_models == ("chat", "nova-lite")
    assert ctx.limits.requests_per_minute == 7
    assert ctx.tenant_limits.tokens_per_day == 99 and ctx.quota_fail_open


def test_the_raw_key_is_not_stored(store: DynamoKeyStore, dynamodb: Any, names: dict[str, str]) -> None:
    raw, _ = store.create("acme", NOW)
    secret = raw.rsplit("-", 1)[-1]
    items = dynamodb.scan(TableName=names["ApiKeys"])["Items"]
    assert secret not in repr(items)


@pytest.mark.parametrize("presented", ["", "garbage", "llmops-abcd1234-" + "A" * 43])
def test_missing_malformed_and_unknown_keys_get_the_same_401(store: DynamoKeyStore, presented: str) -> None:
    with pytest.raises(InvalidApiKeyError) as info:
        store.resolve(presented, NOW)
    assert (info.value.status, info.value.code, info.value.message) == (
        401,
        "invalid_api_key",
        "Incorrect API key provided.",
    )


def test_revoked_and_expired_keys_are_refused(store: DynamoKeyStore) -> None:
    revoked_raw, revoked = store.create("acme", NOW)
    store.revoke("acme", revoked.prefix, NOW + 1)
    expiring_raw, _ = store.create("acme", NOW, expires_at=NOW + 60)
    assert store.resolve(expiring_raw, NOW + 59).tenant_id == "acme"
    for raw, when in ((revoked_raw, NOW + 2), (expiring_raw, NOW + 60)):
        with pytest.raises(InvalidApiKeyError):
            store.resolve(raw, when)
    statuses = {r.prefix: r.display_status(NOW + 61) for r in store.list_keys("acme")}
    assert statuses[revoked.prefix] == "revoked"
    assert sorted(statuses.values()) == ["expired", "revoked"]


def test_a_key_from_another_pepper_does_not_resolve(
    store: DynamoKeyStore, dynamodb: Any, names: dict[str, str]
) -> None:
    raw, _ = store.create("acme", NOW)
    with pytest.raises(InvalidApiKeyError):
        DynamoKeyStore(dynamodb, names["ApiKeys"], "other-pepper").resolve(raw, NOW)


def test_rotation_revokes_the_old_key_or_keeps_it_for_the_grace_period(store: DynamoKeyStore) -> None:
    old_raw, old = store.create("acme", NOW, limits=Limits(tokens_per_minute=5), allowed_models=["chat"])
    new_raw, new = store.rotate("acme", old.prefix, NOW + 1)
    assert (new.rotated_from, new.limits, new.allowed_models) == (old.prefix, old.limits, ("chat",))
    assert store.resolve(new_raw, NOW + 2).key_id == new.prefix
    with pytest.raises(InvalidApiKeyError):
        store.resolve(old_raw, NOW + 2)

    graced_raw, graced = store.create("acme", NOW)
    store.rotate("acme", graced.prefix, NOW + 10, grace_s=300)
    assert store.resolve(graced_raw, NOW + 309).tenant_id == "acme"
    with pytest.raises(InvalidApiKeyError):
        store.resolve(graced_raw, NOW + 310)
    with pytest.raises(KeyNotFoundError):
        store.rotate("acme", old.prefix, NOW + 3)  # already revoked


def test_tenants_cannot_see_or_manage_each_others_keys(store: DynamoKeyStore) -> None:
    _, acme_key = store.create("acme", NOW)
    store.create("globex", NOW)
    assert [r.tenant_id for r in store.list_keys("globex")] == ["globex"]
    with pytest.raises(KeyNotFoundError):
        store.revoke("globex", acme_key.prefix, NOW)
    with pytest.raises(KeyNotFoundError):
        store.rotate("globex", acme_key.prefix, NOW)
    assert store.list_keys("acme")[0].usable(NOW)


def test_bad_limits_and_inputs_are_rejected_before_writing(store: DynamoKeyStore) -> None:
    with pytest.raises(InvalidLimitsError, match="negative"):
        store.create("acme", NOW, limits=Limits(requests_per_minute=-1))
    with pytest.raises(InvalidLimitsError, match="above the maximum"):
        store.create("acme", NOW, limits=Limits(monthly_budget_usd=1e12))
    with pytest.raises(ValueError, match="future"):
        store.create("acme", NOW, expires_at=NOW - 1)
    with pytest.raises(ValueError, match="allowed model"):
        store.create("acme", NOW, allowed_models=[" "])
    assert store.list_keys("acme") == []


def test_seeding_a_known_dev_key_is_idempotent(store: DynamoKeyStore) -> None:
    raw = "llmops-devkey01-" + "d" * 43
    tenant = TenantRecord("dev", audit_text=TextRetention.REDACTED)
    for _ in range(2):
        store.seed(raw, "dev", NOW, limits=Limits(requests_per_minute=600), tenant=tenant)
    ctx = store.resolve(raw, NOW)
    assert (ctx.tenant_id, ctx.key_id, ctx.limits.requests_per_minute) == ("dev", "devkey01", 600)
    assert ctx.audit_text is TextRetention.REDACTED
    assert len(store.list_keys("dev")) == 1
