"""`llmops serve`: the local stack in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from llmops.config.env import EnvVar
from llmops.config.timeouts import GATEWAY_TIMEOUT_S, RESERVATION_SWEEP_SCHEDULE_MINUTES
from llmops.local.foreground import run_in_foreground
from llmops.local.stack import LocalStack, LocalStackOptions
from llmops.local.wsgi_server import PortInUseError

console = Console(stderr=True)
DEFAULT_WORKERS = min(4, os.cpu_count() or 1)


def serve(
    host: Annotated[str, typer.Option(help="Interface for the front door.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the front door (0 picks a free one).")] = 8080,
    state_dir: Annotated[Path, typer.Option(help="Where local.json is written.")] = Path(".llmops"),
    forward_url: Annotated[
        str | None,
        typer.Option(help="OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1) the emulators forward to."),
    ] = None,
    routes_file: Annotated[Path | None, typer.Option(help="Route config to seed instead of the bundled one.")] = None,
    provider_read_timeout_s: Annotated[
        float, typer.Option(min=0.1, help="How long the gateway waits for a model before trying the next target.")
    ] = 5.0,
    gateway_timeout_s: Annotated[
        float,
        typer.Option(
            min=1,
            max=900,
            help="The gateway function's timeout: each request runs against this deadline, as in Lambda.",
        ),
    ] = GATEWAY_TIMEOUT_S,
    reservation_sweep_s: Annotated[
        float,
        typer.Option(min=0.5, help="How often expired quota reservations are released (the deployed schedule: 60 s)."),
    ] = RESERVATION_SWEEP_SCHEDULE_MINUTES * 60.0,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=32,
            help="Front-door processes sharing the port; each handles one request at a time, "
            "like one Lambda container.",
        ),
    ] = DEFAULT_WORKERS,
    emit_metrics: Annotated[bool, typer.Option(help="Print the CloudWatch EMF metric lines to stdout.")] = False,
    alarm_period_seconds: Annotated[
        float | None,
        typer.Option(
            min=0.5,
            help="Evaluate every alarm over periods of this many seconds instead of the deployed ones "
            "(1 min to 1 day), keeping each alarm's M of N: canary gates and retraining triggers fire in seconds.",
        ),
    ] = None,
    context: Annotated[
        list[str] | None,
        typer.Option(
            "--context",
            "-c",
            help="CDK context KEY=VALUE for the alarms' thresholds (over cdk.json), e.g. -c canaryErrorRate=0.1.",
        ),
    ] = None,
) -> None:
    """Start moto, the Bedrock and SageMaker runtime emulators and the API front door."""
    options = LocalStackOptions(
        host=host,
        port=port,
        state_dir=state_dir,
        forward_url=forward_url,
        extra_env={EnvVar.PROVIDER_READ_TIMEOUT_S: str(provider_read_timeout_s)},
        emit_metrics=emit_metrics,
        alarm_period_s=alarm_period_seconds,
        context=_context(context or []),
        workers=workers,
        gateway_timeout_s=gateway_timeout_s,
        sweep_interval_s=reservation_sweep_s,
    )
    if routes_file is not None:
        options.routes_file = routes_file

    try:
        run_in_foreground(
            LocalStack(options),
            starting=console.status("Starting the local stack..."),
            on_ready=lambda state: print_ready(console, state, state_dir),
            on_stopping=lambda: console.print("Stopping..."),
        )
    except PortInUseError as exc:  # found before anything started: nothing to stop
        console.print(f"[red]error:[/] {exc.strerror}", soft_wrap=True)
        raise typer.Exit(1) from None


def _context(pairs: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--context takes KEY=VALUE, got {pair!r}", param_hint="--context")
        values[key.strip()] = value.strip()
    return values


def print_ready(out: Console, state: dict[str, Any], state_dir: Path) -> None:
    """One fact per line, never wrapped: a key or URL split across lines cannot be copied, and a
    label must stay next to its value however narrow the terminal."""
    lines = (
        f"[bold green]llmops local stack ready[/] at [cyan]{state['base_url']}[/]",
        f"  API key: [yellow]{state['api_key']}[/]",
        f"  tenant: {state['tenant']}",
        f"  AWS (moto): {state['aws_endpoint_url']}",
        f"  state: {state_dir / 'local.json'}",
        '  Try: curl -s -H "Authorization: Bearer $KEY" ' + state["base_url"] + "/models",
    )
    for line in lines:
        out.print(line, soft_wrap=True)
