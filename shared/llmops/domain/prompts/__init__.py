"""Prompt registry domain: versions, labels, references and strict, code-free rendering.

A prompt has immutable numbered versions and movable labels (`production`, `staging`, ...), kept
by the versioned-label registry shared with guard policies (`llmops.domain.registry`).
Requests name one with the extra field `prompt: {id, version | label, variables}`.

Templates use `{{ name }}` placeholders and nothing else (`templates`), so a template can never
run code. Rendering is strict: a missing or an undeclared variable is a 400 naming it.

Templates are scoped. A tenant's own template is visible to that tenant's keys only; a shared
template (no tenant) to every tenant. The registry names a template by its *scoped id*,
`<tenant>/<id>` or the bare `<id>` for a shared one (neither part may contain `/`). A request's
`prompt.id` is always the bare id: it resolves to the caller's own template when the tenant has
one of that id (which then shadows any shared template of the same id, versions and labels
alike), else to the shared one, and a template of another tenant is as absent as one that was
never pushed. Audit records and `x-llmops-prompt` carry the scoped ref, `team-a/support@3`.

The package is pure, one idea a module:
- `versions`: ids and scopes, a version's content (`PromptDraft`, `PromptVersion`) and its diff;
- `templates`: the placeholder syntax;
- `references`: a request's `prompt` field, rendering and the request the gateway routes;
- `documents`: prompt files (YAML parsing happens in the CLI, which hands the parsed mapping to
  `parse_prompt_document`) and their examples;
- `checks`: the property checks `llmops prompts test` runs on an output;
- `json_schema`: the small JSON Schema subset those checks fall back on.
"""

from llmops.domain.prompts.checks import CheckKind, CheckResult, PropertyCheck, SchemaValidator, check_output
from llmops.domain.prompts.documents import PromptDocument, PromptDocumentError, PromptExample, parse_prompt_document
from llmops.domain.prompts.json_schema import minimal_schema_errors
from llmops.domain.prompts.references import PROMPT_MODEL, PromptRef, ResolvedPrompt, apply_prompt, render
from llmops.domain.prompts.templates import placeholders
from llmops.domain.prompts.versions import (
    PROMPT_NOT_FOUND,
    PROMPTS,
    PromptDraft,
    PromptNotFoundError,
    PromptParameters,
    PromptSource,
    PromptVersion,
    diff,
    scoped_prompt_id,
    split_scoped_prompt_id,
    validate_prompt_id,
    validate_scoped_prompt_id,
)
from llmops.domain.registry import DEFAULT_LABEL, LabelState, validate_label

__all__ = [
    "DEFAULT_LABEL",
    "PROMPTS",
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
