"""`llmops audit verify|show|replay`: check the hash chains, read a record, drain the DLQ."""

from __future__ import annotations

import json
import os
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from llmops.adapters.dynamodb.audit_log import DynamoAuditLog
from llmops.adapters.dynamodb.quota_ledger import DynamoQuotaLedger
from llmops.adapters.sqs.dead_letter_queue import DeadLetterQueue
from llmops.cli.options import DEFAULT_STATE_DIR, AsJson, Region, StackName, StateDir
from llmops.cli.stack import connect
from llmops.cli.terminal import console, errors
from llmops.domain.audit import AuditRecord
from llmops.domain.quotas import PendingSettlement

__all__ = ["AUDIT_DLQ_URL_ENV", "app"]

AUDIT_DLQ_URL_ENV = "LLMOPS_AUDIT_DLQ_URL"

app = typer.Typer(help="Verify the tamper-evident audit trail, show records, replay the DLQ.", no_args_is_help=True)


@app.command("verify")
def verify(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant id.")],
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """Walk every shard chain of TENANT; exit 1 if any record was altered, inserted or deleted."""
    conn = connect(state_dir, stack, region)
    report = DynamoAuditLog(conn.client("dynamodb"), conn.settings.audit_table).verify(tenant, time.time())
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "tenant": report.tenant_id,
                    "ok": report.ok,
                    "shards": report.shards,
                    "records": report.records,
                    "expired_gaps": report.expired_gaps,
                    "problems": [
                        {"shard": p.shard, "seq": p.seq, "kind": p.kind.value, "detail": p.detail}
                        for p in report.problems
                    ],
                }
            )
        )
    elif report.ok:
        console.print(
            f"[green]OK[/]: {report.records} records in {report.shards} shards of {tenant} verified"
            + (f" ({report.expired_gaps} gaps explained by retention)" if report.expired_gaps else "")
        )
    else:
        table = Table(title=f"Audit chain problems for {tenant}")
        for column in ("shard", "seq", "kind", "detail"):
            table.add_column(column)
        for p in report.problems:
            table.add_row(str(p.shard), "-" if p.seq is None else str(p.seq), p.kind.value, p.detail)
        console.print(table)
    if not report.ok:
        raise typer.Exit(1)


@app.command("show")
def show(
    request_id: Annotated[str, typer.Argument(help="The x-request-id of the request.")],
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only look in this tenant's trail.")] = None,
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """Show the audit record of REQUEST_ID."""
    conn = connect(state_dir, stack, region)
    log = DynamoAuditLog(conn.client("dynamodb"), conn.settings.audit_table)
    if tenant is not None:
        found = log.get(tenant, request_id)
        records = [found] if found is not None else []
    else:
        records = log.find_any_tenant(request_id)
    if not records:
        errors.print(f"[red]no audit record for request {request_id}[/]")
        raise typer.Exit(1)
    if as_json:
        payload: Any = [r.to_dict() for r in records]
        console.print_json(json.dumps(payload if len(payload) > 1 else payload[0]))
        return
    for record in records:
        _print_record(record)


def _print_record(record: AuditRecord) -> None:
    table = Table(title=f"Request {record.request_id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for name, value in record.to_dict().items():
        if name in {"started_at", "finished_at"}:
            shown = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(value))) + f" UTC ({value})"
        elif isinstance(value, dict | list):
            shown = json.dumps(value)
        else:
            shown = "-" if value is None else str(value)
        table.add_row(name, shown)
    console.print(table)


@app.command("replay")
def replay(
    queue_url: Annotated[
        str | None, typer.Option("--queue-url", help=f"The DLQ (default: ${AUDIT_DLQ_URL_ENV}).")
    ] = None,
    max_messages: Annotated[int, typer.Option("--max", min=1, help="Stop after this many messages.")] = 10_000,
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """Drain the dead-letter queue: write each audit record and apply each settlement exactly once."""
    conn = connect(state_dir, stack, region)
    url = queue_url or os.environ.get(AUDIT_DLQ_URL_ENV) or conn.local_state.get("audit_dlq_url")
    if not url:
        errors.print(f"[red]error:[/] no queue URL: pass --queue-url or set {AUDIT_DLQ_URL_ENV}")
        raise typer.Exit(2)
    dynamodb = conn.client("dynamodb")
    log = DynamoAuditLog(dynamodb, conn.settings.audit_table)
    ledger = DynamoQuotaLedger(dynamodb, conn.settings.quotas_table, conn.settings.usage_table)
    now = time.time()

    def apply(pending: PendingSettlement) -> bool:
        return ledger.apply_pending(pending, now)

    report = DeadLetterQueue(conn.client("sqs"), str(url)).drain(log.write_once, apply, max_messages=max_messages)
    if as_json:
        console.print_json(json.dumps(report.to_json()))
    else:
        console.print(
            f"received {report.received}: {report.audit_written} audit records written "
            f"({report.audit_duplicates} already present), {report.settlements_applied} settlements applied "
            f"({report.settlements_duplicates} already applied), {report.failed} failed, "
            f"{report.unreadable} unreadable"
        )
    if report.failed or report.unreadable:
        raise typer.Exit(1)
