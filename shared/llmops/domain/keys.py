"""API keys: format, hashing, records, limit validation and the `KeyStore` port.

A key looks like `llmops-<prefix>-<secret>`: the 8-character prefix is public (it names the key in
listings, logs and audit records), the secret is `secrets.token_urlsafe(32)` (256 bits). Only an
HMAC-SHA256 of the whole key is stored.

Why a pepper and not a per-key salt: the authorizer must find a key from the presented string
alone, so the stored hash has to be a deterministic function of it - a random salt per key would
need a lookup before hashing. A secret pepper (kept outside the table, in `LLMOPS_KEY_PEPPER`)
gives the property a salt is for: a stolen table cannot be brute-forced or matched against leaked
keys without the pepper, and 256-bit secrets are out of reach of brute force anyway.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import math
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

from llmops.domain.errors import GatewayError
from llmops.domain.guard import safe_regex
from llmops.domain.tenancy import Limits, TenantContext, TextRetention

__all__ = [
    "KEY_SCHEME",
    "MAX_REQUESTS_PER_MINUTE",
    "MAX_TOKENS_LIMIT",
    "MAX_USD_LIMIT",
    "ApiKeyRecord",
    "InvalidApiKeyError",
    "InvalidLimitsError",
    "KeyNotFoundError",
    "KeyStatus",
    "KeyStore",
    "ParsedKey",
    "TenantRecord",
    "authorizer_context",
    "context_from_authorizer",
    "generate_api_key",
    "hash_api_key",
    "parse_api_key",
    "tenant_context",
    "validate_limits",
    "validate_tenant_id",
]

KEY_SCHEME = "llmops"
MAX_TOKENS_LIMIT = 1_000_000_000
MAX_REQUESTS_PER_MINUTE = 10_000_000
MAX_USD_LIMIT = 10_000_000.0

_KEY_RE = safe_regex.compile(rf"^{KEY_SCHEME}-([a-z0-9]{{8}})-([A-Za-z0-9_-]{{32,128}})$")
_PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_TENANT_RE = safe_regex.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class InvalidApiKeyError(GatewayError):
    """One answer for missing, malformed, unknown, revoked and expired keys: it leaks nothing."""

    status = 401
    error_type = "invalid_request_error"
    code = "invalid_api_key"

    def __init__(self, message: str = "Incorrect API key provided.") -> None:
        super().__init__(message)


class KeyNotFoundError(LookupError):
    """An admin operation named a key prefix that this tenant does not own."""


class InvalidLimitsError(ValueError):
    pass


class KeyStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class ParsedKey:
    """An API key split into its visible prefix and its secret."""

    prefix: str
    secret: str


def parse_api_key(raw: str) -> ParsedKey | None:
    match = _KEY_RE.match(raw.strip())
    if match is None:
        return None
    return ParsedKey(prefix=match.group(1), secret=match.group(2))


def generate_api_key(token: Callable[[int], str] = secrets.token_urlsafe) -> str:
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(8))
    return f"{KEY_SCHEME}-{prefix}-{token(32)}"


def hash_api_key(raw: str, pepper: str) -> str:
    if not pepper:
        raise ValueError("a key pepper is required (LLMOPS_KEY_PEPPER)")
    return hmac.new(pepper.encode(), raw.strip().encode(), hashlib.sha256).hexdigest()


def validate_tenant_id(tenant_id: str) -> str:
    if not _TENANT_RE.match(tenant_id):
        raise ValueError(
            f"invalid tenant id {tenant_id!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return tenant_id


def validate_limits(limits: Limits) -> Limits:
    """Rejects negative or absurd limits with a message naming the field; 0 stays 'unlimited'."""
    problems: list[str] = []
    ints: Mapping[str, tuple[int | None, int]] = {
        "requests_per_minute": (limits.requests_per_minute, MAX_REQUESTS_PER_MINUTE),
        "tokens_per_minute": (limits.tokens_per_minute, MAX_TOKENS_LIMIT),
        "tokens_per_day": (limits.tokens_per_day, MAX_TOKENS_LIMIT),
    }
    for name, (value, ceiling) in ints.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{name} must be a whole number")
        elif value < 0:
            problems.append(f"{name} cannot be negative (got {value})")
        elif value > ceiling:
            problems.append(f"{name} of {value} is above the maximum of {ceiling}")
    budget = limits.monthly_budget_usd
    if budget is not None:
        if not math.isfinite(budget):
            problems.append("monthly_budget_usd must be a finite number")
        elif budget < 0:
            problems.append(f"monthly_budget_usd cannot be negative (got {budget})")
        elif budget > MAX_USD_LIMIT:
            problems.append(f"monthly_budget_usd of {budget} is above the maximum of {MAX_USD_LIMIT:.0f}")
    if problems:
        raise InvalidLimitsError("; ".join(problems))
    return limits


_POLICY_NAME = safe_regex.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class TenantRecord:
    """Tenant-wide policy: shared limits across all its keys, quota failure mode, audit policy."""

    tenant_id: str
    limits: Limits = field(default_factory=Limits)
    quota_fail_open: bool = False
    audit_retention_days: int = 365
    audit_text: TextRetention = TextRetention.HASH
    guard_policy: str = "default"  # a named guard policy (see llmops.application.guard_policies)

    def __post_init__(self) -> None:
        validate_tenant_id(self.tenant_id)
        validate_limits(self.limits)
        if not 1 <= self.audit_retention_days <= 3650:
            raise InvalidLimitsError("audit_retention_days must be between 1 and 3650")
        if not _POLICY_NAME.fullmatch(self.guard_policy):
            raise InvalidLimitsError("guard_policy must be 1-64 letters, digits, '-' or '_'")


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """An API key as stored: its hash, never the key."""

    key_hash: str
    prefix: str
    tenant_id: str
    created_at: float  # epoch seconds
    allowed_models: tuple[str, ...] = ("*",)
    limits: Limits = field(default_factory=Limits)
    expires_at: float | None = None
    status: KeyStatus = KeyStatus.ACTIVE
    revoked_at: float | None = None
    rotated_from: str | None = None  # prefix of the key this one replaced
    label: str = ""

    def usable(self, now: float) -> bool:
        if self.status is not KeyStatus.ACTIVE:
            return False
        return self.expires_at is None or now < self.expires_at

    def display_status(self, now: float) -> str:
        if self.status is KeyStatus.ACTIVE and self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return self.status.value

    def revoked(self, now: float, *, effective_at: float | None = None) -> ApiKeyRecord:
        """Revoked now, or (rotation grace) still valid until `effective_at`."""
        if effective_at is not None and effective_at > now:
            ends = effective_at if self.expires_at is None else min(self.expires_at, effective_at)
            return replace(self, expires_at=ends)
        return replace(self, status=KeyStatus.REVOKED, revoked_at=now)


def tenant_context(record: ApiKeyRecord, tenant: TenantRecord | None) -> TenantContext:
    tenant = tenant or TenantRecord(record.tenant_id)
    return TenantContext(
        tenant_id=record.tenant_id,
        key_id=record.prefix,
        allowed_models=record.allowed_models,
        limits=record.limits,
        policy=tenant.guard_policy,
        tenant_limits=tenant.limits,
        quota_fail_open=tenant.quota_fail_open,
        audit_retention_days=tenant.audit_retention_days,
        audit_text=tenant.audit_text,
    )


def _limits_json(limits: Limits) -> str:
    return json.dumps(
        {
            "rpm": limits.requests_per_minute,
            "tpm": limits.tokens_per_minute,
            "tpd": limits.tokens_per_day,
            "usd": limits.monthly_budget_usd,
        },
        separators=(",", ":"),
    )


def _limits_from_json(text: str) -> Limits:
    data = json.loads(text) if text else {}
    return Limits(
        requests_per_minute=data.get("rpm"),
        tokens_per_minute=data.get("tpm"),
        tokens_per_day=data.get("tpd"),
        monthly_budget_usd=data.get("usd"),
    )


def authorizer_context(ctx: TenantContext) -> dict[str, str | int | bool]:
    """The flat map a REST API Lambda authorizer may return as `context` (strings, numbers, booleans)."""
    return {
        "tenant_id": ctx.tenant_id,
        "key_id": ctx.key_id,
        "allowed_models": ",".join(ctx.allowed_models),
        "limits": _limits_json(ctx.limits),
        "tenant_limits": _limits_json(ctx.tenant_limits),
        "policy": ctx.policy,
        "quota_fail_open": ctx.quota_fail_open,
        "audit_retention_days": ctx.audit_retention_days,
        "audit_text": ctx.audit_text.value,
    }


def context_from_authorizer(data: Mapping[str, object]) -> TenantContext:
    """Inverse of `authorizer_context`. API Gateway hands every value back as a string."""
    return _context_from_strings(
        str(data["tenant_id"]),
        str(data["key_id"]),
        str(data.get("allowed_models") or "*"),
        str(data.get("limits") or ""),
        str(data.get("tenant_limits") or ""),
        str(data.get("policy") or "default"),
        str(data.get("quota_fail_open")),
        str(data.get("audit_retention_days") or 365),
        str(data.get("audit_text") or TextRetention.HASH.value),
    )


# A container sees the same few keys' contexts request after request: parsing their JSON limits
# once per distinct context, not per request, is safe as a TenantContext is immutable.
@functools.lru_cache(maxsize=1024)
def _context_from_strings(
    tenant_id: str,
    key_id: str,
    models: str,
    limits: str,
    tenant_limits: str,
    policy: str,
    quota_fail_open: str,
    audit_retention_days: str,
    audit_text: str,
) -> TenantContext:
    return TenantContext(
        tenant_id=tenant_id,
        key_id=key_id,
        allowed_models=tuple(m for m in models.split(",") if m),
        limits=_limits_from_json(limits),
        tenant_limits=_limits_from_json(tenant_limits),
        policy=policy,
        quota_fail_open=quota_fail_open.lower() == "true",
        audit_retention_days=int(audit_retention_days),
        audit_text=TextRetention(audit_text),
    )


class KeyStore(Protocol):
    def resolve(self, raw_key: str, now: float) -> TenantContext:
        """The caller's context, or `InvalidApiKeyError` for any key that must not work."""
        ...

    def create(
        self,
        tenant_id: str,
        now: float,
        *,
        limits: Limits = ...,
        allowed_models: Sequence[str] = ...,
        expires_at: float | None = None,
        label: str = "",
        raw_key: str | None = None,
    ) -> tuple[str, ApiKeyRecord]:
        """Returns the raw key (shown once, never stored) and the stored record."""
        ...

    def list_keys(self, tenant_id: str) -> list[ApiKeyRecord]: ...

    def revoke(self, tenant_id: str, prefix: str, now: float) -> ApiKeyRecord: ...

    def rotate(self, tenant_id: str, prefix: str, now: float, *, grace_s: float = 0) -> tuple[str, ApiKeyRecord]:
        """A new key with the old one's settings; the old key is revoked now or after `grace_s`."""
        ...

    def put_tenant(self, tenant: TenantRecord) -> None: ...

    def get_tenant(self, tenant_id: str) -> TenantRecord | None: ...
