"""Who is calling: the tenant context the authorizer resolves from an API key."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Limits", "TenantContext"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Zero or None means unlimited for that window."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    tokens_per_day: int | None = None
    monthly_budget_usd: float | None = None


@dataclass(frozen=True, slots=True)
class TenantContext:
    tenant_id: str
    key_id: str  # the key's short visible prefix, never the secret
    allowed_models: tuple[str, ...] = ("*",)
    limits: Limits = field(default_factory=Limits)
    policy: str = "default"
