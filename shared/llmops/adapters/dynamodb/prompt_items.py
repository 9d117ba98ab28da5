"""Pure mapping between prompt versions / labels and Prompts table items (low-level JSON).

The keys are defined with the table (`llmops.config.tables`). One partition per prompt,
`pk = prompt#<scoped id>`: `prompt#<tenant>/<id>` for a tenant's own template, `prompt#<id>` for a
shared one (where every template lived before templates were scoped, so those items are shared
templates as they are). Items of a tenant's template also carry `tenant_id`; `prompt_id` is the
bare id on version items and the scoped id on label items (`LabelState.prompt_id`):
- `sk = v#<0000001>`: an immutable version (zero-padded so versions sort numerically; the newest
  is the last item of a descending `begins_with(sk, "v#")` query).
- `sk = label#<name>`: a label -> version, with the versions it pointed at before (`history`,
  oldest first) so a rollback can step back.

Versioned guard policies share the table under their own namespace, `pk = guard#<name>`: the same
`v#` / `label#` sort keys and the same label items (the policy name in `prompt_id`), so label
moves, rollbacks and the canary's release-bundle states work on both unchanged. Only the version
items differ: a guard policy version stores its `GuardPolicy.from_mapping` document as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

# The key layout is the table's definition (config.tables); re-exported for the stores that map items.
from llmops.config.tables import (
    GUARD_POLICY_PK_PREFIX,
    LABEL_SK_PREFIX,
    PROMPT_PK_PREFIX,
    VERSION_SK_PREFIX,
    guard_policy_pk,
    label_sk,
    prompt_id_from_pk,
    prompt_pk,
    version_sk,
)
from llmops.domain.guard_policy_registry import GuardPolicyVersion
from llmops.domain.prompts import LabelState, PromptParameters, PromptVersion

__all__ = [
    "GUARD_POLICY_PK_PREFIX",
    "LABEL_SK_PREFIX",
    "PROMPT_PK_PREFIX",
    "VERSION_SK_PREFIX",
    "guard_policy_pk",
    "guard_policy_version_from_item",
    "guard_policy_version_item",
    "label_from_item",
    "label_item",
    "label_sk",
    "prompt_id_from_pk",
    "prompt_pk",
    "version_from_item",
    "version_item",
    "version_sk",
]

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]


def _num(value: float) -> AttributeValue:
    return {"N": str(value) if isinstance(value, int) else str(Decimal(repr(value)))}


def _float(attr: AttributeValue) -> float:
    return float(attr["N"])


def _parameters_attr(params: PromptParameters) -> AttributeValue:
    fields: dict[str, AttributeValue] = {}
    if params.temperature is not None:
        fields["temperature"] = _num(params.temperature)
    if params.top_p is not None:
        fields["top_p"] = _num(params.top_p)
    if params.max_tokens is not None:
        fields["max_tokens"] = _num(params.max_tokens)
    if params.stop:
        fields["stop"] = {"L": [{"S": s} for s in params.stop]}
    return {"M": fields}


def _parameters(attr: AttributeValue | None) -> PromptParameters:
    values: Mapping[str, AttributeValue] = (attr or {}).get("M", {})
    return PromptParameters(
        temperature=_float(values["temperature"]) if "temperature" in values else None,
        top_p=_float(values["top_p"]) if "top_p" in values else None,
        max_tokens=int(values["max_tokens"]["N"]) if "max_tokens" in values else None,
        stop=tuple(s["S"] for s in values.get("stop", {}).get("L", [])),
    )


def version_item(version: PromptVersion) -> Item:
    item: Item = {
        "pk": {"S": prompt_pk(version.scoped_id)},
        "sk": {"S": version_sk(version.version)},
        "prompt_id": {"S": version.prompt_id},
        "version": _num(version.version),
        "template": {"S": version.template},
        "variables": {"L": [{"S": v} for v in version.variables]},
        "parameters": _parameters_attr(version.parameters),
        "author": {"S": version.author},
        "change_note": {"S": version.change_note},
        "created_at": _num(version.created_at),
        "fingerprint": {"S": version.fingerprint},
    }
    if version.tenant_id is not None:
        item["tenant_id"] = {"S": version.tenant_id}
    if version.model is not None:
        item["model"] = {"S": version.model}
    if version.system is not None:
        item["system"] = {"S": version.system}
    return item


def version_from_item(item: Mapping[str, AttributeValue]) -> PromptVersion:
    return PromptVersion(
        prompt_id=item["prompt_id"]["S"],
        version=int(item["version"]["N"]),
        template=item["template"]["S"],
        variables=tuple(v["S"] for v in item.get("variables", {}).get("L", [])),
        model=item["model"]["S"] if "model" in item else None,
        parameters=_parameters(item.get("parameters")),
        system=item["system"]["S"] if "system" in item else None,
        author=item.get("author", {}).get("S", ""),
        change_note=item.get("change_note", {}).get("S", ""),
        created_at=_float(item["created_at"]) if "created_at" in item else 0.0,
        tenant_id=item["tenant_id"]["S"] if "tenant_id" in item else None,
    )


def label_item(state: LabelState, pk_prefix: str = PROMPT_PK_PREFIX) -> Item:
    return {
        "pk": {"S": prompt_pk(state.prompt_id, pk_prefix)},
        "sk": {"S": label_sk(state.label)},
        "prompt_id": {"S": state.prompt_id},
        "label": {"S": state.label},
        "version": _num(state.version),
        "history": {"L": [_num(v) for v in state.history]},
        "updated_at": _num(state.updated_at),
        "updated_by": {"S": state.updated_by},
    }


def label_from_item(item: Mapping[str, AttributeValue]) -> LabelState:
    return LabelState(
        prompt_id=item["prompt_id"]["S"],
        label=item["label"]["S"],
        version=int(item["version"]["N"]),
        history=tuple(int(v["N"]) for v in item.get("history", {}).get("L", [])),
        updated_at=_float(item["updated_at"]) if "updated_at" in item else 0.0,
        updated_by=item.get("updated_by", {}).get("S", ""),
    )


def guard_policy_version_item(version: GuardPolicyVersion) -> Item:
    return {
        "pk": {"S": guard_policy_pk(version.name)},
        "sk": {"S": version_sk(version.version)},
        # `prompt_id` as on prompt items: the namespace-neutral subject of the partition.
        "prompt_id": {"S": version.name},
        "version": _num(version.version),
        "policy": {"S": version.document_json()},
        "author": {"S": version.author},
        "change_note": {"S": version.change_note},
        "created_at": _num(version.created_at),
        "fingerprint": {"S": version.fingerprint},
    }


def guard_policy_version_from_item(item: Mapping[str, AttributeValue]) -> GuardPolicyVersion:
    return GuardPolicyVersion(
        name=item["prompt_id"]["S"],
        version=int(item["version"]["N"]),
        document=json.loads(item["policy"]["S"]),
        author=item.get("author", {}).get("S", ""),
        change_note=item.get("change_note", {}).get("S", ""),
        created_at=_float(item["created_at"]) if "created_at" in item else 0.0,
    )
