"""Deterministic instances of a JSON Schema, for the emulators' tool calls and structured output.

A real model answers a forced tool or a `json_schema` response format with arguments that fit the
schema it was given; the emulators must do the same so that clients which validate the arguments
(the OpenAI SDK's `parse`, LangChain's `with_structured_output`, pydantic models) accept them. The
generator covers what function-calling schemas use: `type` (or a list of types), `enum`, `const`,
`properties` with `required`, `items`, `anyOf`/`oneOf` (the first branch), `allOf` (merged), local
`$ref`s (`#/$defs/...`, `#/definitions/...`), numeric bounds, string and array lengths, and common
string `format`s. `pattern` is not solved: a string is generated as for no pattern.

The same `seed` and schema always give the same instance, so emulator answers stay reproducible.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["instance_for"]

# A self-referencing schema (a tree of nodes) would otherwise recurse forever; past this depth an
# optional branch is left out and a required one gets the smallest value of its type.
_MAX_DEPTH = 8
_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet")


def instance_for(schema: Mapping[str, Any], seed: str) -> Any:
    """A value valid against `schema` (as far as the keywords above go), chosen from `seed`."""
    return _Generator(schema, seed).value(schema, "", 0)


class _Generator:
    def __init__(self, root: Mapping[str, Any], seed: str) -> None:
        self._root = root
        self._seed = seed

    def _pick(self, path: str, modulo: int) -> int:
        digest = hashlib.sha256(f"{self._seed}\x00{path}".encode()).digest()
        return int.from_bytes(digest[:8], "big") % max(modulo, 1)

    def _resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        seen: set[str] = set()
        while isinstance(schema.get("$ref"), str):
            ref: str = schema["$ref"]
            if ref in seen or not ref.startswith("#"):
                return {}
            seen.add(ref)
            node: Any = self._root
            for raw in ref.lstrip("#").strip("/").split("/") if ref != "#" else []:
                token = raw.replace("~1", "/").replace("~0", "~")
                node = node.get(token) if isinstance(node, Mapping) else None
            if not isinstance(node, Mapping):
                return {}
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**node, **siblings}
        if isinstance(schema.get("allOf"), list):
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for raw_branch in schema["allOf"]:
                if isinstance(raw_branch, Mapping):
                    branch = self._resolve(raw_branch)
                    for key, value in branch.items():
                        if key == "properties" and isinstance(value, Mapping):
                            merged["properties"] = {**merged.get("properties", {}), **value}
                        elif key == "required" and isinstance(value, list):
                            merged["required"] = [*merged.get("required", []), *value]
                        else:
                            merged.setdefault(key, value)
            schema = merged
        return schema

    def value(self, schema: Any, path: str, depth: int) -> Any:
        if not isinstance(schema, Mapping):
            return {} if schema is True or schema is None else None
        schema = self._resolve(schema)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][self._pick(path, len(schema["enum"]))]
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                # A non-null branch first: `Optional[X]` schemas are anyOf [X, null].
                chosen = next(
                    (b for b in branches if not (isinstance(b, Mapping) and b.get("type") == "null")), branches[0]
                )
                return self.value(chosen, path, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"] or ["null"]
            kind = kinds[0]
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
        if kind == "object":
            return self._object(schema, path, depth)
        if kind == "array":
            return self._array(schema, path, depth)
        if kind == "integer":
            return self._integer(schema, path)
        if kind == "number":
            return self._number(schema, path)
        if kind == "boolean":
            return self._pick(path, 2) == 1
        if kind == "null":
            return None
        return self._string(schema, path)

    def _object(self, schema: Mapping[str, Any], path: str, depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required = [r for r in schema.get("required", []) if isinstance(r, str)]
        # Optional properties too while shallow: a model usually fills them, and a client that
        # reads them should see values; deep down only the required ones, to stay finite.
        names = list(properties) if depth < _MAX_DEPTH // 2 else []
        names += [r for r in required if r not in names]
        out: dict[str, Any] = {}
        for name in names:
            if depth >= _MAX_DEPTH and name not in required:
                continue
            out[name] = self.value(properties.get(name, {}), f"{path}/{name}", depth + 1)
        minimum = schema.get("minProperties")
        extra = schema.get("additionalProperties")
        if isinstance(minimum, int) and len(out) < minimum and extra is not False:
            for i in range(minimum - len(out)):
                out[f"key{i}"] = self.value(extra if isinstance(extra, Mapping) else {}, f"{path}/key{i}", depth + 1)
        return out

    def _array(self, schema: Mapping[str, Any], path: str, depth: int) -> list[Any]:
        low = schema.get("minItems", 0 if depth >= _MAX_DEPTH else 1)
        high = schema.get("maxItems", max(low, 2))
        count = low if depth >= _MAX_DEPTH else min(max(low, 1 + self._pick(path + "#n", 2)), high)
        prefix = schema.get("prefixItems")
        items = schema.get("items", {})
        out = []
        for i in range(count):
            item_schema = prefix[i] if isinstance(prefix, list) and i < len(prefix) else items
            out.append(self.value(item_schema, f"{path}/{i}", depth + 1))
        if schema.get("uniqueItems") and len({repr(v) for v in out}) < len(out):
            out = out[:1]
        return out

    def _integer(self, schema: Mapping[str, Any], path: str) -> int:
        low = schema.get("minimum", 0 if "maximum" not in schema else schema["maximum"] - 100)
        high = schema.get("maximum", low + 100)
        if "exclusiveMinimum" in schema and not isinstance(schema["exclusiveMinimum"], bool):
            low = max(low, schema["exclusiveMinimum"] + 1)
        if "exclusiveMaximum" in schema and not isinstance(schema["exclusiveMaximum"], bool):
            high = min(high, schema["exclusiveMaximum"] - 1)
        low, high = math.ceil(low), math.floor(high)
        value = low + self._pick(path, high - low + 1) if high >= low else low
        step = schema.get("multipleOf")
        if isinstance(step, int) and step > 0:
            value = math.ceil(value / step) * step
            if value > high:
                value -= step
        return int(value)

    def _number(self, schema: Mapping[str, Any], path: str) -> float:
        low = float(schema.get("minimum", schema.get("exclusiveMinimum", 0.0)))
        high = float(schema.get("maximum", schema.get("exclusiveMaximum", low + 100.0)))
        # Quarters are exact in binary, so the value survives JSON round trips unchanged.
        value = low + (high - low) * (1 + self._pick(path, 3)) / 4
        return round(value, 2)

    def _string(self, schema: Mapping[str, Any], path: str) -> str:
        fmt = schema.get("format")
        token = self._pick(path, 10_000)
        if fmt == "date-time":
            return f"2026-01-{1 + token % 28:02d}T12:00:00Z"
        if fmt == "date":
            return f"2026-01-{1 + token % 28:02d}"
        if fmt == "time":
            return f"12:{token % 60:02d}:00"
        if fmt == "email":
            return f"user{token}@example.com"
        if fmt in ("uri", "url"):
            return f"https://example.com/{token}"
        if fmt == "uuid":
            digest = hashlib.sha256(f"{self._seed}\x00{path}".encode()).hexdigest()
            return f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}"
        name = path.rsplit("/", 1)[-1] or "value"
        text = f"{name} {_WORDS[token % len(_WORDS)]}"
        low = schema.get("minLength", 0)
        high = schema.get("maxLength")
        if isinstance(low, int) and len(text) < low:
            text = (text + " ") * (low // (len(text) + 1) + 1)
            text = text[:low] if high is None else text[: max(low, min(len(text), high))]
        if isinstance(high, int) and len(text) > high:
            text = text[:high]
        return text
