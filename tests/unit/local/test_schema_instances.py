"""The emulators' schema-instance generator: instances validate against their schema, deterministically."""

from __future__ import annotations

from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from llmops.local.emulators.schema_instances import instance_for

SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}}, "required": ["city"]},
    {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 3, "maximum": 5},
            "x": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "tags": {"type": "array", "items": {"type": "string", "minLength": 12}, "minItems": 2, "maxItems": 3},
            "flag": {"type": "boolean"},
            "when": {"type": "string", "format": "date-time"},
            "id": {"type": "string", "format": "uuid"},
            "code": {"type": "string", "maxLength": 3},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "integer"}]},
            "kind": {"const": "fixed"},
        },
        "required": ["n", "x", "tags", "flag", "when", "id", "code", "maybe", "kind"],
        "additionalProperties": False,
    },
    # pydantic's shape: $defs and $ref, allOf, nullable types
    {
        "$defs": {"Item": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}},
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}},
            "main": {
                "allOf": [{"$ref": "#/$defs/Item"}, {"properties": {"qty": {"type": "integer"}}, "required": ["qty"]}]
            },
            "note": {"type": ["string", "null"]},
        },
        "required": ["items", "main", "note"],
    },
    # self-referencing tree: must terminate
    {
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
                "required": ["children"],
            }
        },
        "$ref": "#/$defs/Node",
    },
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_instance_is_valid_against_its_schema(schema: dict[str, Any]) -> None:
    for seed in ("a", "b", "c"):
        jsonschema.validate(instance_for(schema, seed), schema)


def test_same_seed_same_instance_and_seeds_vary_choices() -> None:
    schema = SCHEMAS[0]
    assert instance_for(schema, "s1") == instance_for(schema, "s1")
    units = {instance_for(schema, f"seed{i}")["unit"] for i in range(20)}
    assert units == {"c", "f"}
