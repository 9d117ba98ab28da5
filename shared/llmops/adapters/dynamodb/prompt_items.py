"""Pure mapping between prompt versions / labels and Prompts table items (low-level JSON).

The registry's layout (`v#` / `label#` sort keys, label items) is `registry_items`'; this module
is the prompt kind's part of it. One partition per prompt, `pk = prompt#<scoped id>`:
`prompt#<tenant>/<id>` for a tenant's own template, `prompt#<id>` for a shared one (where every
template lived before templates were scoped, so those items are shared templates as they are).
Version items carry the bare id in `prompt_id`, the template, its variables, parameters, and the
optional `model`, `system` and `tenant_id` (a tenant's template only); label items carry the
scoped id in `prompt_id` (the label's subject).
"""

from __future__ import annotations

from collections.abc import Mapping

# The key layout is the table's definition (config.tables); re-exported for the stores that map items.
from llmops.adapters.dynamodb.registry_items import (
    LABEL_SK_PREFIX,
    VERSION_SK_PREFIX,
    AttributeValue,
    Item,
    RegistryCodec,
    float_of,
    label_from_item,
    label_item,
    num,
    version_fields,
)
from llmops.config.tables import PROMPT_PK_PREFIX, label_sk, prompt_id_from_pk, prompt_pk, version_sk
from llmops.domain.prompts import PromptParameters, PromptVersion

__all__ = [
    "LABEL_SK_PREFIX",
    "PROMPT_CODEC",
    "PROMPT_PK_PREFIX",
    "VERSION_SK_PREFIX",
    "label_from_item",
    "label_item",
    "label_sk",
    "prompt_id_from_pk",
    "prompt_pk",
    "version_from_item",
    "version_item",
    "version_sk",
]


def _parameters_attr(params: PromptParameters) -> AttributeValue:
    fields: dict[str, AttributeValue] = {}
    if params.temperature is not None:
        fields["temperature"] = num(params.temperature)
    if params.top_p is not None:
        fields["top_p"] = num(params.top_p)
    if params.max_tokens is not None:
        fields["max_tokens"] = num(params.max_tokens)
    if params.stop:
        fields["stop"] = {"L": [{"S": s} for s in params.stop]}
    return {"M": fields}


def _parameters(attr: AttributeValue | None) -> PromptParameters:
    values: Mapping[str, AttributeValue] = (attr or {}).get("M", {})
    return PromptParameters(
        temperature=float_of(values["temperature"]) if "temperature" in values else None,
        top_p=float_of(values["top_p"]) if "top_p" in values else None,
        max_tokens=int(values["max_tokens"]["N"]) if "max_tokens" in values else None,
        stop=tuple(s["S"] for s in values.get("stop", {}).get("L", [])),
    )


def _document_attributes(version: PromptVersion) -> Item:
    item: Item = {
        "prompt_id": {"S": version.prompt_id},
        "template": {"S": version.template},
        "variables": {"L": [{"S": v} for v in version.variables]},
        "parameters": _parameters_attr(version.parameters),
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
        template=item["template"]["S"],
        variables=tuple(v["S"] for v in item.get("variables", {}).get("L", [])),
        model=item["model"]["S"] if "model" in item else None,
        parameters=_parameters(item.get("parameters")),
        system=item["system"]["S"] if "system" in item else None,
        tenant_id=item["tenant_id"]["S"] if "tenant_id" in item else None,
        **version_fields(item),
    )


PROMPT_CODEC = RegistryCodec(PROMPT_PK_PREFIX, _document_attributes, version_from_item)


def version_item(version: PromptVersion) -> Item:
    return PROMPT_CODEC.version_item(version)
