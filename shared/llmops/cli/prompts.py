"""`llmops prompts push|list|show|diff|label|rollback|test`: the prompt registry, like code.

Every command works against the local stack (`--state-dir`) or a deployed one (`--stack`).
Templates are scoped: `--tenant T` addresses tenant T's own template, which only T's keys can
render; without it a command addresses the shared template of that id, which every tenant can
render. `push` makes the choice explicit (`--tenant T` or `--shared`), so a confidential system
prompt is never shared by accident.
`test` runs a prompt file's examples through the gateway with the OpenAI SDK (the `prompt` extra
field) and checks the declared properties of each answer; it exits 1 if any check fails, so CI can
gate a prompt change on it.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.syntax import Syntax
from rich.table import Table

from llmops.adapters.dynamodb.prompt_store import DynamoPromptStore
from llmops.cli.options import DEFAULT_STATE_DIR, Actor, AsJson, Region, StackName, StateDir
from llmops.cli.stack import connect
from llmops.cli.terminal import console, current_actor, errors, fail, utc_time
from llmops.domain.keys import validate_tenant_id
from llmops.domain.prompts import (
    CheckResult,
    LabelState,
    PromptDocument,
    PromptDocumentError,
    PromptExample,
    PromptNotFoundError,
    PromptRef,
    PromptVersion,
    SchemaValidator,
    check_output,
    diff,
    parse_prompt_document,
    scoped_prompt_id,
    validate_label,
)
from llmops.local.naming import LOCAL_STATE_FILE

__all__ = ["app", "load_prompt_file"]

app = typer.Typer(help="Versioned prompt templates: push, label, roll back, diff and test.", no_args_is_help=True)
label_app = typer.Typer(help="Move and list labels (production, staging, ...).", no_args_is_help=True)
app.add_typer(label_app, name="label")


PromptId = Annotated[str, typer.Argument(help="Prompt id.")]
Tenant = Annotated[
    str | None,
    typer.Option("--tenant", help="The tenant owning the prompt (default: the shared prompt of that id)."),
]
PromptFile = Annotated[
    Path, typer.Argument(help="Prompt file (YAML or JSON).", exists=True, dir_okay=False, readable=True)
]


def _store(state_dir: Path, stack: str | None, region: str | None) -> DynamoPromptStore:
    try:
        conn = connect(state_dir, stack, region)
    except FileNotFoundError as exc:
        fail(str(exc))
    if not conn.settings.prompts_table:
        fail("the stack does not name a Prompts table")
    return DynamoPromptStore(conn.client("dynamodb"), conn.settings.prompts_table)


def _tenant(tenant: str | None) -> str | None:
    if tenant is None:
        return None
    try:
        return validate_tenant_id(tenant)
    except ValueError as exc:
        return fail(str(exc))  # type: ignore[no-any-return]


def _subject(prompt_id: str, tenant: str | None) -> str:
    """The registry's name of the prompt a command addresses."""
    return scoped_prompt_id(prompt_id, _tenant(tenant))


def load_prompt_file(path: Path) -> PromptDocument:
    """Parses and validates a prompt file; YAML is a superset of JSON, so one parser reads both."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PromptDocumentError([f"{path}: not valid YAML/JSON: {exc}"]) from None
    return parse_prompt_document(raw)


def _load(path: Path) -> PromptDocument:
    try:
        return load_prompt_file(path)
    except PromptDocumentError as exc:
        errors.print(f"[red]error:[/] {path} is not a valid prompt file:")
        for problem in exc.problems:
            errors.print(f"  - {problem}")
        raise typer.Exit(2) from None


def _version_json(version: PromptVersion) -> dict[str, Any]:
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
        "author": version.author,
        "change_note": version.change_note,
        "created_at": version.created_at,
    }


def _label_json(state: LabelState) -> dict[str, Any]:
    return {
        "label": state.label,
        "version": state.version,
        "history": list(state.history),
        "updated_at": state.updated_at,
        "updated_by": state.updated_by,
    }


def _selector_ref(prompt_id: str, selector: str) -> PromptRef:
    """A version number or a label name (labels never look like numbers)."""
    if selector.isdigit():
        return PromptRef(prompt_id, version=int(selector))
    try:
        return PromptRef(prompt_id, label=validate_label(selector))
    except ValueError as exc:
        return fail(str(exc))  # type: ignore[no-any-return]


def _resolve(store: DynamoPromptStore, ref: PromptRef, tenant: str | None) -> PromptVersion:
    try:
        return store.resolve_version(ref, _tenant(tenant))
    except PromptNotFoundError as exc:
        return fail(exc.message, code=1)  # type: ignore[no-any-return]


@app.command("push")
def push(
    file: PromptFile,
    label: Annotated[str | None, typer.Option("--label", help="Also point this label at the version.")] = None,
    note: Annotated[str | None, typer.Option("--note", help="Change note (overrides the file's).")] = None,
    author: Annotated[str | None, typer.Option("--author", help="Author (overrides the file's).")] = None,
    tenant: Tenant = None,
    shared: Annotated[
        bool, typer.Option("--shared", help="Store it as a shared prompt that every tenant can render.")
    ] = False,
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """Validate FILE and store it as the prompt's next version (no-op if unchanged).

    Give --tenant T (only T's keys can render it) or --shared (every tenant can)."""
    if (tenant is None) == (not shared):
        fail("say whose prompt this is: --tenant TENANT (only that tenant's keys can render it) or --shared")
    document = _load(file)
    draft = replace(document.draft, tenant_id=_tenant(tenant))
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
    store = _store(state_dir, stack, region)
    result = store.push(draft, time.time())
    state = (
        store.set_label(draft.scoped_id, label, result.version.version, time.time(), current_actor(None))
        if label
        else None
    )
    if as_json:
        out = {**_version_json(result.version), "created": result.created}
        if state is not None:
            out["label"] = _label_json(state)
        console.print_json(json.dumps(out))
        return
    verb = "Pushed" if result.created else "Unchanged, latest is"
    console.print(f"{verb} [bold cyan]{result.version.ref}[/]")
    if state is not None:
        console.print(f"Label [cyan]{state.label}[/] -> version {state.version}")


@app.command("list")
def list_prompts(
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="Only what this tenant's keys can render: its own prompts and the shared ones."),
    ] = None,
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """List prompts (every tenant's and the shared ones) with their latest version and labels."""
    owner = _tenant(tenant)
    summaries = _store(state_dir, stack, region).list_prompts()
    if owner is not None:
        summaries = [s for s in summaries if s.tenant_id in (None, owner)]
    if as_json:
        console.print_json(
            json.dumps(
                [
                    {
                        "id": s.prompt_id,
                        "tenant": s.tenant_id,
                        "latest_version": s.latest_version,
                        "latest_created_at": s.latest_created_at,
                        "labels": dict(sorted(s.labels.items())),
                    }
                    for s in summaries
                ]
            )
        )
        return
    table = Table(title="Prompts")
    for column in ("id", "tenant", "latest", "created (UTC)", "labels"):
        table.add_column(column)
    for s in summaries:
        labels = ", ".join(f"{name}=v{v}" for name, v in sorted(s.labels.items())) or "-"
        owner_cell = s.tenant_id or "(shared)"
        table.add_row(s.prompt_id, owner_cell, str(s.latest_version or "-"), utc_time(s.latest_created_at), labels)
    console.print(table)


@app.command("show")
def show(
    prompt_id: PromptId,
    version: Annotated[int | None, typer.Option("--version", min=1, help="Version number.")] = None,
    label: Annotated[str | None, typer.Option("--label", help="Label name.")] = None,
    tenant: Tenant = None,
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """Show one version (default: the latest) and the prompt's labels."""
    if version is not None and label is not None:
        fail("give --version or --label, not both")
    subject = _subject(prompt_id, tenant)
    store = _store(state_dir, stack, region)
    if version is None and label is None:
        found = store.latest_version(subject)
        if found is None:
            fail(f"no prompt {subject}", code=1)
        assert found is not None
    else:
        found = _resolve(store, _selector_ref(prompt_id, str(version) if version is not None else str(label)), tenant)
    labels = store.list_labels(subject)
    if as_json:
        console.print_json(json.dumps({**_version_json(found), "labels": [_label_json(s) for s in labels]}))
        return
    console.print(f"[bold cyan]{found.ref}[/]  by {found.author or '-'} at {utc_time(found.created_at)} UTC")
    if found.change_note:
        console.print(f"note: {found.change_note}")
    console.print(f"model: {found.model or '-'}   parameters: {json.dumps(found.parameters.to_dict())}")
    console.print(f"variables: {', '.join(found.variables) or '-'}")
    pointing = [f"{s.label}=v{s.version}" for s in labels]
    console.print(f"labels: {', '.join(pointing) or '-'}")
    if found.system:
        console.print("[bold]system[/]")
        console.print(found.system, markup=False, highlight=False)
    console.print("[bold]template[/]")
    console.print(found.template, markup=False, highlight=False)


@app.command("diff")
def diff_versions(
    prompt_id: PromptId,
    a: Annotated[str, typer.Argument(help="Version number or label.")],
    b: Annotated[str, typer.Argument(help="Version number or label.")],
    tenant: Tenant = None,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """Unified diff between two versions (or labels) of a prompt."""
    store = _store(state_dir, stack, region)
    text = diff(
        _resolve(store, _selector_ref(prompt_id, a), tenant), _resolve(store, _selector_ref(prompt_id, b), tenant)
    )
    if not text:
        console.print("No differences.")
        return
    console.print(Syntax(text, "diff", theme="ansi_dark", word_wrap=True))


@label_app.command("set")
def label_set(
    prompt_id: PromptId,
    label: Annotated[str, typer.Argument(help="Label name, e.g. production.")],
    version: Annotated[int, typer.Argument(min=1, help="Version the label should point at.")],
    tenant: Tenant = None,
    actor: Actor = None,
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """Point LABEL at VERSION (the gateway sees it within its config TTL)."""
    subject = _subject(prompt_id, tenant)
    try:
        state = _store(state_dir, stack, region).set_label(subject, label, version, time.time(), current_actor(actor))
    except PromptNotFoundError as exc:
        fail(exc.message, code=1)
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        console.print_json(json.dumps(_label_json(state)))
        return
    previous = f" (was v{state.history[-1]})" if state.history else ""
    console.print(f"{subject}: label [cyan]{label}[/] -> version {state.version}{previous}")


@label_app.command("list")
def label_list(
    prompt_id: PromptId,
    tenant: Tenant = None,
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """List a prompt's labels with their history."""
    subject = _subject(prompt_id, tenant)
    states = _store(state_dir, stack, region).list_labels(subject)
    if as_json:
        console.print_json(json.dumps([_label_json(s) for s in states]))
        return
    table = Table(title=f"Labels of {subject}")
    for column in ("label", "version", "previously", "updated (UTC)", "by"):
        table.add_column(column)
    for s in states:
        history = ", ".join(f"v{v}" for v in reversed(s.history)) or "-"
        table.add_row(s.label, str(s.version), history, utc_time(s.updated_at), s.updated_by or "-")
    console.print(table)


@app.command("rollback")
def rollback(
    prompt_id: PromptId,
    label: Annotated[str, typer.Argument(help="Label to move back.")],
    tenant: Tenant = None,
    actor: Actor = None,
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """Move LABEL back to the version it pointed at before its last move."""
    subject = _subject(prompt_id, tenant)
    try:
        state = _store(state_dir, stack, region).rollback(subject, label, time.time(), current_actor(actor))
    except PromptNotFoundError as exc:
        fail(exc.message, code=1)
    except ValueError as exc:
        fail(str(exc), code=1)
    if as_json:
        console.print_json(json.dumps(_label_json(state)))
        return
    console.print(f"{subject}: label [cyan]{label}[/] rolled back to version {state.version}")


# -- test ------------------------------------------------------------------------------------------


def _schema_validator() -> SchemaValidator | None:
    """`jsonschema` when installed (full JSON Schema); otherwise the domain's built-in subset."""
    try:
        # Imported by name: optional, and it ships no type stubs.
        jsonschema: Any = importlib.import_module("jsonschema")
    except ImportError:
        return None

    def validate(instance: Any, schema: Mapping[str, Any]) -> list[str]:
        validator_class = jsonschema.validators.validator_for(schema)
        try:
            validator_class.check_schema(schema)
        except jsonschema.SchemaError as exc:
            return [f"invalid schema: {exc.message}"]
        return [error.message for error in validator_class(schema).iter_errors(instance)]

    return validate


def _gateway(base_url: str | None, api_key: str | None, state_dir: Path, stack: str | None) -> tuple[str, str]:
    if base_url and api_key:
        return base_url, api_key
    state_file = state_dir / LOCAL_STATE_FILE
    if stack is None and state_file.exists():
        state = json.loads(state_file.read_text())
        return base_url or str(state["base_url"]), api_key or str(state["api_key"])
    return fail(  # type: ignore[no-any-return]
        "no gateway to test against: pass --base-url and --api-key (or LLMOPS_BASE_URL / LLMOPS_API_KEY), "
        f"or start the local stack (`llmops serve --state-dir {state_dir}`)"
    )


def _registered_version(
    document: PromptDocument,
    version: int | None,
    label: str | None,
    state_dir: Path,
    stack: str | None,
    region: str | None,
    tenant: str | None = None,
) -> PromptVersion:
    """The registered version to test: the one named, else the one whose content is the file's."""
    store = _store(state_dir, stack, region)
    prompt_id = document.draft.prompt_id
    if version is not None or label is not None:
        return _resolve(store, _selector_ref(prompt_id, str(version) if version is not None else str(label)), tenant)
    for candidate in reversed(store.list_versions(_subject(prompt_id, tenant))):
        if candidate.fingerprint == document.draft.fingerprint:
            return candidate
    return fail(  # type: ignore[no-any-return]
        f"the content of this file is not a registered version of {_subject(prompt_id, tenant)}: push it "
        "first (`llmops prompts push FILE --tenant T | --shared`) or name one with --version/--label"
    )


def _run_example(
    client: Any, model: str, version: PromptVersion, example: PromptExample, validator: SchemaValidator | None
) -> tuple[str, list[CheckResult], str]:
    """Returns (the x-llmops-prompt header, check results, an error message or "")."""
    import openai  # noqa: PLC0415 - optional: only this command needs it

    ref = PromptRef(version.prompt_id, version=version.version, variables=example.variables)
    try:
        raw = client.chat.completions.with_raw_response.create(
            model=model,
            messages=[{"role": m.role.value, "content": m.content} for m in example.messages],
            extra_body={"prompt": ref.to_request_field()},
        )
    except openai.APIStatusError as exc:
        return "", [], f"HTTP {exc.status_code}: {exc.message}"
    except openai.APIError as exc:
        return "", [], str(exc.message)
    completion = raw.parse()
    text = (completion.choices[0].message.content or "") if completion.choices else ""
    return str(raw.headers.get("x-llmops-prompt", "")), check_output(text, example.checks, validator), ""


@app.command("test")
def test(
    file: PromptFile,
    version: Annotated[int | None, typer.Option("--version", min=1, help="Registered version to test.")] = None,
    label: Annotated[str | None, typer.Option("--label", help="Registered label to test.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model alias (default: the prompt's).")] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", envvar="LLMOPS_BASE_URL", help="Gateway URL ending in /v1.")
    ] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="LLMOPS_API_KEY", help="Gateway API key.")] = None,
    timeout_s: Annotated[float, typer.Option("--timeout", help="Per-request timeout in seconds.")] = 60.0,
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant",
            help="Test this tenant's own prompt (default: the shared one); --api-key must be that tenant's key.",
        ),
    ] = None,
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """Run FILE's examples through the gateway and check their declared properties (exit 1 on failure).

    Tests the registered version whose content equals FILE, unless --version or --label names one.
    """
    try:
        import openai  # noqa: PLC0415 - optional: only this command needs it
    except ImportError:
        fail("`llmops prompts test` needs the openai package: pip install openai")
    if version is not None and label is not None:
        fail("give --version or --label, not both")
    document = _load(file)
    if not document.examples:
        fail(f"{file} declares no examples to test")
    target = _registered_version(document, version, label, state_dir, stack, region, tenant)
    alias = model or target.model
    if not alias:
        fail(f"{target.ref} has no default model: pass --model")
    assert alias is not None
    url, key = _gateway(base_url, api_key, state_dir, stack)
    client = openai.OpenAI(base_url=url, api_key=key, max_retries=1, timeout=timeout_s)
    validator = _schema_validator()

    rows: list[dict[str, Any]] = []
    failed = False
    for example in document.examples:
        header, results, error = _run_example(client, alias, target, example, validator)
        if error:
            failed = True
            rows.append({"example": example.name, "check": "request", "passed": False, "detail": error})
            continue
        if header and header != target.ref:
            failed = True
            rows.append(
                {"example": example.name, "check": "x-llmops-prompt", "passed": False, "detail": f"got {header}"}
            )
        for result in results:
            failed |= not result.passed
            rows.append(
                {
                    "example": example.name,
                    "check": result.check.describe(),
                    "passed": result.passed,
                    "detail": result.detail,
                }
            )
    if as_json:
        console.print_json(json.dumps({"prompt": target.ref, "model": alias, "passed": not failed, "results": rows}))
    else:
        table = Table(title=f"{target.ref} via {alias}")
        for column in ("example", "check", "result", "detail"):
            table.add_column(column)
        for row in rows:
            verdict = "[green]pass[/]" if row["passed"] else "[red]FAIL[/]"
            table.add_row(row["example"], row["check"], verdict, row["detail"])
        console.print(table)
        console.print("[red]FAILED[/]" if failed else "[green]all checks passed[/]")
    if failed:
        raise typer.Exit(1)
