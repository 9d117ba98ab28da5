"""DynamoDB table definitions, used unchanged by CDK (infra/) and the local stack (llmops.local).

Keys are generic (`pk`/`sk`) on purpose: item shapes evolve in the adapters without table
replacement, which on DynamoDB means data migration.

The values those keys take (which partition and sort key an item lives at) are part of the table's
definition too, and are defined here: the adapters map items, while the Step Functions inputs
(`llmops.workflows`) and the CDK app address the same items without depending on the adapters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "GUARD_POLICY_PK_PREFIX",
    "LABEL_SK_PREFIX",
    "META_PK",
    "PROMPT_PK_PREFIX",
    "RESERVATIONS_INDEX",
    "ROUTE_PK",
    "TABLES",
    "TARGET_PK",
    "VERSION_SK_PREFIX",
    "AttributeType",
    "GlobalIndex",
    "KeyAttribute",
    "TableSpec",
    "guard_policy_pk",
    "label_sk",
    "prompt_id_from_pk",
    "prompt_pk",
    "table",
    "version_sk",
]


class AttributeType(StrEnum):
    STRING = "S"
    NUMBER = "N"


@dataclass(frozen=True, slots=True)
class KeyAttribute:
    """A key attribute of a table or index."""

    name: str
    type: AttributeType = AttributeType.STRING


@dataclass(frozen=True, slots=True)
class GlobalIndex:
    """A global secondary index of a table."""

    name: str
    partition_key: KeyAttribute
    sort_key: KeyAttribute | None = None


@dataclass(frozen=True, slots=True)
class TableSpec:
    """One DynamoDB table, as CDK creates it and the code finds it."""

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
# Sparse: only reservation records carry these attributes. The partition key is one of a few
# shards, so reserving writes no hot partition; the sweeper queries each shard for `release_at <= now`.
RESERVATIONS_INDEX = "by-release"

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
        purpose="Quota windows (per key and tenant), reserved then settled with conditional writes; "
        "reservation records, released by the sweeper if their request never settles.",
        partition_key=_PK,
        ttl_attribute="expires_at",
        indexes=(
            GlobalIndex(
                RESERVATIONS_INDEX, KeyAttribute("sweep_shard"), KeyAttribute("release_at", AttributeType.NUMBER)
            ),
        ),
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


# Routes table item keys (items: `llmops.adapters.dynamodb.route_items`): one partition per kind,
# the target id, alias or "version" as sort key.
TARGET_PK = "target"
ROUTE_PK = "route"
META_PK = "meta"

# Prompts table item keys (items: `llmops.adapters.dynamodb.prompt_items`): one partition per prompt,
# `prompt#<id>`, or per versioned guard policy, `guard#<name>`; versions at `v#<0000001>`
# (zero-padded so they sort numerically) and labels at `label#<name>`.
PROMPT_PK_PREFIX = "prompt#"
GUARD_POLICY_PK_PREFIX = "guard#"
VERSION_SK_PREFIX = "v#"
LABEL_SK_PREFIX = "label#"


def prompt_pk(prompt_id: str, prefix: str = PROMPT_PK_PREFIX) -> str:
    """The partition of `prompt_id`; `prefix` picks the namespace (prompts or guard policies)."""
    return f"{prefix}{prompt_id}"


def prompt_id_from_pk(pk: str, prefix: str = PROMPT_PK_PREFIX) -> str:
    return pk.removeprefix(prefix)


def guard_policy_pk(name: str) -> str:
    return prompt_pk(name, GUARD_POLICY_PK_PREFIX)


def version_sk(version: int) -> str:
    return f"{VERSION_SK_PREFIX}{version:07d}"


def label_sk(label: str) -> str:
    return f"{LABEL_SK_PREFIX}{label}"
