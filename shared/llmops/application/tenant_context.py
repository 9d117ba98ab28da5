"""The tenant context as it crosses the API Gateway authorizer boundary.

Authorizer context values must be flat strings, numbers or booleans, so lists and limits are
encoded here, once, for both the authorizer (encode) and the gateway (decode).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from llmops.domain.tenancy import Limits, TenantContext

__all__ = ["from_authorizer_context", "to_authorizer_context"]


def to_authorizer_context(tenant: TenantContext) -> dict[str, str]:
    return {
        "tenant_id": tenant.tenant_id,
        "key_id": tenant.key_id,
        "allowed_models": ",".join(tenant.allowed_models),
        "limits": json.dumps(asdict(tenant.limits), separators=(",", ":")),
        "policy": tenant.policy,
    }


def from_authorizer_context(context: Mapping[str, Any] | None) -> TenantContext | None:
    if not context or not context.get("tenant_id"):
        return None
    limits_doc = json.loads(str(context.get("limits") or "{}"))
    known = Limits.__dataclass_fields__.keys()
    return TenantContext(
        tenant_id=str(context["tenant_id"]),
        key_id=str(context.get("key_id", "")),
        allowed_models=tuple(m for m in str(context.get("allowed_models", "*")).split(",") if m) or ("*",),
        limits=Limits(**{k: v for k, v in limits_doc.items() if k in known}),
        policy=str(context.get("policy", "default")),
    )
