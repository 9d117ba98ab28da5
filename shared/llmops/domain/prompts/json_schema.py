"""A minimal JSON Schema subset, for the `json_schema` output check when `jsonschema` is not
installed (the CLI passes `jsonschema` when it is)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from llmops.domain.guard import safe_regex

__all__ = ["is_json_number", "minimal_schema_errors"]


def is_json_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": is_json_number,
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def minimal_schema_errors(instance: Any, schema: Mapping[str, Any], path: str = "$") -> list[str]:
    """type, enum, const, required, properties, additionalProperties (bool), items, min/maxLength,
    pattern, minimum/maximum, min/maxItems. Unknown keywords are ignored, as JSON Schema does."""
    errors: list[str] = []
    expected = schema.get("type")
    if expected is not None:
        names = [expected] if isinstance(expected, str) else list(expected)
        if not any(_JSON_TYPES.get(n, lambda _v: False)(instance) for n in names):
            return [f"{path}: expected {' or '.join(names)}"]
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{path}: not one of the allowed values")
    if "const" in schema and instance != schema["const"]:
        errors.append(f"{path}: does not equal the constant")
    if isinstance(instance, dict):
        errors += [
            f"{path}: missing required property {name!r}" for name in schema.get("required", ()) if name not in instance
        ]
        properties: Mapping[str, Any] = schema.get("properties", {})
        for name, value in instance.items():
            if name in properties:
                errors += minimal_schema_errors(value, properties[name], f"{path}.{name}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}: unexpected property {name!r}")
    if isinstance(instance, list):
        if isinstance(schema.get("items"), Mapping):
            for index, item in enumerate(instance):
                errors += minimal_schema_errors(item, schema["items"], f"{path}[{index}]")
        if "minItems" in schema and len(instance) < schema["minItems"]:
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(instance) > schema["maxItems"]:
            errors.append(f"{path}: more than {schema['maxItems']} items")
    if isinstance(instance, str):
        if "minLength" in schema and len(instance) < schema["minLength"]:
            errors.append(f"{path}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(instance) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']}")
        if "pattern" in schema:
            try:
                matched = safe_regex.compile(schema["pattern"]).search(instance) is not None
            except safe_regex.UnsafePatternError:
                errors.append(f"{path}: pattern {schema['pattern']!r} is not a linear-time (RE2) expression")
            else:
                if not matched:
                    errors.append(f"{path}: does not match {schema['pattern']!r}")
    if is_json_number(instance):
        if "minimum" in schema and instance < schema["minimum"]:
            errors.append(f"{path}: below {schema['minimum']}")
        if "maximum" in schema and instance > schema["maximum"]:
            errors.append(f"{path}: above {schema['maximum']}")
    return errors
