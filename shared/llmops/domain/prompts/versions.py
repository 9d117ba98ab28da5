"""Prompt versions in the registry: ids and tenant scopes, the content of a version, and its diff.

Templates are scoped. A tenant's own template is visible to that tenant's keys only; a shared
template (no tenant) to every tenant. The registry names a template by its *scoped id*,
`<tenant>/<id>` or the bare `<id>` for a shared one (neither part may contain `/`): that is the
registry subject (`llmops.domain.registry`) versions and labels belong to.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmops.domain.keys import validate_tenant_id
from llmops.domain.prompts.templates import is_variable_name, placeholders, syntax_problems
from llmops.domain.registry import RegistryKind, RegistryNotFoundError, RegistrySource, unified_diff, validate_name

__all__ = [
    "PROMPTS",
    "PROMPT_NOT_FOUND",
    "PromptDraft",
    "PromptNotFoundError",
    "PromptParameters",
    "PromptSource",
    "PromptVersion",
    "diff",
    "scoped_prompt_id",
    "split_scoped_prompt_id",
    "validate_prompt_id",
    "validate_scoped_prompt_id",
]

_MAX_TEMPLATE_CHARS = 100_000
_MAX_STOP = 4
# Neither tenant ids nor prompt ids may contain it, so a scoped id splits one way only.
_SCOPE_SEPARATOR = "/"


def validate_prompt_id(prompt_id: str) -> str:
    return validate_name(prompt_id, "prompt id")


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


# What a chat request hears for a reference that names nothing it may use. The reference is not
# echoed: its id and label are the caller's strings (the CLI, whose user is the operator, does).
PROMPT_NOT_FOUND = "The prompt named in 'prompt' (id, version or label) does not exist."


class PromptNotFoundError(RegistryNotFoundError):
    code = "prompt_not_found"


PROMPTS = RegistryKind("prompt", validate_scoped_prompt_id, PromptNotFoundError, param="prompt")


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

    subject = scoped_id  # the registry subject

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
        found += syntax_problems(self.template, "template")
        if self.system is not None:
            found += syntax_problems(self.system, "system")
        bad_names = [v for v in self.variables if not is_variable_name(v)]
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

    subject = scoped_id  # the registry subject

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


class PromptSource(RegistrySource[PromptVersion], Protocol):
    """Reads the prompt registry by scoped id; the DynamoDB store implements it, the gateway caches it."""

    def has_versions(self, subject: str, /) -> bool:
        """Whether any version of this scoped id exists."""
        ...


def _diff_lines(version: PromptVersion) -> list[str]:
    return [
        f"model: {version.model or '-'}",
        f"parameters: {json.dumps(version.parameters.to_dict(), sort_keys=True)}",
        f"variables: {', '.join(version.variables) or '-'}",
        "system:",
        *(f"  {line}" for line in (version.system or "").splitlines()),
        "template:",
        *(f"  {line}" for line in version.template.splitlines()),
    ]


def diff(a: PromptVersion, b: PromptVersion) -> str:
    """A unified diff of two versions' content (empty when they are the same)."""
    return unified_diff(_diff_lines(a), _diff_lines(b), a.ref, b.ref)
