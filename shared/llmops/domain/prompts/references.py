"""A chat request's `prompt` field: the reference, rendering the version it names, and the request
the gateway routes.

Requests name a version with the extra field `prompt: {id, version | label, variables}`. Rendering
is strict: a missing or an undeclared variable is a 400 naming it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from llmops.domain.chat import ChatRequest, Message, Role
from llmops.domain.errors import BadRequestError
from llmops.domain.prompts.templates import is_variable_name, substitute
from llmops.domain.prompts.versions import PromptVersion
from llmops.domain.registry import DEFAULT_LABEL, is_valid_label, is_valid_name

__all__ = ["PROMPT_MODEL", "PromptRef", "ResolvedPrompt", "VariableValue", "apply_prompt", "render"]

PROMPT_MODEL = "@prompt"  # a request `model` meaning "use the prompt's default model alias"
_VARIABLES_PARAM = "prompt.variables"

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
        if not is_valid_name(prompt_id):
            raise BadRequestError("prompt.id must be a registered prompt id.", param="prompt.id")
        version, label = raw.get("version"), raw.get("label")
        if version is not None and label is not None:
            raise BadRequestError("Give prompt.version or prompt.label, not both.", param="prompt")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
            raise BadRequestError("prompt.version must be a positive integer.", param="prompt.version")
        if label is not None and not is_valid_label(label):
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
            named = [name for name in unknown if is_variable_name(name)]
            others = f"{', ' if named else ''}{len(unknown) - len(named)} more" if len(named) < len(unknown) else ""
            parts.append(f"unknown variables: {', '.join(named)}{others}")
        raise BadRequestError(f"prompt {version.ref}: {'; '.join(parts)}.", param=_VARIABLES_PARAM)
    values = {name: _as_text(value) for name, value in variables.items()}
    messages: list[Message] = []
    if version.system:
        messages.append(Message(Role.SYSTEM, substitute(version.system, values)))
    messages.append(Message(Role.USER, substitute(version.template, values)))
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
