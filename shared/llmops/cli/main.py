"""`llmops`: the local stack and the admin commands, against a local or a deployed stack."""

from __future__ import annotations

import typer

from llmops.cli import emulator, serve

app = typer.Typer(
    name="llmops",
    help="LLMOps gateway: run the local stack and administer a local or deployed gateway.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("serve")(serve.serve)
app.add_typer(emulator.app, name="emulator", help="Set latency and faults on the local model emulators.")

if __name__ == "__main__":
    app()
