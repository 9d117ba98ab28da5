"""Property checks on a model's output, declared by a prompt file's examples (`expect:`) and run
by `llmops prompts test`."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from llmops.domain.guard import safe_regex
from llmops.domain.prompts.json_schema import minimal_schema_errors

__all__ = ["CheckKind", "CheckResult", "PropertyCheck", "SchemaValidator", "check_output", "check_value_problem"]


class CheckKind(StrEnum):
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    REGEX = "regex"
    JSON_SCHEMA = "json_schema"
    MAX_LENGTH = "max_length"


@dataclass(frozen=True, slots=True)
class PropertyCheck:
    kind: CheckKind
    value: Any  # str for contains/not_contains/regex, a schema mapping, or an int for max_length

    def describe(self) -> str:
        if self.kind is CheckKind.JSON_SCHEMA:
            return "json_schema"
        return f"{self.kind.value} {self.value!r}"


@dataclass(frozen=True, slots=True)
class CheckResult:
    check: PropertyCheck
    passed: bool
    detail: str = ""


# Validates an instance against a JSON schema and returns the error messages (none = valid).
SchemaValidator = Callable[[Any, Mapping[str, Any]], list[str]]


def check_value_problem(kind: CheckKind, value: Any) -> str | None:
    """What is wrong with `value` as the argument of a `kind` check (None: nothing)."""
    if kind in (CheckKind.CONTAINS, CheckKind.NOT_CONTAINS):
        return None if isinstance(value, str) and value else f"{kind.value} needs a non-empty string"
    if kind is CheckKind.REGEX:
        if not isinstance(value, str):
            return "regex needs a string"
        try:
            safe_regex.compile(value)  # RE2: model output is untrusted, so the check must run in linear time
        except safe_regex.UnsafePatternError as exc:
            return f"invalid regex (RE2 syntax, no look-around or backreferences): {exc}"
        return None
    if kind is CheckKind.MAX_LENGTH:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        return None if ok else "max_length needs a positive integer"
    return None if isinstance(value, Mapping) else "json_schema needs a mapping"


def check_output(
    text: str, checks: Sequence[PropertyCheck], validate_schema: SchemaValidator | None = None
) -> list[CheckResult]:
    """Runs the declared property checks on one output. `validate_schema` defaults to a small
    built-in subset of JSON Schema; the CLI passes `jsonschema` when it is installed."""
    validator = validate_schema or minimal_schema_errors
    results: list[CheckResult] = []
    for check in checks:
        if check.kind is CheckKind.CONTAINS:
            ok = check.value in text
            results.append(CheckResult(check, ok, "" if ok else "not found in the output"))
        elif check.kind is CheckKind.NOT_CONTAINS:
            ok = check.value not in text
            results.append(CheckResult(check, ok, "" if ok else "found in the output"))
        elif check.kind is CheckKind.REGEX:
            ok = safe_regex.compile(check.value).search(text) is not None
            results.append(CheckResult(check, ok, "" if ok else "no match"))
        elif check.kind is CheckKind.MAX_LENGTH:
            ok = len(text) <= check.value
            results.append(CheckResult(check, ok, "" if ok else f"{len(text)} characters"))
        else:
            try:
                instance = json.loads(text)
            except ValueError:
                results.append(CheckResult(check, False, "output is not JSON"))
                continue
            errors = validator(instance, check.value)
            results.append(CheckResult(check, not errors, "; ".join(errors[:3])))
    return results
