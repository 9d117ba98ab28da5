"""`llmops alarms`: the gateway's CloudWatch alarms and their states, local or deployed.

Locally the states are the local evaluator's (`llmops.local.alarms`: the same alarms as CDK,
evaluated from the handlers' EMF records); against `--stack` they are CloudWatch's own.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from llmops.cli.options import DEFAULT_STATE_DIR, AsJson, Region, StackName, StateDir
from llmops.cli.stack import StackConnection, connect
from llmops.cli.terminal import console, fail

__all__ = ["alarms", "describe_alarms"]

_STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
_COLOURS = {"OK": "green", "ALARM": "red", "INSUFFICIENT_DATA": "yellow"}


def describe_alarms(conn: StackConnection, prefix: str, state: str | None = None) -> list[dict[str, Any]]:
    """Every metric alarm whose name starts with `prefix` (optionally only those in `state`)."""
    cloudwatch = conn.client("cloudwatch")
    query: dict[str, Any] = {"AlarmNamePrefix": prefix}
    if state:
        query["StateValue"] = state
    rows: list[dict[str, Any]] = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(**query):
        for alarm in page.get("MetricAlarms", []):
            rows.append(
                {
                    "name": alarm["AlarmName"],
                    "state": alarm.get("StateValue", "INSUFFICIENT_DATA"),
                    "reason": alarm.get("StateReason", ""),
                    "updated": str(alarm.get("StateUpdatedTimestamp", "")),
                    "threshold": alarm.get("Threshold"),
                    "evaluation_periods": alarm.get("EvaluationPeriods"),
                    "datapoints_to_alarm": alarm.get("DatapointsToAlarm"),
                    "treat_missing_data": alarm.get("TreatMissingData", "missing"),
                }
            )
    return sorted(rows, key=lambda r: (r["state"] != "ALARM", r["name"]))


def alarms(
    state: Annotated[
        str | None, typer.Option("--state", help="Only alarms in this state: OK, ALARM or INSUFFICIENT_DATA.")
    ] = None,
    contains: Annotated[str | None, typer.Option("--name", help="Only alarms whose name contains this.")] = None,
    prefix: Annotated[str, typer.Option("--prefix", help="Alarm name prefix.")] = "llmops-",
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """List the gateway's alarms with their state and the reason CloudWatch (or the local evaluator) gave."""
    if state is not None and state not in _STATES:
        fail(f"--state takes one of {', '.join(_STATES)}, got {state!r}")
    conn = connect(state_dir, stack, region)
    rows = [r for r in describe_alarms(conn, prefix, state) if contains is None or contains in r["name"]]
    if as_json:
        console.print_json(json.dumps(rows))
        return
    local = conn.local_state.get("alarms", {})
    where = f"stack {stack}" if stack else "the local stack"
    period = local.get("period_s")
    evaluated = f", evaluated every {period:g} s period" if period else ""
    table = Table(title=f"Alarms of {where}{evaluated} ({len(rows)})")
    for column in ("alarm", "state", "M of N", "reason"):
        table.add_column(column, overflow="fold")
    for row in rows:
        colour = _COLOURS.get(row["state"], "white")
        table.add_row(
            row["name"],
            f"[{colour}]{row['state']}[/]",
            f"{row['datapoints_to_alarm']} of {row['evaluation_periods']}",
            row["reason"][:160],
        )
    console.print(table)
