"""Prompt registry domain: versions, labels, references and strict, code-free rendering.

A prompt has immutable numbered versions and movable labels (`production`, `staging`, ...).
Requests name one with the extra field `prompt: {id, version | label, variables}`.

Templates use `{{ name }}` placeholders and nothing else: no expressions, filters, loops or
attribute access, so a template can never run code (jinja2 would be both a sandbox risk and a
Lambda-bundle cost). Substitution is one pass, so a variable value that itself contains `{{ x }}`
stays literal text. Rendering is strict: a missing or an undeclared variable is a 400 naming it.

Templates are scoped. A tenant's own template is visible to that tenant's keys only; a shared
template (no tenant) to every tenant. The registry names a template by its *scoped id*,
`<tenant>/<id>` or the bare `<id>` for a shared one (neither part may contain `/`). A request's
`prompt.id` is always the bare id: it resolves to the caller's own template when the tenant has
one of that id (which then shadows any shared template of the same id, versions and labels
alike), else to the shared one, and a template of another tenant is as absent as one that was
never pushed. Audit records and `x-llmops-prompt` carry the scoped ref, `team-a/support@3`.

This module is pure; YAML parsing happens in the CLI, which hands the parsed mapping to
`parse_prompt_document`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from llmops.domain.chat import ChatRequest, Message, Role
from llmops.domain.errors import BadRequestError, GatewayError
from llmops.domain.guard import safe_regex
from llmops.domain.keys import validate_tenant_id

__all__ = [
    "DEFAULT_LABEL",
    "PROMPT_MODEL",
    "PROMPT_NOT_FOUND",
    "CheckKind",
    "CheckResult",
    "LabelState",
    "PromptDocument",
    "PromptDocumentError",
    "PromptDraft",
    "PromptExample",
    "PromptNotFoundError",
    "PromptParameters",
    "PromptRef",
    "PromptSource",
    "PromptVersion",
    "PropertyCheck",
    "ResolvedPrompt",
    "SchemaValidator",
    "apply_prompt",
    "check_output",
    "diff",
    "minimal_schema_errors",
    "parse_prompt_document",
    "placeholders",
    "render",
    "scoped_prompt_id",
    "split_scoped_prompt_id",
    "validate_label",
    "validate_prompt_id",
    "validate_scoped_prompt_id",
]

DEFAULT_LABEL = "production"  # what a reference without version or label resolves to
PROMPT_MODEL = "@prompt"  # a request `model` meaning "use the prompt's default model alias"

_ID_RE = safe_regex.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Labels never look like a number, so `diff ID A B` can tell a version from a label.
_LABEL_RE = safe_regex.compile(r"^[A-Za-z_][A-Za-z0-9._-]{0,31}$")
_VARIABLE_RE = safe_regex.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_PLACEHOLDER_RE = safe_regex.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}")
# Anything that opens template syntax but is not a plain placeholder is rejected at push time.
_SYNTAX_OPENERS = ("{{", "{%", "{#")
_MAX_TEMPLATE_CHARS = 100_000
_MAX_STOP = 4
_VARIABLES_PARAM = "prompt.variables"
# Neither tenant ids nor prompt ids may contain it, so a scoped id splits one way only.
_SCOPE_SEPARATOR = "/"


# What a chat request hears for a reference that names nothing it may use. The reference is not
# echoed: its id and label are the caller's strings (the CLI, whose user is the operator, does).
PROMPT_NOT_FOUND = "The prompt named in 'prompt' (id, version or label) does not exist."


class PromptNotFoundError(GatewayError):
    status = 404
    error_type = "invalid_request_error"
    code = "prompt_not_found"


class PromptDocumentError(ValueError):
    """A prompt file failed validation; `problems` lists every problem, not just the first."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


def validate_prompt_id(prompt_id: str) -> str:
    if not isinstance(prompt_id, str) or not _ID_RE.match(prompt_id):
        raise ValueError(f"invalid prompt id {prompt_id!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return prompt_id


def scoped_prompt_id(prompt_id: str, tenant_id: str | None) -> str:
    """The registry's name for a template: `<tenant>/<id>`, or `<id>` for a shared one."""
    return prompt_id if tenant_id is None else f"{tenant_id}{_SCOPE_SEPARATOR}{prompt_id}"


def split_scoped_prompt_id(scoped_id: str) -> tuple[str | None, str]:
    """`(tenant_id, prompt_id)` of a scoped id; the tenant is None for a shared template."""
    tenant_id, _, prompt_id = scoped_id.rpartition(_SCOPE_SEPARATOR)
    return (tenant_id or None), prompt_id


def validate_scoped_prompt_id(scoped_id: str) -> str:
    """Raises ValueError unless `scoped_id` is `<id>` or `<tenant>/<id>`, each part valid."""
    tenant_id, prompt_id = split_scoped_prompt_id(scoped_id)
    validate_prompt_id(prompt_id)
    if tenant_id is not None:
        validate_tenant_id(tenant_id)
    return scoped_id


def validate_label(label: str) -> str:
    if not isinstance(label, str) or not _LABEL_RE.match(label):
        raise ValueError(
            f"invalid label {label!r}: 1-32 letters, digits, '.', '_' or '-', starting with a letter or '_'"
        )
    return label


# -- templates -------------------------------------------------------------------------------------


def placeholders(template: str) -> tuple[str, ...]:
    """Variable names used by `template`, in first-use order."""
    seen: dict[str, None] = {}
    for match in _PLACEHOLDER_RE.finditer(template):
        seen.setdefault(match.group(1), None)
    return tuple(seen)


def _syntax_problems(template: str, where: str) -> list[str]:
    leftover = _PLACEHOLDER_RE.sub("", template)
    found = sorted({opener for opener in _SYNTAX_OPENERS if opener in leftover})
    if not found:
        return []
    return [
        f"{where}: unsupported template syntax ({', '.join(repr(f) for f in found)}); "
        "only {{ name }} placeholders are allowed"
    ]


def _substitute(template: str, values: Mapping[str, str]) -> str:
    # One pass: replacement text is never scanned again, so values cannot inject placeholders.
    return _PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], template)


# -- versions --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PromptParameters:
    """Defaults applied when the request does not set them itself."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()

    def problems(self) -> list[str]:
        found: list[str] = []
        if self.temperature is not None and not 0 <= self.temperature <= 2:
            found.append("parameters.temperature must be between 0 and 2")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            found.append("parameters.top_p must be in (0, 1]")
        if self.max_tokens is not None and self.max_tokens < 1:
            found.append("parameters.max_tokens must be at least 1")
        if len(self.stop) > _MAX_STOP:
            found.append(f"parameters.stop allows at most {_MAX_STOP} sequences")
        return found

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.temperature is not None:
            out["temperature"] = self.temperature
        if self.top_p is not None:
            out["top_p"] = self.top_p
        if self.max_tokens is not None:
            out["max_tokens"] = self.max_tokens
        if self.stop:
            out["stop"] = list(self.stop)
        return out


@dataclass(frozen=True, slots=True)
class PromptDraft:
    """A version's content before the registry numbers it."""

    prompt_id: str
    template: str
    variables: tuple[str, ...] = ()
    model: str | None = None  # default model alias
    parameters: PromptParameters = field(default_factory=PromptParameters)
    system: str | None = None
    author: str = ""
    change_note: str = ""
    tenant_id: str | None = None  # the owning tenant; None: shared with every tenant

    @property
    def scoped_id(self) -> str:
        return scoped_prompt_id(self.prompt_id, self.tenant_id)

    def problems(self) -> list[str]:
        found: list[str] = []
        try:
            validate_prompt_id(self.prompt_id)
            if self.tenant_id is not None:
                validate_tenant_id(self.tenant_id)
        except ValueError as exc:
            found.append(str(exc))
        if not self.template.strip():
            found.append("template must not be empty")
        if len(self.template) + len(self.system or "") > _MAX_TEMPLATE_CHARS:
            found.append(f"template and system prompt together exceed {_MAX_TEMPLATE_CHARS} characters")
        found += _syntax_problems(self.template, "template")
        if self.system is not None:
            found += _syntax_problems(self.system, "system")
        bad_names = [v for v in self.variables if not _VARIABLE_RE.match(v)]
        if bad_names:
            found.append(f"invalid variable names: {', '.join(bad_names)}")
        if len(set(self.variables)) != len(self.variables):
            found.append("variables are declared more than once")
        used = set(self.used_variables())
        declared = set(self.variables)
        if used - declared:
            found.append(f"undeclared variables used in the template: {', '.join(sorted(used - declared))}")
        if declared - used:
            found.append(f"declared variables never used: {', '.join(sorted(declared - used))}")
        if self.model is not None and not self.model.strip():
            found.append("model must not be blank")
        found += self.parameters.problems()
        return found

    def used_variables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*placeholders(self.system or ""), *placeholders(self.template))))

    def content(self) -> dict[str, Any]:
        """What makes two versions the same prompt: authorship and notes do not."""
        return {
            "prompt_id": self.prompt_id,
            "template": self.template,
            "variables": list(self.variables),
            "model": self.model,
            "parameters": self.parameters.to_dict(),
            "system": self.system,
        }

    @property
    def fingerprint(self) -> str:
        canonical = json.dumps(self.content(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def to_version(self, version: int, created_at: float) -> PromptVersion:
        return PromptVersion(
            prompt_id=self.prompt_id,
            version=version,
            template=self.template,
            variables=self.variables,
            model=self.model,
            parameters=self.parameters,
            system=self.system,
            author=self.author,
            change_note=self.change_note,
            created_at=created_at,
            tenant_id=self.tenant_id,
        )


@dataclass(frozen=True, slots=True)
class PromptVersion:
    prompt_id: str
    version: int
    template: str
    variables: tuple[str, ...] = ()
    model: str | None = None
    parameters: PromptParameters = field(default_factory=PromptParameters)
    system: str | None = None
    author: str = ""
    change_note: str = ""
    created_at: float = 0.0
    tenant_id: str | None = None  # the owning tenant; None: shared with every tenant

    @property
    def scoped_id(self) -> str:
        return scoped_prompt_id(self.prompt_id, self.tenant_id)

    @property
    def ref(self) -> str:
        """`[tenant/]id@version`: what the audit record and the `x-llmops-prompt` header carry, so a
        tenant's own template and a shared one of the same id are never confused."""
        return f"{self.scoped_id}@{self.version}"

    @property
    def draft(self) -> PromptDraft:
        return PromptDraft(
            prompt_id=self.prompt_id,
            template=self.template,
            variables=self.variables,
            model=self.model,
            parameters=self.parameters,
            system=self.system,
            author=self.author,
            change_note=self.change_note,
            tenant_id=self.tenant_id,
        )

    @property
    def fingerprint(self) -> str:
        return self.draft.fingerprint


@dataclass(frozen=True, slots=True)
class LabelState:
    """A label and where it pointed before (oldest first), so `rollback` can step back.

    `prompt_id` is the registry subject the label belongs to: a prompt's scoped id
    (`team-a/support`, or `support` when shared), or a guard policy's name."""

    prompt_id: str
    label: str
    version: int
    history: tuple[int, ...] = ()
    updated_at: float = 0.0
    updated_by: str = ""


class PromptSource(Protocol):
    """Reads the registry by scoped id; the DynamoDB store implements it, the gateway caches it."""

    def get_version(self, prompt_id: str, version: int) -> PromptVersion | None: ...

    def get_label(self, prompt_id: str, label: str) -> LabelState | None: ...

    def has_versions(self, prompt_id: str) -> bool:
        """Whether any version of this scoped id exists."""
        ...


# -- references and rendering ----------------------------------------------------------------------

VariableValue = str | int | float | bool


@dataclass(frozen=True, slots=True)
class PromptRef:
    prompt_id: str
    version: int | None = None
    label: str | None = None
    variables: Mapping[str, VariableValue] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Any) -> PromptRef:
        """Validates the request's `prompt` field; every error is a 400 naming the bad parameter."""
        if not isinstance(raw, Mapping):
            raise BadRequestError("prompt must be an object {id, version | label, variables}.", param="prompt")
        unknown = sorted(set(raw) - {"id", "version", "label", "variables"})
        if unknown:
            raise BadRequestError("prompt takes only the fields id, version, label and variables.", param="prompt")
        prompt_id = raw.get("id")
        if not isinstance(prompt_id, str) or not _ID_RE.match(prompt_id):
            raise BadRequestError("prompt.id must be a registered prompt id.", param="prompt.id")
        version, label = raw.get("version"), raw.get("label")
        if version is not None and label is not None:
            raise BadRequestError("Give prompt.version or prompt.label, not both.", param="prompt")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
            raise BadRequestError("prompt.version must be a positive integer.", param="prompt.version")
        if label is not None and (not isinstance(label, str) or not _LABEL_RE.match(label)):
            raise BadRequestError("prompt.label is not a valid label name.", param="prompt.label")
        variables = raw.get("variables") or {}
        if not isinstance(variables, Mapping):
            raise BadRequestError("prompt.variables must be an object.", param=_VARIABLES_PARAM)
        bad = sorted(
            str(k)
            for k, v in variables.items()
            if not isinstance(k, str)
            or not isinstance(v, str | int | float)
            or (isinstance(v, float) and not math.isfinite(v))
        )
        if bad:
            raise BadRequestError(
                f"prompt.variables values must be strings, numbers or booleans ({len(bad)} are not).",
                param=_VARIABLES_PARAM,
            )
        if version is None and label is None:
            label = DEFAULT_LABEL
        return cls(prompt_id=prompt_id, version=version, label=label, variables=dict(variables))

    @property
    def selector(self) -> str:
        return f"{self.prompt_id}@{self.version}" if self.version is not None else f"{self.prompt_id}:{self.label}"

    def to_request_field(self) -> dict[str, Any]:
        """The wire form of the extra `prompt` field (what `prompts test` sends via extra_body)."""
        out: dict[str, Any] = {"id": self.prompt_id, "variables": dict(self.variables)}
        if self.version is not None:
            out["version"] = self.version
        else:
            out["label"] = self.label
        return out


class ResolvedPrompt(NamedTuple):
    """A reference resolved to its version and rendered: `version, messages = resolver.resolve(ref)`."""

    version: PromptVersion
    messages: tuple[Message, ...]


def _as_text(value: VariableValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render(version: PromptVersion, variables: Mapping[str, VariableValue]) -> tuple[Message, ...]:
    """The messages a prompt version renders to: its system prompt (if any), then the template as a
    user message. Missing or undeclared variables are a 400 naming all of them."""
    declared = set(version.variables)
    given = set(variables)
    missing, unknown = sorted(declared - given), sorted(given - declared)
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing variables: {', '.join(missing)}")
        if unknown:
            # The caller's names are echoed only if they are variable-shaped: a key may hold anything.
            named = [name for name in unknown if _VARIABLE_RE.match(name)]
            others = f"{', ' if named else ''}{len(unknown) - len(named)} more" if len(named) < len(unknown) else ""
            parts.append(f"unknown variables: {', '.join(named)}{others}")
        raise BadRequestError(f"prompt {version.ref}: {'; '.join(parts)}.", param=_VARIABLES_PARAM)
    values = {name: _as_text(value) for name, value in variables.items()}
    messages: list[Message] = []
    if version.system:
        messages.append(Message(Role.SYSTEM, _substitute(version.system, values)))
    messages.append(Message(Role.USER, _substitute(version.template, values)))
    return tuple(messages)


def apply_prompt(request: ChatRequest, version: PromptVersion, rendered: Sequence[Message]) -> ChatRequest:
    """The request the gateway routes: rendered messages first, then the caller's own messages;
    the prompt's parameters fill in whatever the caller left unset; `model="@prompt"` takes the
    prompt's default alias."""
    model = request.model
    if model == PROMPT_MODEL:
        if not version.model:
            raise BadRequestError(f"prompt {version.ref} has no default model; name one in `model`.", param="model")
        model = version.model
    params = version.parameters
    return replace(
        request,
        model=model,
        messages=(*rendered, *request.messages),
        temperature=request.temperature if request.temperature is not None else params.temperature,
        top_p=request.top_p if request.top_p is not None else params.top_p,
        max_tokens=request.max_tokens if request.max_tokens is not None else params.max_tokens,
        stop=request.stop or params.stop,
    )


# -- diff ------------------------------------------------------------------------------------------


def _diff_lines(version: PromptVersion) -> list[str]:
    lines = [
        f"model: {version.model or '-'}",
        f"parameters: {json.dumps(version.parameters.to_dict(), sort_keys=True)}",
        f"variables: {', '.join(version.variables) or '-'}",
        "system:",
        *(f"  {line}" for line in (version.system or "").splitlines()),
        "template:",
        *(f"  {line}" for line in version.template.splitlines()),
    ]
    return [line + "\n" for line in lines]


def diff(a: PromptVersion, b: PromptVersion) -> str:
    """A unified diff of two versions' content (empty when they are the same)."""
    return "".join(difflib.unified_diff(_diff_lines(a), _diff_lines(b), fromfile=a.ref, tofile=b.ref))


# -- prompt files and property checks --------------------------------------------------------------


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


# Validates an instance against a JSON schema and returns the error messages (none = valid).
SchemaValidator = Callable[[Any, Mapping[str, Any]], list[str]]

_DOC_FIELDS = frozenset(
    {"id", "template", "variables", "model", "parameters", "system", "author", "change_note", "examples"}
)
_PARAM_FIELDS = frozenset({"temperature", "top_p", "max_tokens", "stop"})


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


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
            if _number(raw[name]):
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
    problem = _check_value_problem(kind, value)
    if problem:
        problems.append(f"{where}: {problem}")
        return None
    return PropertyCheck(kind, dict(value) if isinstance(value, Mapping) else value)


def _check_value_problem(kind: CheckKind, value: Any) -> str | None:
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


# -- a minimal JSON Schema subset (used only when `jsonschema` is not installed) -------------------

_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
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
    if _number(instance):
        if "minimum" in schema and instance < schema["minimum"]:
            errors.append(f"{path}: below {schema['minimum']}")
        if "maximum" in schema and instance > schema["maximum"]:
            errors.append(f"{path}: above {schema['maximum']}")
    return errors
