"""`llmops <any command> --help` works: every command and subcommand, found by walking the click tree
Typer builds, so a command added later is covered without touching this test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import typer
from typer.testing import CliRunner

from llmops.cli.main import app


def _command_paths(command: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    # Typer ships its own copy of click, so groups are recognised by their `commands`, not by class.
    yield path
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _command_paths(sub, (*path, name))


COMMAND_PATHS = list(_command_paths(typer.main.get_command(app)))


def test_the_walk_finds_the_nested_commands() -> None:
    # Guards the walk itself: a tree flattened to the top level would make the test below vacuous.
    assert ("emulator", "faults") in COMMAND_PATHS
    assert ("prompts", "label", "set") in COMMAND_PATHS
    assert len(COMMAND_PATHS) > 30


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda path: " ".join(path) or "llmops")
def test_help_exits_0_with_a_usage_line(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], prog_name="llmops")
    assert result.exit_code == 0, f"{' '.join(path)} --help: {result.output}{result.exception!r}"
    assert result.output.lstrip().startswith("Usage: llmops " + " ".join(path))
    assert len(result.output.strip().splitlines()) > 1
