"""Pure mapping between the versioned route document (routes.json) and Routes table items.

Items are in DynamoDB's low-level JSON so the same list feeds boto3 `put_item`, the CDK seeding
custom resource and the canary state machine's `UpdateItem` expressions. Route weights are a
native map (`weights.<target>`) precisely so Step Functions can move a canary with one UpdateItem.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# The key layout is the table's definition (config.tables); re-exported for the stores that map items.
from llmops.config.tables import META_PK, ROUTE_PK, TARGET_PK

__all__ = ["META_PK", "ROUTE_PK", "TARGET_PK", "document_from_items", "table_items"]

_NUMERIC_TARGET_FIELDS = frozenset(
    {"price_per_1k_input_usd", "price_per_1k_output_usd", "context_window", "max_output_tokens"}
)

AttributeValue = dict[str, Any]


def _encode(value: Any) -> AttributeValue:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": repr(value) if isinstance(value, float) else str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, Mapping):
        return {"M": {str(k): _encode(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [_encode(v) for v in value]}
    raise TypeError(f"unsupported route config value of type {type(value).__name__}")


def _decode(attr: AttributeValue) -> Any:
    ((kind, value),) = attr.items()
    if kind == "N":
        number = float(value)
        return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
    if kind == "M":
        return {k: _decode(v) for k, v in value.items()}
    if kind == "L":
        return [_decode(v) for v in value]
    if kind in ("S", "BOOL"):
        return value
    if kind == "NULL":
        return None
    raise ValueError(f"unsupported attribute type {kind}")


def table_items(doc: Mapping[str, Any]) -> list[dict[str, AttributeValue]]:
    items: list[dict[str, AttributeValue]] = [
        {"pk": {"S": META_PK}, "sk": {"S": "version"}, "version": {"S": str(doc.get("version", "0"))}}
    ]
    for target_id, spec in doc["targets"].items():
        item = {"pk": {"S": TARGET_PK}, "sk": {"S": target_id}}
        item.update({k: _encode(v) for k, v in spec.items()})
        items.append(item)
    for alias, spec in doc["routes"].items():
        weights = {str(p["target"]): float(p.get("weight", 1)) for p in spec["targets"]}
        items.append(
            {
                "pk": {"S": ROUTE_PK},
                "sk": {"S": alias},
                "weights": _encode(weights),
                "fallbacks": _encode(list(spec.get("fallbacks", []))),
                "description": {"S": str(spec.get("description", ""))},
            }
        )
    return items


def document_from_items(items: Iterable[Mapping[str, AttributeValue]]) -> dict[str, Any]:
    doc: dict[str, Any] = {"version": "0", "targets": {}, "routes": {}}
    for item in items:
        pk, sk = item["pk"]["S"], item["sk"]["S"]
        fields = {k: _decode(v) for k, v in item.items() if k not in ("pk", "sk")}
        if pk == META_PK and sk == "version":
            doc["version"] = str(fields.get("version", "0"))
        elif pk == TARGET_PK:
            doc["targets"][sk] = fields
        elif pk == ROUTE_PK:
            weights: dict[str, Any] = fields.get("weights", {})
            ordered = sorted(weights.items(), key=lambda kv: (-float(kv[1]), kv[0]))
            doc["routes"][sk] = {
                "targets": [{"target": t, "weight": float(w)} for t, w in ordered],
                "fallbacks": list(fields.get("fallbacks", [])),
                "description": str(fields.get("description", "")),
            }
    return doc
