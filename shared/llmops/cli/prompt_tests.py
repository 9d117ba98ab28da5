"""`llmops prompts test`: a prompt file's examples run through the gateway, their answers checked.

It sends each example with the OpenAI SDK (the `prompt` extra field, naming the registered version
under test) and checks the declared properties of each answer (`llmops.domain.prompts.checks`);
it exits 1 if any check fails, so CI can gate a prompt change on it.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from llmops.cli.options import DEFAULT_STATE_DIR, AsJson, Region, StackName, StateDir
from llmops.cli.registry_commands import RegistryCommands
from llmops.cli.terminal import console, fail
from llmops.domain.prompts import (
    CheckResult,
    PromptDocument,
    PromptExample,
    PromptRef,
    PromptVersion,
    SchemaValidator,
    check_output,
)
from llmops.local.naming import LOCAL_STATE_FILE

__all__ = ["add_test_command"]

PromptFile = Annotated[
    Path, typer.Argument(help="Prompt file (YAML or JSON).", exists=True, dir_okay=False, readable=True)
]


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
    fail(
        "no gateway to test against: pass --base-url and --api-key (or LLMOPS_BASE_URL / LLMOPS_API_KEY), "
        f"or start the local stack (`llmops serve --state-dir {state_dir}`)"
    )


def _registered_version(
    commands: RegistryCommands[PromptVersion, Any],
    document: PromptDocument,
    version: int | None,
    label: str | None,
    where: Mapping[str, Any],
) -> PromptVersion:
    """The registered version to test: the one named, else the one whose content is the file's."""
    store = commands.store(where)
    prompt_id = document.draft.prompt_id
    subject = commands.subject(prompt_id, where)
    if version is not None or label is not None:
        return commands.resolve(store, prompt_id, subject, str(version) if version is not None else str(label))
    for candidate in reversed(store.list_versions(subject)):
        if candidate.fingerprint == document.draft.fingerprint:
            return candidate
    fail(
        f"the content of this file is not a registered version of {subject}: push it "
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


def _results(
    client: Any, alias: str, target: PromptVersion, examples: tuple[PromptExample, ...]
) -> list[dict[str, Any]]:
    """One row a check (or a failed request, or a wrong `x-llmops-prompt`) of every example."""
    validator = _schema_validator()
    rows: list[dict[str, Any]] = []
    for example in examples:
        header, results, error = _run_example(client, alias, target, example, validator)
        if error:
            rows.append({"example": example.name, "check": "request", "passed": False, "detail": error})
            continue
        if header and header != target.ref:
            rows.append(
                {"example": example.name, "check": "x-llmops-prompt", "passed": False, "detail": f"got {header}"}
            )
        rows += [
            {"example": example.name, "check": r.check.describe(), "passed": r.passed, "detail": r.detail}
            for r in results
        ]
    return rows


def _print_results(target: PromptVersion, alias: str, rows: list[dict[str, Any]], passed: bool) -> None:
    table = Table(title=f"{target.ref} via {alias}")
    for column in ("example", "check", "result", "detail"):
        table.add_column(column)
    for row in rows:
        verdict = "[green]pass[/]" if row["passed"] else "[red]FAIL[/]"
        table.add_row(row["example"], row["check"], verdict, row["detail"])
    console.print(table)
    console.print("[green]all checks passed[/]" if passed else "[red]FAILED[/]")


def add_test_command(
    app: typer.Typer, commands: RegistryCommands[PromptVersion, Any], load: Callable[[Path], PromptDocument]
) -> None:
    """Adds `test` to the prompts app; `load` reads a prompt file (exit 2 if it is invalid)."""

    @app.command("test")
    def test(
        file: PromptFile,
        version: Annotated[int | None, typer.Option("--version", min=1, help="Registered version to test.")] = None,
        label: Annotated[str | None, typer.Option("--label", help="Registered label to test.")] = None,
        model: Annotated[str | None, typer.Option("--model", help="Model alias (default: the prompt's).")] = None,
        base_url: Annotated[
            str | None, typer.Option("--base-url", envvar="LLMOPS_BASE_URL", help="Gateway URL ending in /v1.")
        ] = None,
        api_key: Annotated[
            str | None, typer.Option("--api-key", envvar="LLMOPS_API_KEY", help="Gateway API key.")
        ] = None,
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
        document = load(file)
        if not document.examples:
            fail(f"{file} declares no examples to test")
        where = {"tenant": tenant, "state_dir": state_dir, "stack": stack, "region": region}
        target = _registered_version(commands, document, version, label, where)
        alias = model or target.model
        if not alias:
            fail(f"{target.ref} has no default model: pass --model")
        url, key = _gateway(base_url, api_key, state_dir, stack)
        client = openai.OpenAI(base_url=url, api_key=key, max_retries=1, timeout=timeout_s)
        rows = _results(client, alias, target, document.examples)
        passed = all(row["passed"] for row in rows)
        if as_json:
            console.print_json(json.dumps({"prompt": target.ref, "model": alias, "passed": passed, "results": rows}))
        else:
            _print_results(target, alias, rows, passed)
        if not passed:
            raise typer.Exit(1)
