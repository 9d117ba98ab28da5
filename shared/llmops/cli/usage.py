"""`llmops usage --tenant T`: spend and tokens by alias and day; `llmops usage sweep`: release expired reservations."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from llmops.adapters.dynamodb.quota_ledger import DynamoQuotaLedger
from llmops.adapters.dynamodb.usage_store import DynamoUsageStore
from llmops.application.reservation_sweeper import sweep_expired_reservations
from llmops.cli.stack import connect
from llmops.cli.terminal import console

__all__ = ["app"]

app = typer.Typer(help="Spend and tokens per alias and day.")


@app.callback(invoke_without_command=True)
def usage(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Tenant id.")] = None,
    days: Annotated[int, typer.Option("--days", min=1, max=366, help="How many days back, today included.")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    state_dir: Annotated[Path, typer.Option("--state-dir", help="Local stack state directory.")] = Path(".llmops"),
    stack: Annotated[str | None, typer.Option("--stack", help="Deployed CloudFormation stack name.")] = None,
    region: Annotated[str | None, typer.Option("--region", help="AWS region of the deployed stack.")] = None,
) -> None:
    """Show TENANT's spend by alias and day (UTC)."""
    if ctx.invoked_subcommand is not None:
        return
    if tenant is None:
        raise typer.BadParameter("Missing option '--tenant'.", param_hint="--tenant")
    conn = connect(state_dir, stack, region)
    now = time.time()
    until = time.strftime("%Y-%m-%d", time.gmtime(now))
    since = time.strftime("%Y-%m-%d", time.gmtime(now - (days - 1) * 86400))
    rows = DynamoUsageStore(conn.client("dynamodb"), conn.settings.usage_table).daily(tenant, since, until)
    if as_json:
        console.print_json(
            json.dumps({"tenant": tenant, "since": since, "until": until, "rows": [r.to_json() for r in rows]})
        )
        return
    table = Table(title=f"Usage of {tenant}, {since} .. {until} (UTC)")
    for column, justify in (
        ("day", "left"),
        ("alias", "left"),
        ("requests", "right"),
        ("input tokens", "right"),
        ("output tokens", "right"),
        ("cost (USD)", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    totals: dict[str, float] = defaultdict(float)
    for r in rows:
        table.add_row(
            r.day,
            r.alias,
            f"{r.requests:,}",
            f"{r.input_tokens:,}",
            f"{r.output_tokens:,}",
            f"{r.cost_usd:,.6f}",
        )
        totals["requests"] += r.requests
        totals["input"] += r.input_tokens
        totals["output"] += r.output_tokens
        totals["cost"] += r.cost_usd
    if rows:
        table.add_section()
        table.add_row(
            "total",
            "",
            f"{int(totals['requests']):,}",
            f"{int(totals['input']):,}",
            f"{int(totals['output']):,}",
            f"{totals['cost']:,.6f}",
            style="bold",
        )
    console.print(table)


@app.command("sweep")
def sweep(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    state_dir: Annotated[Path, typer.Option("--state-dir", help="Local stack state directory.")] = Path(".llmops"),
    stack: Annotated[str | None, typer.Option("--stack", help="Deployed CloudFormation stack name.")] = None,
    region: Annotated[str | None, typer.Option("--region", help="AWS region of the deployed stack.")] = None,
) -> None:
    """Release quota reservations whose request never settled them, now (the schedule does it every minute)."""
    conn = connect(state_dir, stack, region)
    ledger = DynamoQuotaLedger(conn.client("dynamodb"), conn.settings.quotas_table, conn.settings.usage_table)
    report = sweep_expired_reservations(ledger, time.time())
    if as_json:
        console.print_json(json.dumps(report.to_json()))
        return
    console.print(f"Released {report.released} expired reservation(s); {report.already_settled} had settled meanwhile.")
