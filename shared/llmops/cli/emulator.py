"""`llmops emulator`: latency and faults on the running local stack's model emulators."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer

from llmops.cli.stack import connect
from llmops.cli.terminal import console

app = typer.Typer(no_args_is_help=True)

StateDir = Annotated[Path, typer.Option(help="The local stack's state dir.")]


def emulator_url(state_dir: Path, key: str) -> str:
    state = connect(state_dir).local_state
    # Bedrock model ids contain a provider prefix with a dot; SageMaker keys are endpoint[/variant].
    is_bedrock = "." in key.split("/", maxsplit=1)[0] and "/" not in key
    return str(state["bedrock_runtime_url"] if is_bedrock else state["sagemaker_runtime_url"])


def call(url: str, method: str = "GET", payload: dict[str, Any] | None = None) -> Any:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


@app.command()
def faults(
    key: Annotated[str, typer.Option(help="Bedrock model id, or SageMaker ENDPOINT or ENDPOINT/VARIANT.")],
    latency_ms: Annotated[float, typer.Option(min=0, help="Delay before the response starts.")] = 0,
    token_latency_ms: Annotated[
        float, typer.Option(min=0, help="Time per output token: streams pace by it, buffered answers wait for it.")
    ] = 0,
    first_token_latency_ms: Annotated[float, typer.Option(min=0, help="Extra time before the first token.")] = 0,
    fault_after_tokens: Annotated[
        int | None,
        typer.Option(min=0, help="Streams fail mid-way after N tokens (with --throttle/error/timeout-rate)."),
    ] = None,
    throttle_rate: Annotated[float, typer.Option(min=0, max=1)] = 0,
    error_rate: Annotated[float, typer.Option(min=0, max=1)] = 0,
    timeout_rate: Annotated[float, typer.Option(min=0, max=1)] = 0,
    clear: Annotated[bool, typer.Option(help="Remove the faults for this key.")] = False,
    state_dir: StateDir = Path(".llmops"),
) -> None:
    """Inject latency, throttling (429), 5xx errors or timeouts for one model or endpoint, before or
    (--fault-after-tokens) during a stream."""
    payload: dict[str, Any] = (
        {"key": key, "clear": True}
        if clear
        else {
            "key": key,
            "latency_ms": latency_ms,
            "throttle_rate": throttle_rate,
            "error_rate": error_rate,
            "timeout_rate": timeout_rate,
            "token_latency_ms": token_latency_ms,
            "first_token_latency_ms": first_token_latency_ms,
            "fault_after_tokens": fault_after_tokens,
        }
    )
    console.print_json(data=call(f"{emulator_url(state_dir, key)}/_emulator/faults", "POST", payload))


@app.command()
def stats(state_dir: StateDir = Path(".llmops")) -> None:
    """Calls and injected outcomes per model and endpoint."""
    state = connect(state_dir).local_state
    for name in ("bedrock_runtime_url", "sagemaker_runtime_url"):
        console.rule(name.removesuffix("_url"))
        console.print_json(data=call(f"{state[name]}/_emulator/stats"))
