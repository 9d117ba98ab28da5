"""Pure mapping between guard policy versions and Prompts table items (low-level JSON).

Versioned guard policies share the Prompts table under their own partition-key scheme,
`pk = guard#<name>`, with the registry's `v#` / `label#` sort keys and label items
(`registry_items`). A version item stores the policy name in `prompt_id`, as every kind stores
its subject's name there, and its `GuardPolicy.from_mapping` document as JSON in `policy`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from llmops.adapters.dynamodb.registry_items import AttributeValue, Item, RegistryCodec, version_fields
from llmops.config.tables import GUARD_POLICY_PK_PREFIX, guard_policy_pk
from llmops.domain.guard_policy_registry import GuardPolicyVersion

__all__ = [
    "GUARD_POLICY_CODEC",
    "GUARD_POLICY_PK_PREFIX",
    "guard_policy_pk",
    "guard_policy_version_from_item",
    "guard_policy_version_item",
]


def _document_attributes(version: GuardPolicyVersion) -> Item:
    return {"prompt_id": {"S": version.name}, "policy": {"S": version.document_json()}}


def guard_policy_version_from_item(item: Mapping[str, AttributeValue]) -> GuardPolicyVersion:
    return GuardPolicyVersion(
        name=item["prompt_id"]["S"], document=json.loads(item["policy"]["S"]), **version_fields(item)
    )


GUARD_POLICY_CODEC = RegistryCodec(GUARD_POLICY_PK_PREFIX, _document_attributes, guard_policy_version_from_item)


def guard_policy_version_item(version: GuardPolicyVersion) -> Item:
    return GUARD_POLICY_CODEC.version_item(version)
