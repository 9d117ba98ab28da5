"""`llmops guard-policies push|list|show|label set|rollback`: versioned guard policies.

Policies live in the Prompts table under `guard#<name>`; the gateway serves the version that label
`production` points at (within its config TTL), and falls back to `LLMOPS_GUARD_POLICIES` and the
default policy for names without one. A policy file (YAML or JSON) is

    name: strict
    change_note: block secrets on output too
    policy: {...}          # the `GuardPolicy.from_mapping` format

Every command works against the local stack (`--state-dir`) or a deployed one (`--stack`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from llmops.adapters.dynamodb.guard_policy_store import DynamoGuardPolicyStore
from llmops.cli.options import DEFAULT_STATE_DIR, Actor, AsJson, Region, StackName, StateDir
from llmops.cli.stack import connect
from llmops.cli.terminal import console, current_actor, fail, utc_time
from llmops.domain.guard_policy_registry import GuardPolicyDraft, GuardPolicyVersion
from llmops.domain.prompts import LabelState, PromptNotFoundError

__all__ = ["app", "load_guard_policy_file"]

app = typer.Typer(help="Versioned guard policies: push, label, roll back.", no_args_is_help=True)
label_app = typer.Typer(help="Move guard policy labels (production, staging, ...).", no_args_is_help=True)
app.add_typer(label_app, name="label")


PolicyName = Annotated[str, typer.Argument(help="Guard policy name (as on tenant keys).")]
PolicyFile = Annotated[
    Path, typer.Argument(help="Policy file (YAML or JSON).", exists=True, dir_okay=False, readable=True)
]


def _store(state_dir: Path, stack: str | None, region: str | None) -> DynamoGuardPolicyStore:
    try:
        conn = connect(state_dir, stack, region)
    except FileNotFoundError as exc:
        fail(str(exc))
    if not conn.settings.prompts_table:
        fail("the stack does not name a Prompts table")
    return DynamoGuardPolicyStore(conn.client("dynamodb"), conn.settings.prompts_table)


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


def _version_json(version: GuardPolicyVersion) -> dict[str, Any]:
    return {
        "name": version.name,
        "version": version.version,
        "policy": dict(version.document),
        "author": version.author,
        "change_note": version.change_note,
        "created_at": version.created_at,
        "fingerprint": version.fingerprint,
    }


def _label_json(state: LabelState) -> dict[str, Any]:
    return {
        "name": state.prompt_id,
        "label": state.label,
        "version": state.version,
        "history": list(state.history),
        "updated_at": state.updated_at,
        "updated_by": state.updated_by,
    }


@app.command("push")
def push(
    path: PolicyFile,
    name: Annotated[str | None, typer.Option("--name", help="Policy name (overrides the file's).")] = None,
    actor: Actor = None,
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """Store FILE as the policy's next version (a no-op if it equals the latest version)."""
    try:
        draft = load_guard_policy_file(path, name, current_actor(actor))
    except ValueError as exc:
        fail(str(exc))
    result = _store(state_dir, stack, region).push(draft, time.time())
    if as_json:
        console.print_json(json.dumps({**_version_json(result.version), "created": result.created}))
        return
    verb = "pushed" if result.created else "unchanged, latest is"
    console.print(f"{result.version.name}: {verb} version [cyan]{result.version.version}[/]")


@app.command("list")
def list_policies(
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """List the registry's policies with their latest version and labels."""
    summaries = _store(state_dir, stack, region).list_policies()
    if as_json:
        rows = [
            {"name": s.prompt_id, "latest_version": s.latest_version, "created_at": s.latest_created_at}
            | {"labels": s.labels}
            for s in summaries
        ]
        console.print_json(json.dumps(rows))
        return
    table = Table(title="Guard policies")
    for column in ("name", "latest", "created (UTC)", "labels"):
        table.add_column(column)
    for s in summaries:
        labels = ", ".join(f"{k}=v{v}" for k, v in sorted(s.labels.items())) or "-"
        table.add_row(s.prompt_id, str(s.latest_version or "-"), utc_time(s.latest_created_at), labels)
    console.print(table)


@app.command("show")
def show(
    name: PolicyName,
    version: Annotated[int | None, typer.Option("--version", min=1, help="A version (default: latest).")] = None,
    label: Annotated[str | None, typer.Option("--label", help="The version a label points at.")] = None,
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """Show a policy version (latest unless --version/--label) and the policy's labels."""
    if version is not None and label is not None:
        fail("pass at most one of --version and --label")
    store = _store(state_dir, stack, region)
    if label is not None:
        state = store.get_label(name, label)
        if state is None:
            fail(f"guard policy {name} has no label {label!r}", code=1)
        version = state.version
    found = store.get_version(name, version) if version is not None else store.latest_version(name)
    if found is None:
        fail(f"no guard policy {name}" + (f"@{version}" if version is not None else ""), code=1)
    labels = store.list_labels(name)
    if as_json:
        console.print_json(json.dumps({**_version_json(found), "labels": [_label_json(s) for s in labels]}))
        return
    console.print(f"[bold]{found.ref}[/] by {found.author or '-'} at {utc_time(found.created_at)} UTC")
    if found.change_note:
        console.print(found.change_note)
    console.print_json(found.document_json())
    for s in labels:
        console.print(f"label [cyan]{s.label}[/] -> v{s.version}")


@label_app.command("set")
def label_set(
    name: PolicyName,
    label: Annotated[str, typer.Argument(help="Label name, e.g. production.")],
    version: Annotated[int, typer.Argument(min=1, help="Version the label should point at.")],
    actor: Actor = None,
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """Point LABEL at VERSION (the gateway serves `production` within its config TTL)."""
    try:
        state = _store(state_dir, stack, region).set_label(name, label, version, time.time(), current_actor(actor))
    except PromptNotFoundError:
        fail(f"no guard policy {name}@{version}", code=1)
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        console.print_json(json.dumps(_label_json(state)))
        return
    previous = f" (was v{state.history[-1]})" if state.history else ""
    console.print(f"{name}: label [cyan]{label}[/] -> version {state.version}{previous}")


@app.command("rollback")
def rollback(
    name: PolicyName,
    label: Annotated[str, typer.Argument(help="Label to move back.")],
    actor: Actor = None,
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """Move LABEL back to the version it pointed at before its last move."""
    try:
        state = _store(state_dir, stack, region).rollback(name, label, time.time(), current_actor(actor))
    except PromptNotFoundError:
        fail(f"guard policy {name} has no label {label!r}", code=1)
    except ValueError as exc:
        fail(str(exc), code=1)
    if as_json:
        console.print_json(json.dumps(_label_json(state)))
        return
    console.print(f"{name}: label [cyan]{label}[/] rolled back to version {state.version}")
