"""`llmops guard-policies push|list|show|diff|label|rollback`: versioned guard policies.

Policies live in the Prompts table under `guard#<name>`; the gateway serves the version that label
`production` points at (within its config TTL), and falls back to `LLMOPS_GUARD_POLICIES` and the
default policy for names without one. A policy file (YAML or JSON) is

    name: strict
    change_note: block secrets on output too
    policy: {...}          # the `GuardPolicy.from_mapping` format

The registry verbs are the shared ones (`llmops.cli.registry_commands`); policies have no tenant
scope (a tenant's key names its policy).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from llmops.adapters.dynamodb.guard_policy_store import DynamoGuardPolicyStore
from llmops.adapters.dynamodb.registry_store import DynamoRegistryStore
from llmops.cli.options import Actor
from llmops.cli.registry_commands import PushPlan, RegistryCommands, Values, argument, authorship_json, option
from llmops.cli.terminal import console, current_actor, fail, utc_time
from llmops.domain.guard_policy_registry import GuardPolicyDraft, GuardPolicyVersion, diff
from llmops.domain.registry import LabelState, SubjectSummary

__all__ = ["COMMANDS", "app", "load_guard_policy_file"]


def load_guard_policy_file(path: Path, name: str | None = None, author: str = "") -> GuardPolicyDraft:
    """Reads a policy file into a draft; raises ValueError naming what is wrong."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))  # YAML is a superset of JSON
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with `name` and `policy`")
    unknown = sorted(set(data) - {"name", "policy", "change_note"})
    if unknown:
        raise ValueError(f"{path}: unknown field(s) {', '.join(unknown)} (allowed: name, policy, change_note)")
    policy_name = name or data.get("name")
    if not isinstance(policy_name, str):
        raise ValueError(f"{path}: `name` is missing (or pass --name)")
    policy = data.get("policy")
    if not isinstance(policy, dict):
        raise ValueError(f"{path}: `policy` must be a mapping in the guard policy format")
    draft = GuardPolicyDraft(policy_name, policy, author=author, change_note=str(data.get("change_note", "")))
    problems = draft.problems()
    if problems:
        raise ValueError("; ".join(problems))
    return draft


class GuardPolicyCommands(RegistryCommands[GuardPolicyVersion, SubjectSummary]):
    noun = "guard policy"
    name_param = argument("name", Annotated[str, typer.Argument(help="Guard policy name (as on tenant keys).")])
    file_param = argument(
        "path",
        Annotated[Path, typer.Argument(help="Policy file (YAML or JSON).", exists=True, dir_okay=False, readable=True)],
    )
    push_params = (
        option("name", Annotated[str | None, typer.Option("--name", help="Policy name (overrides the file's).")]),
        option("actor", Actor),
    )
    pushed_messages = (
        "{v.name}: pushed version [cyan]{v.version}[/]",
        "{v.name}: unchanged, latest is version [cyan]{v.version}[/]",
    )
    list_title = "Guard policies"
    name_columns = ("name",)
    listing_keys = ("latest_version", "created_at", "labels")
    help_overrides = {
        "push": "Store FILE as the policy's next version (a no-op if it equals the latest version).",
        "list": "List the registry's policies with their latest version and labels.",
        "show": "Show a policy version (latest unless --version/--label) and the policy's labels.",
        "label set": "Point LABEL at VERSION (the gateway serves `production` within its config TTL).",
    }

    def open_store(self, client: Any, table: str) -> DynamoRegistryStore[GuardPolicyVersion]:
        return DynamoGuardPolicyStore(client, table)

    def push_plan(self, file: Path, values: Values) -> PushPlan[GuardPolicyVersion]:
        try:
            return PushPlan(load_guard_policy_file(file, values["name"], current_actor(values["actor"])))
        except ValueError as exc:
            fail(str(exc))

    def version_json(self, version: GuardPolicyVersion) -> dict[str, Any]:
        return {
            "name": version.name,
            "version": version.version,
            "policy": dict(version.document),
            **authorship_json(version),
            "fingerprint": version.fingerprint,
        }

    def label_json(self, state: LabelState) -> dict[str, Any]:
        return {"name": state.subject, **super().label_json(state)}

    def print_version(self, version: GuardPolicyVersion, labels: Sequence[LabelState]) -> None:
        console.print(f"[bold]{version.ref}[/] by {version.author or '-'} at {utc_time(version.created_at)} UTC")
        if version.change_note:
            console.print(version.change_note)
        console.print_json(version.document_json())
        for s in labels:
            console.print(f"label [cyan]{s.label}[/] -> v{s.version}")

    def diff(self, a: GuardPolicyVersion, b: GuardPolicyVersion) -> str:
        return diff(a, b)

    def listing(self, store: DynamoRegistryStore[GuardPolicyVersion], values: Values) -> list[SubjectSummary]:
        return store.list_subjects()

    def name_json(self, summary: SubjectSummary) -> dict[str, Any]:
        return {"name": summary.subject}

    def name_cells(self, summary: SubjectSummary) -> tuple[str, ...]:
        return (summary.subject,)


COMMANDS = GuardPolicyCommands()
app = COMMANDS.app(
    "Versioned guard policies: push, label, roll back.", "Move guard policy labels (production, staging, ...)."
)
