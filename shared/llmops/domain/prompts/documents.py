"""Prompt files: a parsed YAML or JSON mapping validated into a draft and its examples.

YAML parsing happens in the CLI, which hands the parsed mapping to `parse_prompt_document`; this
module is pure. Every problem found is reported at once, so one edit fixes them all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmops.domain.chat import Message, Role
from llmops.domain.prompts.checks import CheckKind, PropertyCheck, check_value_problem
from llmops.domain.prompts.json_schema import is_json_number
from llmops.domain.prompts.references import VariableValue
from llmops.domain.prompts.versions import PromptDraft, PromptParameters

__all__ = ["PromptDocument", "PromptDocumentError", "PromptExample", "parse_prompt_document"]

_DOC_FIELDS = frozenset(
    {"id", "template", "variables", "model", "parameters", "system", "author", "change_note", "examples"}
)
_PARAM_FIELDS = frozenset({"temperature", "top_p", "max_tokens", "stop"})


class PromptDocumentError(ValueError):
    """A prompt file failed validation; `problems` lists every problem, not just the first."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


@dataclass(frozen=True, slots=True)
class PromptExample:
    name: str
    variables: Mapping[str, VariableValue] = field(default_factory=dict)
    messages: tuple[Message, ...] = ()  # the caller's own messages, sent after the rendered ones
    checks: tuple[PropertyCheck, ...] = ()


@dataclass(frozen=True, slots=True)
class PromptDocument:
    draft: PromptDraft
    examples: tuple[PromptExample, ...] = ()


def _parameters(raw: Any, problems: list[str]) -> PromptParameters:
    if raw is None:
        return PromptParameters()
    if not isinstance(raw, Mapping):
        problems.append("parameters must be a mapping")
        return PromptParameters()
    unknown = sorted(set(raw) - _PARAM_FIELDS)
    if unknown:
        problems.append(f"parameters has unsupported fields: {', '.join(map(str, unknown))}")
    values: dict[str, Any] = {}
    for name in ("temperature", "top_p"):
        if raw.get(name) is not None:
            if is_json_number(raw[name]):
                values[name] = float(raw[name])
            else:
                problems.append(f"parameters.{name} must be a number")
    if raw.get("max_tokens") is not None:
        if isinstance(raw["max_tokens"], int) and not isinstance(raw["max_tokens"], bool):
            values["max_tokens"] = raw["max_tokens"]
        else:
            problems.append("parameters.max_tokens must be an integer")
    stop = raw.get("stop")
    if stop is not None:
        stop_list = [stop] if isinstance(stop, str) else stop
        if isinstance(stop_list, list) and all(isinstance(s, str) and s for s in stop_list):
            values["stop"] = tuple(stop_list)
        else:
            problems.append("parameters.stop must be a string or a list of non-empty strings")
    return PromptParameters(**values)


def _variables(raw: Any, problems: list[str]) -> tuple[str, ...]:
    # A list of names, or a mapping of name -> description (descriptions are documentation only).
    if raw is None:
        return ()
    if isinstance(raw, Mapping):
        raw = list(raw)
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        problems.append("variables must be a list of names or a mapping of name -> description")
        return ()
    return tuple(raw)


def _check(raw: Any, where: str, problems: list[str]) -> PropertyCheck | None:
    if not isinstance(raw, Mapping) or len(raw) != 1:
        problems.append(f"{where}: each check is a mapping with exactly one of {', '.join(CheckKind)}")
        return None
    ((name, value),) = raw.items()
    try:
        kind = CheckKind(name)
    except ValueError:
        problems.append(f"{where}: unknown check {name!r}; use one of {', '.join(CheckKind)}")
        return None
    problem = check_value_problem(kind, value)
    if problem:
        problems.append(f"{where}: {problem}")
        return None
    return PropertyCheck(kind, dict(value) if isinstance(value, Mapping) else value)


def _messages(raw: Any, where: str, problems: list[str]) -> tuple[Message, ...]:
    if raw is None:
        return ()
    out: list[Message] = []
    if isinstance(raw, list):
        for index, item in enumerate(raw):
            role = item.get("role") if isinstance(item, Mapping) else None
            content = item.get("content") if isinstance(item, Mapping) else None
            if role in ("user", "assistant", "system") and isinstance(content, str):
                out.append(Message(Role(role), content))
            else:
                problems.append(f"{where}.messages[{index}] needs role (user|assistant|system) and content")
        return tuple(out)
    problems.append(f"{where}.messages must be a list")
    return ()


def _examples(raw: Any, declared: tuple[str, ...], problems: list[str]) -> tuple[PromptExample, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append("examples must be a list")
        return ()
    examples: list[PromptExample] = []
    for index, item in enumerate(raw):
        where = f"examples[{index}]"
        if not isinstance(item, Mapping):
            problems.append(f"{where} must be a mapping")
            continue
        name = str(item.get("name") or f"example-{index + 1}")
        variables = item.get("variables") or {}
        if not isinstance(variables, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str | int | float) for k, v in variables.items()
        ):
            problems.append(f"{where}.variables must map names to strings, numbers or booleans")
            variables = {}
        missing, unknown = set(declared) - set(variables), set(variables) - set(declared)
        if missing:
            problems.append(f"{where}: missing variables: {', '.join(sorted(missing))}")
        if unknown:
            problems.append(f"{where}: unknown variables: {', '.join(sorted(unknown))}")
        raw_checks = item.get("expect") or []
        if not isinstance(raw_checks, list):
            problems.append(f"{where}.expect must be a list of checks")
            raw_checks = []
        checks = [_check(c, f"{where}.expect[{i}]", problems) for i, c in enumerate(raw_checks)]
        examples.append(
            PromptExample(
                name=name,
                variables=dict(variables),
                messages=_messages(item.get("messages"), where, problems),
                checks=tuple(c for c in checks if c is not None),
            )
        )
    return tuple(examples)


def _optional_str(raw: Mapping[str, Any], name: str, problems: list[str]) -> str | None:
    value = raw.get(name)
    if value is None or isinstance(value, str):
        return value
    problems.append(f"{name} must be a string")
    return None


def parse_prompt_document(raw: Any) -> PromptDocument:
    """Validates a parsed prompt file (YAML or JSON) and returns its draft and examples.

    Raises `PromptDocumentError` listing every problem found, so one edit fixes them all.
    """
    if not isinstance(raw, Mapping):
        raise PromptDocumentError(["a prompt file is a mapping with at least `id` and `template`"])
    problems: list[str] = []
    unknown = sorted(set(map(str, raw)) - _DOC_FIELDS)
    if unknown:
        problems.append(f"unknown fields: {', '.join(unknown)}")
    prompt_id = raw.get("id")
    template = raw.get("template")
    if not isinstance(prompt_id, str):
        problems.append("id is required and must be a string")
    if not isinstance(template, str):
        problems.append("template is required and must be a string")
    draft = PromptDraft(
        prompt_id=prompt_id if isinstance(prompt_id, str) else "",
        template=template if isinstance(template, str) else "",
        variables=_variables(raw.get("variables"), problems),
        model=_optional_str(raw, "model", problems),
        parameters=_parameters(raw.get("parameters"), problems),
        system=_optional_str(raw, "system", problems),
        author=_optional_str(raw, "author", problems) or "",
        change_note=_optional_str(raw, "change_note", problems) or "",
    )
    if isinstance(prompt_id, str) and isinstance(template, str):
        problems += draft.problems()
    examples = _examples(raw.get("examples"), draft.variables, problems)
    if problems:
        raise PromptDocumentError(problems)
    return PromptDocument(draft=draft, examples=examples)
