"""`llmops demo canary`: watch a broken candidate get rolled back on the local stack.

Against a running `llmops serve` (best with `--alarm-period-seconds 1`, so the gates decide in
seconds), it breaks the candidate with an emulator fault, starts a canary with the default gates
(the candidate's own SLO alarms), sends traffic, and prints the timeline as it happens: the step,
the candidate's traffic share (its route weight, and the share of model calls it received), the
gate states, and the rollback or promotion. The candidate's calls and errors come from the local
metric store (the EMF records the gateway wrote). At the end it writes a PNG of traffic share and
error rate over time, with the steps marked, and clears the fault.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from llmops.adapters.stepfunctions_canary import execution_history, route_document
from llmops.cli import emulator
from llmops.cli.canary import prepare_canary, start_canary
from llmops.cli.options import DEFAULT_STATE_DIR, StateDir
from llmops.cli.stack import StackConnection, connect
from llmops.cli.terminal import console, fail
from llmops.local.metric_store import MetricKey, MetricStore, emf_file
from llmops.observability.metrics import GATEWAY_SERVICE, NAMESPACE, PROVIDER_CALLS, PROVIDER_ERRORS, PROVIDER_THROTTLES
from llmops.workflows.history import canary_progress

__all__ = ["app"]

app = typer.Typer(help="Demonstrations on the local stack.", no_args_is_help=True)

_TICK_S = 0.5


@dataclass(slots=True)
class Sample:
    t: float
    step: int | None
    weight: float
    call_share: float | None
    error_rate: float | None
    gates: dict[str, str]
    state: str


@dataclass(slots=True)
class Timeline:
    samples: list[Sample] = field(default_factory=list)
    outcome: str = ""


class _Traffic:
    """Callers sending chat requests to one alias until stopped."""

    def __init__(self, base_url: str, api_key: str, alias: str, threads: int) -> None:
        self._request = (f"{base_url}/chat/completions", api_key, alias)
        self._stop = threading.Event()
        self.sent = 0
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        url, key, alias = self._request
        body = json.dumps({"model": alias, "messages": [{"role": "user", "content": "Say hello."}]}).encode()
        while not self._stop.is_set():
            request = urllib.request.Request(
                url, data=body, headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
            except (urllib.error.URLError, TimeoutError):
                time.sleep(0.1)  # an error answer is part of the demo; the next call follows
            self.sent += 1

    def __enter__(self) -> _Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=35)


def _set_fault(state_dir: Path, key: str, options: dict[str, Any] | None) -> None:
    """What `llmops emulator faults` does (None clears the key's faults)."""
    payload = {"key": key, "clear": True} if options is None else {"key": key, **options}
    emulator.call(f"{emulator.emulator_url(state_dir, key)}/_emulator/faults", "POST", payload)


def _window(store: MetricStore, target: str, start: float, end: float) -> tuple[float | None, float | None]:
    """(the target's share of model calls, its error rate) over [start, end) from the EMF records."""

    def total(metric: str, dims: dict[str, str]) -> float:
        return sum(store.values(MetricKey.of(NAMESPACE, metric, {"service": GATEWAY_SERVICE, **dims}), start, end))

    calls_all = total(PROVIDER_CALLS.name, {})
    calls = total(PROVIDER_CALLS.name, {"target": target})
    failed = total(PROVIDER_ERRORS.name, {"target": target}) + total(PROVIDER_THROTTLES.name, {"target": target})
    share = calls / calls_all if calls_all else None
    return share, (failed / calls if calls else None)


def _gate_states(conn: StackConnection, gates: list[str]) -> dict[str, str]:
    page = conn.client("cloudwatch").describe_alarms(AlarmNames=gates)
    return {a["AlarmName"]: a["StateValue"] for a in page.get("MetricAlarms", [])}


def _short(gate: str, candidate: str) -> str:
    return gate.removeprefix("llmops-local-canary-").removesuffix(f"-{candidate}")


@app.command("canary")
def canary_demo(
    alias: Annotated[str, typer.Option("--alias", help="The alias to move.")] = "llama3-8b",
    baseline: Annotated[str, typer.Option("--baseline")] = "sm-llama3-8b-primary",
    candidate: Annotated[str, typer.Option("--candidate")] = "sm-llama3-8b-candidate",
    fault_key: Annotated[
        str, typer.Option("--fault-key", help="Emulator key of the candidate (endpoint/variant).")
    ] = "llmops-llama3-8b/candidate",
    error_rate: Annotated[float, typer.Option("--error-rate", help="Share of the candidate's calls that fail.")] = 1.0,
    latency_ms: Annotated[float, typer.Option("--latency-ms", help="Latency added to the candidate's calls.")] = 0.0,
    healthy: Annotated[
        bool, typer.Option("--healthy", help="Do not break the candidate: watch it be promoted.")
    ] = False,
    steps: Annotated[str, typer.Option("--steps")] = "25,50,100",
    bake_seconds: Annotated[int, typer.Option("--bake-seconds", help="Bake per step.")] = 12,
    callers: Annotated[int, typer.Option("--callers", min=1, max=16, help="Concurrent callers.")] = 3,
    png: Annotated[Path, typer.Option("--png", help="Where to write the figure.")] = Path("canary-demo.png"),
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Break a candidate, start a canary with the default gates, send traffic, and watch."""
    conn = connect(state_dir)
    period = conn.local_state.get("alarms", {}).get("period_s")
    if not period:
        console.print(
            "[yellow]The local stack evaluates alarms over the deployed periods (1 minute for the canary gates): "
            "a gate needs minutes of traffic. Restart it with `llmops serve --alarm-period-seconds 1` for a "
            "demo in seconds.[/]"
        )
    step_list = tuple(int(p) for p in steps.split(",") if p.strip())
    canary = prepare_canary(
        conn, None, alias, baseline, candidate, steps=step_list, bake_seconds=bake_seconds, gate_poll_seconds=1
    )
    gates = list(canary.gates)
    if not healthy:
        _set_fault(state_dir, fault_key, {"error_rate": error_rate, "latency_ms": latency_ms})
        console.print(f"Broke [bold]{candidate}[/]: error rate {error_rate:.0%}, +{latency_ms:g} ms ({fault_key}).")
    store = MetricStore(emf_file(state_dir))
    store.refresh()
    timeline = Timeline()
    sfn = conn.client("stepfunctions")
    try:
        with _Traffic(conn.local_state["base_url"], conn.local_state["api_key"], alias, callers):
            arn = start_canary(conn, None, canary)
            console.print(f"Canary {arn.rsplit(':', 1)[-1]}: steps {list(step_list)}, bake {bake_seconds} s")
            console.print("gates: " + ", ".join(_short(g, candidate) for g in gates))
            timeline = _watch(conn, sfn, arn, alias, candidate, gates, store, timeline)
    finally:
        if not healthy:
            _set_fault(state_dir, fault_key, None)
    weights = {
        t["target"]: t["weight"]
        for t in route_document(conn.client("dynamodb"), conn.settings.routes_table)["routes"][alias]["targets"]
    }
    console.print(f"[bold]{timeline.outcome}[/]; route weights now {weights}")
    try:
        from llmops.cli.demo_plot import canary_figure  # noqa: PLC0415 - matplotlib only when drawing
    except ImportError:
        fail("matplotlib is not installed: `uv sync --all-groups` (the bench group) to draw the figure")
    canary_figure(png, timeline.samples, title=f"Canary {alias}: {baseline} -> {candidate} ({timeline.outcome})")
    console.print(f"Figure: {png}")


def _watch(
    conn: StackConnection,
    sfn: Any,
    arn: str,
    alias: str,
    candidate: str,
    gates: list[str],
    store: MetricStore,
    timeline: Timeline,
) -> Timeline:
    started = time.time()
    last: tuple[Any, ...] | None = None
    console.print(f"{'t (s)':>6}  {'step':>4}  {'weight':>6}  {'calls':>6}  {'errors':>6}  gates")
    while True:
        time.sleep(_TICK_S)
        store.refresh()
        now = time.time()
        described = sfn.describe_execution(executionArn=arn)
        progress = canary_progress(execution_history(sfn, arn))
        route = route_document(conn.client("dynamodb"), conn.settings.routes_table)["routes"][alias]
        weight = next((float(t["weight"]) for t in route["targets"] if t["target"] == candidate), 0.0)
        share, errors = _window(store, candidate, now - 2, now)
        states = _gate_states(conn, gates)
        sample = Sample(now - started, progress.percent, weight, share, errors, states, described["status"])
        timeline.samples.append(sample)
        shown = (progress.percent, weight, tuple(sorted(states.items())), described["status"])
        if shown != last:
            alarmed = [_short(g, candidate) for g, s in states.items() if s == "ALARM"]
            gate_text = f"[red]ALARM: {', '.join(alarmed)}[/]" if alarmed else "[green]all OK[/]"
            console.print(
                f"{sample.t:6.1f}  {progress.percent or 0:>3}%  {weight:>5.0f}%  "
                f"{'-' if share is None else f'{share:.0%}':>6}  {'-' if errors is None else f'{errors:.0%}':>6}  "
                f"{gate_text}  {progress.state or ''}"
            )
            last = shown
        if described["status"] != "RUNNING":
            timeline.outcome = (
                "promoted"
                if described["status"] == "SUCCEEDED"
                else f"rolled back ({described.get('error', described['status'])})"
            )
            if described.get("cause"):
                console.print(f"[red]{described['cause']}[/]")
            return timeline
