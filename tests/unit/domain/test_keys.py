import math

import pytest

from llmops.domain.keys import (
    ApiKeyRecord,
    InvalidApiKeyError,
    InvalidLimitsError,
    KeyStatus,
    TenantRecord,
    authorizer_context,
    context_from_authorizer,
    generate_api_key,
    hash_api_key,
    parse_api_key,
    tenant_context,
    validate_limits,
    validate_tenant_id,
)
from llmops.domain.tenancy import Limits, TextRetention


def test_generated_keys_parse_and_show_a_short_prefix() -> None:
    raw = generate_api_key()
    parsed = parse_api_key(raw)
    assert parsed is not None
    assert raw.startswith(f"llmops-{parsed.prefix}-")
    assert len(parsed.prefix) == 8
    assert len(parsed.secret) >= 43  # 32 random bytes, base64url
    assert generate_api_key() != raw


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "sk-abc",
        "llmops-ABCDEFGH-" + "x" * 43,
        "llmops-abcd123-" + "x" * 43,
        "llmops-abcd1234-short",
        "Bearer x",
    ],
)
def test_malformed_keys_do_not_parse(raw: str) -> None:
    assert parse_api_key(raw) is None


def test_hash_is_keyed_by_the_pepper() -> None:
    raw = generate_api_key()
    assert hash_api_key(raw, "p1") == hash_api_key(raw, "p1")
    assert hash_api_key(raw, "p1") != hash_api_key(raw, "p2")
    assert raw not in hash_api_key(raw, "p1")
    with pytest.raises(ValueError, match="pepper"):
        hash_api_key(raw, "")


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (Limits(requests_per_minute=-1), "requests_per_minute cannot be negative"),
        (Limits(tokens_per_minute=2_000_000_000), "tokens_per_minute of 2000000000 is above"),
        (Limits(tokens_per_day=-5), "tokens_per_day cannot be negative"),
        (Limits(monthly_budget_usd=-0.01), "monthly_budget_usd cannot be negative"),
        (Limits(monthly_budget_usd=10_000_001.0), "monthly_budget_usd of 10000001.0 is above"),
        (Limits(monthly_budget_usd=math.nan), "finite"),
        (Limits(monthly_budget_usd=math.inf), "finite"),
    ],
)
def test_negative_or_absurd_limits_are_rejected_with_the_field_named(limits: Limits, message: str) -> None:
    with pytest.raises(InvalidLimitsError, match=message):
        validate_limits(limits)


def test_reasonable_and_zero_limits_are_accepted() -> None:
    limits = Limits(requests_per_minute=0, tokens_per_minute=1_000_000_000, monthly_budget_usd=10_000_000.0)
    assert validate_limits(limits) is limits


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(InvalidLimitsError, match=r"requests_per_minute.*tokens_per_day"):
        validate_limits(Limits(requests_per_minute=-1, tokens_per_day=-1))


@pytest.mark.parametrize("tenant_id", ["", "a#b", "-x", "x" * 65, "a b"])
def test_tenant_ids_that_could_break_item_keys_are_rejected(tenant_id: str) -> None:
    with pytest.raises(ValueError, match="invalid tenant id"):
        validate_tenant_id(tenant_id)


def _record(**kw: object) -> ApiKeyRecord:
    return ApiKeyRecord(key_hash="h", prefix="abcd1234", tenant_id="acme", created_at=100.0, **kw)  # type: ignore[arg-type]


def test_usable_means_active_and_not_expired() -> None:
    assert _record().usable(1e12)
    assert not _record(status=KeyStatus.REVOKED).usable(101)
    assert _record(expires_at=200.0).usable(199)
    assert not _record(expires_at=200.0).usable(200)
    assert _record(expires_at=200.0).display_status(300) == "expired"


def test_revoking_with_a_grace_period_shortens_the_expiry_instead() -> None:
    graced = _record().revoked(150, effective_at=250)
    assert graced.status is KeyStatus.ACTIVE
    assert graced.usable(249) and not graced.usable(250)
    assert _record(expires_at=200.0).revoked(150, effective_at=250).expires_at == 200.0
    now_revoked = _record().revoked(150)
    assert (now_revoked.status, now_revoked.revoked_at) == (KeyStatus.REVOKED, 150)


def test_tenant_context_combines_key_and_tenant_policy() -> None:
    tenant = TenantRecord(
        "acme", limits=Limits(tokens_per_day=5), quota_fail_open=True, audit_text=TextRetention.REDACTED
    )
    ctx = tenant_context(_record(allowed_models=("chat",), limits=Limits(requests_per_minute=3)), tenant)
    assert (ctx.tenant_id, ctx.key_id, ctx.allowed_models) == ("acme", "abcd1234", ("chat",))
    assert ctx.limits.requests_per_minute == 3
    assert ctx.tenant_limits.tokens_per_day == 5
    assert ctx.quota_fail_open
    assert ctx.audit_text is TextRetention.REDACTED
    defaults = tenant_context(_record(), None)
    assert not defaults.quota_fail_open and defaults.audit_retention_days == 365


def test_invalid_key_error_is_one_uninformative_401() -> None:
    error = InvalidApiKeyError()
    assert (error.status, error.code, error.error_type) == (401, "invalid_api_key", "invalid_request_error")


def test_tenant_record_validates_its_policy() -> None:
    with pytest.raises(InvalidLimitsError):
        TenantRecord("acme", audit_retention_days=0)
    with pytest.raises(InvalidLimitsError):
        TenantRecord("acme", limits=Limits(tokens_per_day=-1))


def test_tenant_context_survives_the_authorizer_context_as_strings() -> None:
    ctx = tenant_context(
        _record(allowed_models=("chat", "nova-lite"), limits=Limits(requests_per_minute=3, monthly_budget_usd=2.5)),
        TenantRecord("acme", limits=Limits(tokens_per_day=9), quota_fail_open=True, audit_retention_days=30),
    )
    flat = authorizer_context(ctx)
    assert all(isinstance(v, str | int | bool) for v in flat.values())
    as_strings = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in flat.items()}
    assert context_from_authorizer(as_strings) == ctx
    assert context_from_authorizer(flat) == ctx


def test_the_tenant_guard_policy_reaches_the_context() -> None:
    ctx = tenant_context(_record(), TenantRecord("acme", guard_policy="strict-pii"))
    assert ctx.policy == "strict-pii"
    assert tenant_context(_record(), None).policy == "default"


def test_guard_policy_names_are_validated() -> None:
    with pytest.raises(InvalidLimitsError, match="guard_policy"):
        TenantRecord("acme", guard_policy="no spaces allowed")
