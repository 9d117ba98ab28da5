"""`llmops dashboard executive|oncall|debug --png FILE`: the deployed dashboards, drawn locally.

The widgets are the dashboard catalogue's (`llmops.observability.dashboard_catalogue`), the same
that CDK deploys; the data is the local stack's metric store (`<state-dir>/metrics/emf.jsonl`,
the EMF records the handlers wrote) and, while the stack runs, its alarm states.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from llmops.adapters.dynamodb.route_source import load_route_document
from llmops.adapters.stepfunctions_canary import route_document
from llmops.cli.alarms import describe_alarms
from llmops.cli.options import DEFAULT_STATE_DIR, StateDir
from llmops.cli.stack import StackConnection, connect
from llmops.cli.terminal import console, fail
from llmops.local.alarms import LOCAL_STAGE, load_alarm_context
from llmops.local.metric_store import MetricStore, emf_file
from llmops.observability.dashboard_catalogue import DASHBOARDS, dashboards

__all__ = ["dashboard"]


def dashboard(
    name: Annotated[str, typer.Argument(help="executive, oncall or debug.")],
    png: Annotated[Path, typer.Option("--png", help="Where to write the picture.")],
    window_seconds: Annotated[
        float | None, typer.Option("--window-seconds", min=10, help="Only the last N seconds (default: all data).")
    ] = None,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Draw one of the three dashboards CDK deploys, from the local stack's metrics."""
    if name not in DASHBOARDS:
        fail(f"no dashboard {name!r}: choose one of {', '.join(DASHBOARDS)}")
    path = emf_file(state_dir)
    if not path.exists():
        fail(f"no local metrics at {path}: start `llmops serve --state-dir {state_dir}` and send it traffic")
    store = MetricStore(path)
    with console.status(f"Reading {path}..."):
        store.refresh()
    conn: StackConnection | None
    try:
        conn = connect(state_dir)
    except FileNotFoundError:
        conn = None  # a stopped stack's metrics still draw; its alarms are gone with moto
    routes = _routes(conn)
    alarms = {r["name"]: r["state"] for r in describe_alarms(conn, f"llmops-{LOCAL_STAGE}-")} if conn else None
    board = dashboards(LOCAL_STAGE, routes, load_alarm_context().settings)[name]
    from llmops.cli.dashboard_render import render_dashboard  # noqa: PLC0415 - matplotlib only when drawing

    render_dashboard(png, board, store, alarms=alarms, now=time.time(), window_s=window_seconds)
    console.print(f"{board.name}: {sum(len(row) for row in board.rows)} widgets -> {png}")


def _routes(conn: StackConnection | None) -> dict[str, Any]:
    """The stack's live route document (its aliases and targets), else the bundled one."""
    if conn is not None:
        return dict(route_document(conn.client("dynamodb"), conn.settings.routes_table))
    return dict(load_route_document())
