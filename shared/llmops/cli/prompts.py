"""`llmops prompts push|list|show|diff|label|rollback|test`: the prompt registry, like code.

The registry verbs are the shared ones (`llmops.cli.registry_commands`); this module gives them
what is the prompts' own. Templates are scoped: `--tenant T` addresses tenant T's own template,
which only T's keys can render; without it a command addresses the shared template of that id,
which every tenant can render. `push` makes the choice explicit (`--tenant T` or `--shared`), so a
confidential system prompt is never shared by accident.
`test` (`llmops.cli.prompt_tests`) runs a prompt file's examples through the gateway and checks
the declared properties of each answer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from llmops.adapters.dynamodb.prompt_store import DynamoPromptStore, PromptSummary, prompt_summaries
from llmops.adapters.dynamodb.registry_store import DynamoRegistryStore
from llmops.cli.prompt_tests import PromptFile, add_test_command
from llmops.cli.registry_commands import PushPlan, RegistryCommands, Values, argument, authorship_json, option
from llmops.cli.terminal import console, current_actor, errors, fail, utc_time
from llmops.domain.keys import validate_tenant_id
from llmops.domain.prompts import (
    LabelState,
    PromptDocument,
    PromptDocumentError,
    PromptVersion,
    diff,
    parse_prompt_document,
    scoped_prompt_id,
    validate_label,
)

__all__ = ["COMMANDS", "app", "load_prompt_file"]

_TENANT = option(
    "tenant",
    Annotated[
        str | None,
        typer.Option("--tenant", help="The tenant owning the prompt (default: the shared prompt of that id)."),
    ],
)


def load_prompt_file(path: Path) -> PromptDocument:
    """Parses and validates a prompt file; YAML is a superset of JSON, so one parser reads both."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PromptDocumentError([f"{path}: not valid YAML/JSON: {exc}"]) from None
    return parse_prompt_document(raw)


def load(path: Path) -> PromptDocument:
    """The prompt file at `path`, or exit 2 listing every problem with it."""
    try:
        return load_prompt_file(path)
    except PromptDocumentError as exc:
        errors.print(f"[red]error:[/] {path} is not a valid prompt file:")
        for problem in exc.problems:
            errors.print(f"  - {problem}")
        raise typer.Exit(2) from None


def tenant_of(tenant: str | None) -> str | None:
    if tenant is None:
        return None
    try:
        return validate_tenant_id(tenant)
    except ValueError as exc:
        fail(str(exc))


class PromptCommands(RegistryCommands[PromptVersion, PromptSummary]):
    noun = "prompt"
    name_param = argument("prompt_id", Annotated[str, typer.Argument(help="Prompt id.")])
    file_param = argument("file", PromptFile)
    push_params = (
        option("label", Annotated[str | None, typer.Option("--label", help="Also point this label at the version.")]),
        option("note", Annotated[str | None, typer.Option("--note", help="Change note (overrides the file's).")]),
        option("author", Annotated[str | None, typer.Option("--author", help="Author (overrides the file's).")]),
        _TENANT,
        option(
            "shared",
            Annotated[bool, typer.Option("--shared", help="Store it as a shared prompt that every tenant can render.")],
            False,
        ),
    )
    scope_params = (_TENANT,)
    list_params = (
        option(
            "tenant",
            Annotated[
                str | None,
                typer.Option(
                    "--tenant", help="Only what this tenant's keys can render: its own prompts and the shared ones."
                ),
            ],
        ),
    )
    pushed_messages = ("Pushed [bold cyan]{v.ref}[/]", "Unchanged, latest is [bold cyan]{v.ref}[/]")
    list_title = "Prompts"
    name_columns = ("id", "tenant")
    help_overrides = {
        "push": "Validate FILE and store it as the prompt's next version (no-op if unchanged).\n\n"
        "Give --tenant T (only T's keys can render it) or --shared (every tenant can).",
        "list": "List prompts (every tenant's and the shared ones) with their latest version and labels.",
    }

    def open_store(self, client: Any, table: str) -> DynamoRegistryStore[PromptVersion]:
        return DynamoPromptStore(client, table)

    def subject(self, name: str, values: Values) -> str:
        return scoped_prompt_id(name, tenant_of(values["tenant"]))

    def push_plan(self, file: Path, values: Values) -> PushPlan[PromptVersion]:
        tenant, note, author, label = values["tenant"], values["note"], values["author"], values["label"]
        if (tenant is None) == (not values["shared"]):
            fail("say whose prompt this is: --tenant TENANT (only that tenant's keys can render it) or --shared")
        draft = replace(load(file).draft, tenant_id=tenant_of(tenant))
        if note is not None or author is not None or not draft.author:
            draft = replace(
                draft,
                change_note=note if note is not None else draft.change_note,
                author=author or draft.author or current_actor(None),
            )
        if label is not None:
            try:
                validate_label(label)
            except ValueError as exc:
                fail(str(exc))
        return PushPlan(draft, label, current_actor(None))

    def version_json(self, version: PromptVersion) -> dict[str, Any]:
        return {
            "id": version.prompt_id,
            "tenant": version.tenant_id,
            "version": version.version,
            "ref": version.ref,
            "model": version.model,
            "parameters": version.parameters.to_dict(),
            "variables": list(version.variables),
            "system": version.system,
            "template": version.template,
            **authorship_json(version),
        }

    def print_version(self, version: PromptVersion, labels: Sequence[LabelState]) -> None:
        console.print(f"[bold cyan]{version.ref}[/]  by {version.author or '-'} at {utc_time(version.created_at)} UTC")
        if version.change_note:
            console.print(f"note: {version.change_note}")
        console.print(f"model: {version.model or '-'}   parameters: {json.dumps(version.parameters.to_dict())}")
        console.print(f"variables: {', '.join(version.variables) or '-'}")
        pointing = [f"{s.label}=v{s.version}" for s in labels]
        console.print(f"labels: {', '.join(pointing) or '-'}")
        if version.system:
            console.print("[bold]system[/]")
            console.print(version.system, markup=False, highlight=False)
        console.print("[bold]template[/]")
        console.print(version.template, markup=False, highlight=False)

    def diff(self, a: PromptVersion, b: PromptVersion) -> str:
        return diff(a, b)

    def listing(self, store: DynamoRegistryStore[PromptVersion], values: Values) -> list[PromptSummary]:
        owner = tenant_of(values["tenant"])
        summaries = prompt_summaries(store.list_subjects())
        return [s for s in summaries if s.tenant_id in (None, owner)] if owner is not None else summaries

    def name_json(self, summary: PromptSummary) -> dict[str, Any]:
        return {"id": summary.prompt_id, "tenant": summary.tenant_id}

    def name_cells(self, summary: PromptSummary) -> tuple[str, ...]:
        return summary.prompt_id, summary.tenant_id or "(shared)"


COMMANDS = PromptCommands()
app = COMMANDS.app(
    "Versioned prompt templates: push, label, roll back, diff and test.",
    "Move and list labels (production, staging, ...).",
)
add_test_command(app, COMMANDS, load)
