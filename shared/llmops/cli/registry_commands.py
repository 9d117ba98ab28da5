"""The verbs every versioned-label registry has on the command line, built once for any kind.

`RegistryCommands.app()` builds `push`, `list`, `show`, `diff`, `label set`, `label list` and
`rollback` for one kind of registry (`llmops prompts`, `llmops guard-policies`). A kind supplies
what differs: how a file becomes a draft (`push_plan`, with its own push options), the options
that choose a subject's scope (prompts' `--tenant`; guard policies have none), how a version, a
label and a listing look, and its help texts; it may add its own commands to the app (`prompts
test`). Every command works against the local stack (`--state-dir`) or a deployed one (`--stack`).

Typer reads a command's options from its signature, so each command's signature is composed from
the verb's own parameters, the kind's, and the shared trailing ones (`--actor`, `--json`, where
to act) in that order, which is the order `--help` lists them in.
"""

from __future__ import annotations

import inspect
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

import typer
from rich.syntax import Syntax
from rich.table import Table

from llmops.adapters.dynamodb.registry_store import DynamoRegistryStore
from llmops.cli.options import DEFAULT_STATE_DIR, Actor, AsJson, Region, StackName, StateDir
from llmops.cli.stack import connect
from llmops.cli.terminal import console, current_actor, fail, utc_time
from llmops.domain.registry import (
    LabelState,
    RegistryDraft,
    RegistryNotFoundError,
    RegistryVersion,
    SubjectSummary,
    parse_selector,
)

__all__ = ["PushPlan", "RegistryCommands", "Values", "argument", "authorship_json", "option"]

V = TypeVar("V", bound=RegistryVersion)
S = TypeVar("S", bound=SubjectSummary)  # a row of the kind's listing

Values = Mapping[str, Any]  # a command's parameter values, by parameter name


def option(name: str, annotation: Any, default: Any = None) -> inspect.Parameter:
    """A command parameter; `annotation` is `Annotated[type, typer.Option(...)]` (or Argument)."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def argument(name: str, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation)


_ACTOR = option("actor", Actor)
_AS_JSON = option("as_json", AsJson, False)
_WHERE = (option("state_dir", StateDir, DEFAULT_STATE_DIR), option("stack", StackName), option("region", Region))

_VERSION = option("version", Annotated[int | None, typer.Option("--version", min=1, help="Version number.")])
_LABEL = option("label", Annotated[str | None, typer.Option("--label", help="Label name.")])
_SELECTOR_A = argument("a", Annotated[str, typer.Argument(help="Version number or label.")])
_SELECTOR_B = argument("b", Annotated[str, typer.Argument(help="Version number or label.")])
_LABEL_NAME = argument("label", Annotated[str, typer.Argument(help="Label name, e.g. production.")])
_LABEL_VERSION = argument("version", Annotated[int, typer.Argument(min=1, help="Version the label should point at.")])
_LABEL_BACK = argument("label", Annotated[str, typer.Argument(help="Label to move back.")])


@dataclass(frozen=True, slots=True)
class PushPlan(Generic[V]):
    """What `push` stores, and the label to point at it afterwards (if any) and who moves it."""

    draft: RegistryDraft[V]
    label: str | None = None
    label_actor: str = ""


# Each command's help, `{noun}` the kind's; a kind overrides some in `help_overrides`.
_HELPS = {
    "push": "Store FILE as the {noun}'s next version (a no-op if it equals the latest version).",
    "list": "List the registry's {noun}s with their latest version and labels.",
    "show": "Show one version (default: the latest) and the {noun}'s labels.",
    "diff": "Unified diff between two versions (or labels) of a {noun}.",
    "label set": "Point LABEL at VERSION (the gateway sees it within its config TTL).",
    "label list": "List a {noun}'s labels with their history.",
    "rollback": "Move LABEL back to the version it pointed at before its last move.",
}


_LABEL_FIELDS = ("label", "version", "history", "updated_at", "updated_by")  # a label's `--json`, in order


def authorship_json(version: RegistryVersion) -> dict[str, Any]:
    """Who made a version, why and when, as every kind's `--json` shows it."""
    return {"author": version.author, "change_note": version.change_note, "created_at": version.created_at}


def _labels_cell(labels: Mapping[str, int]) -> str:
    return ", ".join(f"{name}=v{version}" for name, version in sorted(labels.items())) or "-"


def _register(
    app: typer.Typer, name: str, help_text: str, params: Sequence[inspect.Parameter], run: Callable[[Values], None]
) -> None:
    def command(**values: Any) -> None:
        run(values)

    command.__signature__ = inspect.Signature(list(params))  # type: ignore[attr-defined]
    command.__doc__ = help_text
    app.command(name)(command)


class RegistryCommands(ABC, Generic[V, S]):
    """One kind's registry commands. Subclasses set the class attributes and the hooks below."""

    noun: str  # how messages name a subject ("prompt", "guard policy")
    name_param: inspect.Parameter  # the subject's name, the first argument of most verbs
    file_param: inspect.Parameter  # push's file argument
    push_params: tuple[inspect.Parameter, ...]  # push's options (the kind reads them in `push_plan`)
    scope_params: tuple[inspect.Parameter, ...] = ()  # options that pick a subject's scope
    list_params: tuple[inspect.Parameter, ...] = ()
    # What `push` prints when it stored a new version, and when the latest already had the content;
    # formatted with the version as `v`.
    pushed_messages: tuple[str, str]
    list_title: str
    name_columns: tuple[str, ...]  # the listing's columns naming a subject (then latest, created, labels)
    # The keys of a listing's `--json` row after the kind's `name_json`: latest version, its time, labels.
    listing_keys = ("latest_version", "latest_created_at", "labels")
    help_overrides: Mapping[str, str] = {}  # a command's help where the default does not fit, by command

    # -- the kind's hooks ------------------------------------------------------------------------

    @abstractmethod
    def open_store(self, client: Any, table: str) -> DynamoRegistryStore[V]: ...

    def subject(self, name: str, values: Values) -> str:
        """The registry subject that `name` (with the scope options in `values`) addresses."""
        return name

    @abstractmethod
    def push_plan(self, file: Path, values: Values) -> PushPlan[V]:
        """Reads FILE into a draft (failing with exit 2, naming every problem, if it is invalid)."""

    @abstractmethod
    def version_json(self, version: V) -> dict[str, Any]: ...

    def label_json(self, state: LabelState) -> dict[str, Any]:
        return {field: getattr(state, field) for field in _LABEL_FIELDS} | {"history": list(state.history)}

    @abstractmethod
    def print_version(self, version: V, labels: Sequence[LabelState]) -> None: ...

    @abstractmethod
    def diff(self, a: V, b: V) -> str: ...

    @abstractmethod
    def listing(self, store: DynamoRegistryStore[V], values: Values) -> list[S]: ...

    @abstractmethod
    def name_json(self, summary: S) -> dict[str, Any]:
        """The fields of a listing's `--json` row that name the subject."""

    @abstractmethod
    def name_cells(self, summary: S) -> tuple[str, ...]: ...

    # -- shared by every command -----------------------------------------------------------------

    def store(self, values: Values) -> DynamoRegistryStore[V]:
        try:
            conn = connect(values["state_dir"], values["stack"], values["region"])
        except FileNotFoundError as exc:
            fail(str(exc))
        if not conn.settings.prompts_table:
            fail("the stack does not name a Prompts table")
        return self.open_store(conn.client("dynamodb"), conn.settings.prompts_table)

    def resolve(self, store: DynamoRegistryStore[V], name: str, subject: str, selector_text: str) -> V:
        """The version a number or label names (exit 2 for a malformed label, 1 if there is none)."""
        try:
            selector = parse_selector(selector_text)
        except ValueError as exc:
            fail(str(exc))
        found = store.resolve(subject, selector)
        if found is None:
            shown = f"{name}@{selector}" if isinstance(selector, int) else f"{name}:{selector}"
            fail(f"No {self.noun} {shown}.", code=1)
        return found

    def print_json(self, document: Any) -> None:
        console.print_json(json.dumps(document))

    # -- the commands ----------------------------------------------------------------------------

    def help_for(self, command: str) -> str:
        return self.help_overrides.get(command) or _HELPS[command].format(noun=self.noun)

    def app(self, help_text: str, label_help: str) -> typer.Typer:
        app = typer.Typer(help=help_text, no_args_is_help=True)
        label_app = typer.Typer(help=label_help, no_args_is_help=True)
        app.add_typer(label_app, name="label")
        name, scope = self.name_param, self.scope_params
        commands: tuple[tuple[typer.Typer, str, str, tuple[inspect.Parameter, ...], Callable[[Values], None]], ...] = (
            (app, "push", "push", (self.file_param, *self.push_params, _AS_JSON, *_WHERE), self._push),
            (app, "list", "list", (*self.list_params, _AS_JSON, *_WHERE), self._list),
            (app, "show", "show", (name, _VERSION, _LABEL, *scope, _AS_JSON, *_WHERE), self._show),
            (app, "diff", "diff", (name, _SELECTOR_A, _SELECTOR_B, *scope, *_WHERE), self._diff),
            (
                label_app,
                "set",
                "label set",
                (name, _LABEL_NAME, _LABEL_VERSION, *scope, _ACTOR, _AS_JSON, *_WHERE),
                self._label_set,
            ),
            (label_app, "list", "label list", (name, *scope, _AS_JSON, *_WHERE), self._label_list),
            (app, "rollback", "rollback", (name, _LABEL_BACK, *scope, _ACTOR, _AS_JSON, *_WHERE), self._rollback),
        )
        for group, command, path, params, run in commands:
            _register(group, command, self.help_for(path), params, run)
        return app

    def _push(self, values: Values) -> None:
        plan = self.push_plan(values[self.file_param.name], values)
        store = self.store(values)
        result = store.push(plan.draft, time.time())
        state = (
            store.set_label(plan.draft.subject, plan.label, result.version.version, time.time(), plan.label_actor)
            if plan.label
            else None
        )
        if values["as_json"]:
            out = {**self.version_json(result.version), "created": result.created}
            if state is not None:
                out["label"] = self.label_json(state)
            self.print_json(out)
            return
        created, unchanged = self.pushed_messages
        console.print((created if result.created else unchanged).format(v=result.version))
        if state is not None:
            console.print(f"Label [cyan]{state.label}[/] -> version {state.version}")

    def _list(self, values: Values) -> None:
        summaries = self.listing(self.store(values), values)
        if values["as_json"]:
            latest, created, labels = self.listing_keys
            self.print_json(
                [
                    {
                        **self.name_json(s),
                        latest: s.latest_version,
                        created: s.latest_created_at,
                        labels: dict(sorted(s.labels.items())),
                    }
                    for s in summaries
                ]
            )
            return
        table = Table(title=self.list_title)
        for column in (*self.name_columns, "latest", "created (UTC)", "labels"):
            table.add_column(column)
        for s in summaries:
            table.add_row(
                *self.name_cells(s), str(s.latest_version or "-"), utc_time(s.latest_created_at), _labels_cell(s.labels)
            )
        console.print(table)

    def _show(self, values: Values) -> None:
        name, version, label = values[self.name_param.name], values["version"], values["label"]
        if version is not None and label is not None:
            fail("give --version or --label, not both")
        subject = self.subject(name, values)
        store = self.store(values)
        if version is None and label is None:
            found = store.latest_version(subject)
            if found is None:
                fail(f"no {self.noun} {subject}", code=1)
        else:
            found = self.resolve(store, name, subject, str(version) if version is not None else str(label))
        labels = store.list_labels(subject)
        if values["as_json"]:
            self.print_json({**self.version_json(found), "labels": [self.label_json(s) for s in labels]})
            return
        self.print_version(found, labels)

    def _diff(self, values: Values) -> None:
        name = values[self.name_param.name]
        subject = self.subject(name, values)
        store = self.store(values)
        text = self.diff(
            self.resolve(store, name, subject, values["a"]), self.resolve(store, name, subject, values["b"])
        )
        if not text:
            console.print("No differences.")
            return
        console.print(Syntax(text, "diff", theme="ansi_dark", word_wrap=True))

    def _label_set(self, values: Values) -> None:
        subject = self.subject(values[self.name_param.name], values)
        label, version = values["label"], values["version"]
        try:
            state = self.store(values).set_label(subject, label, version, time.time(), current_actor(values["actor"]))
        except RegistryNotFoundError as exc:
            fail(exc.message, code=1)
        except ValueError as exc:
            fail(str(exc))
        if values["as_json"]:
            self.print_json(self.label_json(state))
            return
        previous = f" (was v{state.history[-1]})" if state.history else ""
        console.print(f"{subject}: label [cyan]{label}[/] -> version {state.version}{previous}")

    def _label_list(self, values: Values) -> None:
        subject = self.subject(values[self.name_param.name], values)
        states = self.store(values).list_labels(subject)
        if values["as_json"]:
            self.print_json([self.label_json(s) for s in states])
            return
        table = Table(title=f"Labels of {subject}")
        for column in ("label", "version", "previously", "updated (UTC)", "by"):
            table.add_column(column)
        for s in states:
            history = ", ".join(f"v{v}" for v in reversed(s.history)) or "-"
            table.add_row(s.label, str(s.version), history, utc_time(s.updated_at), s.updated_by or "-")
        console.print(table)

    def _rollback(self, values: Values) -> None:
        subject = self.subject(values[self.name_param.name], values)
        label = values["label"]
        try:
            state = self.store(values).rollback(subject, label, time.time(), current_actor(values["actor"]))
        except RegistryNotFoundError as exc:
            fail(exc.message, code=1)
        except ValueError as exc:
            fail(str(exc), code=1)
        if values["as_json"]:
            self.print_json(self.label_json(state))
            return
        console.print(f"{subject}: label [cyan]{label}[/] rolled back to version {state.version}")
