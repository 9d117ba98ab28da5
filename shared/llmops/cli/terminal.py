"""How every admin command talks to the person at the terminal: output, errors and exits."""

from __future__ import annotations

import getpass
import os
from datetime import UTC, datetime
from typing import NoReturn

import typer
from rich.console import Console

__all__ = ["console", "current_actor", "errors", "fail", "utc_time"]

console = Console()
errors = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Exit with `message` on stderr: 2 for bad input or configuration, 1 for a failed check."""
    errors.print(f"[red]error:[/] {message}")
    raise typer.Exit(code)


def current_actor(actor: str | None) -> str:
    """Who made a registry change: the `--actor` given, else the OS user."""
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "")


def utc_time(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M:%S") if epoch_s else "-"
