"""Who is calling: the tenant context the authorizer resolves from an API key."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Limits", "TenantContext", "TextRetention"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Zero or None means unlimited for that window."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    tokens_per_day: int | None = None
    monthly_budget_usd: float | None = None


class TextRetention(StrEnum):
    """What the audit trail may keep of prompt and completion text (per tenant policy)."""

    NONE = "none"  # nothing at all
    HASH = "hash"  # a keyed hash (HMAC with a pepper): proves a given text was sent, reveals nothing
    REDACTED = "redacted"  # the guard-redacted text


@dataclass(frozen=True, slots=True)
class TenantContext:
    """Who is calling, as the authorizer resolved the API key: the request path reads it, never the key."""

    tenant_id: str
    key_id: str  # the key's short visible prefix, never the secret
    allowed_models: tuple[str, ...] = ("*",)
    limits: Limits = field(default_factory=Limits)  # this key's own windows
    policy: str = "default"
    tenant_limits: Limits = field(default_factory=Limits)  # windows shared by all the tenant's keys
    quota_fail_open: bool = False  # admit requests when the quota store is unavailable
    audit_retention_days: int = 365
    audit_text: TextRetention = TextRetention.HASH
