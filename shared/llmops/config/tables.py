"""DynamoDB table definitions, used unchanged by CDK (infra/) and the local stack (llmops.local).

Keys are generic (`pk`/`sk`) on purpose: item shapes evolve in the adapters without table
replacement, which on DynamoDB means data migration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["TABLES", "AttributeType", "GlobalIndex", "KeyAttribute", "TableSpec", "table"]


class AttributeType(StrEnum):
    STRING = "S"
    NUMBER = "N"


@dataclass(frozen=True, slots=True)
class KeyAttribute:
    name: str
    type: AttributeType = AttributeType.STRING


@dataclass(frozen=True, slots=True)
class GlobalIndex:
    name: str
    partition_key: KeyAttribute
    sort_key: KeyAttribute | None = None


@dataclass(frozen=True, slots=True)
class TableSpec:
    logical_name: str  # CDK construct id and the local table name suffix
    env_var: str  # where the Lambda finds the physical table name
    purpose: str
    partition_key: KeyAttribute
    sort_key: KeyAttribute | None = None
    ttl_attribute: str | None = None
    indexes: tuple[GlobalIndex, ...] = field(default_factory=tuple)

    def attribute_definitions(self) -> list[KeyAttribute]:
        attrs: dict[str, KeyAttribute] = {}
        for key in (self.partition_key, self.sort_key):
            if key is not None:
                attrs[key.name] = key
        for index in self.indexes:
            for key in (index.partition_key, index.sort_key):
                if key is not None:
                    attrs[key.name] = key
        return list(attrs.values())


_PK = KeyAttribute("pk")
_SK = KeyAttribute("sk")

TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        logical_name="Routes",
        env_var="LLMOPS_ROUTES_TABLE",
        purpose="Route table: aliases, weighted targets, fallbacks, prices. Seeded from routes.json.",
        partition_key=_PK,
        sort_key=_SK,
    ),
    TableSpec(
        logical_name="ApiKeys",
        env_var="LLMOPS_KEYS_TABLE",
        purpose="API keys by salted hash: tenant, allowed aliases, limits, expiry, status.",
        partition_key=_PK,
        indexes=(GlobalIndex("by-tenant", KeyAttribute("tenant_id"), KeyAttribute("created_at")),),
    ),
    TableSpec(
        logical_name="Quotas",
        env_var="LLMOPS_QUOTAS_TABLE",
        purpose="Quota windows (per key and tenant), reserved then settled with conditional writes.",
        partition_key=_PK,
        ttl_attribute="expires_at",
    ),
    TableSpec(
        logical_name="Usage",
        env_var="LLMOPS_USAGE_TABLE",
        purpose="Spend and tokens per tenant, alias and day.",
        partition_key=_PK,
        sort_key=_SK,
    ),
    TableSpec(
        logical_name="Audit",
        env_var="LLMOPS_AUDIT_TABLE",
        purpose="Hash-chained audit records per shard; no raw PII.",
        partition_key=_PK,
        sort_key=_SK,
        ttl_attribute="expires_at",
        indexes=(GlobalIndex("by-request", KeyAttribute("request_id")),),
    ),
    TableSpec(
        logical_name="Prompts",
        env_var="LLMOPS_PROMPTS_TABLE",
        purpose="Prompt templates: immutable versions and movable labels.",
        partition_key=_PK,
        sort_key=_SK,
    ),
    TableSpec(
        logical_name="Feedback",
        env_var="LLMOPS_FEEDBACK_TABLE",
        purpose="User feedback per request and user, joined to the audited target and prompt version.",
        partition_key=_PK,
        sort_key=_SK,
    ),
    TableSpec(
        logical_name="ResponseCache",
        env_var="LLMOPS_CACHE_TABLE",
        purpose="Exact-match response cache for deterministic requests, per tenant.",
        partition_key=_PK,
        ttl_attribute="expires_at",
    ),
)


def table(logical_name: str) -> TableSpec:
    for spec in TABLES:
        if spec.logical_name == logical_name:
            return spec
    raise KeyError(logical_name)
