"""Options every admin command shares: where to act (local state dir or deployed stack) and output."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["DEFAULT_STATE_DIR", "Actor", "AsJson", "Region", "StackName", "StateDir", "Tenant"]

DEFAULT_STATE_DIR = Path(".llmops")

StateDir = Annotated[Path, typer.Option("--state-dir", help="Local stack state directory.")]
StackName = Annotated[str | None, typer.Option("--stack", help="Deployed CloudFormation stack name.")]
Region = Annotated[str | None, typer.Option("--region", help="AWS region of the deployed stack.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Tenant = Annotated[str, typer.Option("--tenant", help="Tenant id.")]
Actor = Annotated[str | None, typer.Option("--actor", help="Who made the change (default: the OS user).")]
