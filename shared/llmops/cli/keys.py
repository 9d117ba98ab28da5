"""`llmops keys create|list|revoke|rotate|tenant`: API keys and tenant-wide limits.

The key pepper comes from `LLMOPS_KEY_PEPPER`, else the stack settings, else the local stack's
state file (`key_pepper`). The raw key is printed once and never stored.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.panel import Panel
from rich.table import Table

from llmops.adapters.dynamodb.key_store import DynamoKeyStore
from llmops.cli.options import DEFAULT_STATE_DIR, AsJson, Region, StackName, StateDir, Tenant
from llmops.cli.stack import StackConnection, connect
from llmops.cli.terminal import console, fail
from llmops.domain.keys import (
    ApiKeyRecord,
    InvalidLimitsError,
    KeyNotFoundError,
    TenantRecord,
)
from llmops.domain.tenancy import Limits, TextRetention

__all__ = ["app"]

app = typer.Typer(help="Create, list, revoke and rotate API keys; set tenant-wide limits.", no_args_is_help=True)

Rpm = Annotated[int | None, typer.Option("--rpm", help="Requests per minute (0 = unlimited).")]
Tpm = Annotated[int | None, typer.Option("--tpm", help="Tokens per minute (0 = unlimited).")]
Tpd = Annotated[int | None, typer.Option("--tokens-per-day", help="Tokens per day (0 = unlimited).")]
Budget = Annotated[float | None, typer.Option("--monthly-budget-usd", help="USD per calendar month (UTC).")]


def _store(state_dir: Path, stack: str | None, region: str | None) -> DynamoKeyStore:
    conn = connect(state_dir, stack, region)
    pepper = _pepper(conn)
    if not conn.settings.keys_table:
        fail("the stack does not name an ApiKeys table")
    return DynamoKeyStore(conn.client("dynamodb"), conn.settings.keys_table, pepper)


def _pepper(conn: StackConnection) -> str:
    pepper = os.environ.get("LLMOPS_KEY_PEPPER") or conn.settings.key_pepper or conn.local_state.get("key_pepper")
    if not pepper and conn.settings.key_pepper_secret_arn:
        secret = conn.client("secretsmanager").get_secret_value(SecretId=conn.settings.key_pepper_secret_arn)
        pepper = secret["SecretString"]
    if not pepper:
        fail("no key pepper: set LLMOPS_KEY_PEPPER to the value the gateway's authorizer uses")
    return str(pepper)


def _limits(rpm: int | None, tpm: int | None, tpd: int | None, budget: float | None) -> Limits:
    return Limits(requests_per_minute=rpm, tokens_per_minute=tpm, tokens_per_day=tpd, monthly_budget_usd=budget)


def _limits_json(limits: Limits) -> dict[str, Any]:
    return {
        "requests_per_minute": limits.requests_per_minute,
        "tokens_per_minute": limits.tokens_per_minute,
        "tokens_per_day": limits.tokens_per_day,
        "monthly_budget_usd": limits.monthly_budget_usd,
    }


def _limits_text(limits: Limits) -> str:
    parts = [
        f"{limits.requests_per_minute} rpm" if limits.requests_per_minute else "",
        f"{limits.tokens_per_minute} tpm" if limits.tokens_per_minute else "",
        f"{limits.tokens_per_day} tokens/day" if limits.tokens_per_day else "",
        f"${limits.monthly_budget_usd:,.2f}/month" if limits.monthly_budget_usd else "",
    ]
    return ", ".join(p for p in parts if p) or "unlimited"


def _record_json(record: ApiKeyRecord, now: float) -> dict[str, Any]:
    return {
        "prefix": record.prefix,
        "tenant": record.tenant_id,
        "status": record.display_status(now),
        "allowed_models": list(record.allowed_models),
        "limits": _limits_json(record.limits),
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "rotated_from": record.rotated_from,
        "label": record.label,
    }


def _show_new_key(raw: str, record: ApiKeyRecord, as_json: bool, now: float) -> None:
    if as_json:
        console.print_json(json.dumps({"api_key": raw, **_record_json(record, now)}))
        return
    console.print(
        Panel.fit(
            f"[bold yellow]{raw}[/]\n\n"
            f"tenant [cyan]{record.tenant_id}[/]  prefix [cyan]{record.prefix}[/]  "
            f"models {', '.join(record.allowed_models)}\nlimits {_limits_text(record.limits)}",
            title="New API key - shown once, store it now",
        )
    )


@app.command("create")
def create(
    tenant: Tenant,
    rpm: Rpm = None,
    tpm: Tpm = None,
    tokens_per_day: Tpd = None,
    monthly_budget_usd: Budget = None,
    models: Annotated[str, typer.Option("--models", help="Comma-separated aliases, or * for all.")] = "*",
    expires_in_days: Annotated[float | None, typer.Option("--expires-in-days", help="Key lifetime.")] = None,
    label: Annotated[str, typer.Option("--label", help="A note to recognise the key by.")] = "",
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """Create a key for TENANT and print it once."""
    now = time.time()
    if expires_in_days is not None and expires_in_days <= 0:
        fail("--expires-in-days must be positive")
    store = _store(state_dir, stack, region)
    try:
        raw, record = store.create(
            tenant,
            now,
            limits=_limits(rpm, tpm, tokens_per_day, monthly_budget_usd),
            allowed_models=[m for m in models.split(",")],
            expires_at=now + expires_in_days * 86400 if expires_in_days else None,
            label=label,
        )
    except (InvalidLimitsError, ValueError) as exc:
        fail(str(exc))
    _show_new_key(raw, record, as_json, now)


@app.command("list")
def list_keys(
    tenant: Tenant,
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """List TENANT's keys (prefixes only; secrets are never stored)."""
    now = time.time()
    records = _store(state_dir, stack, region).list_keys(tenant)
    if as_json:
        console.print_json(json.dumps([_record_json(r, now) for r in records]))
        return
    table = Table(title=f"API keys of {tenant}")
    for column in ("prefix", "status", "models", "limits", "created (UTC)", "expires (UTC)", "label"):
        table.add_column(column)
    for r in records:
        table.add_row(
            r.prefix,
            r.display_status(now),
            ", ".join(r.allowed_models),
            _limits_text(r.limits),
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(r.created_at)),
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(r.expires_at)) if r.expires_at else "-",
            r.label,
        )
    console.print(table)


@app.command("revoke")
def revoke(
    prefix: Annotated[str, typer.Argument(help="The key's 8-character prefix.")],
    tenant: Tenant,
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """Revoke a key now (the authorizer cache may serve it for up to its TTL)."""
    now = time.time()
    try:
        record = _store(state_dir, stack, region).revoke(tenant, prefix, now)
    except KeyNotFoundError as exc:
        fail(str(exc), code=1)
    if as_json:
        console.print_json(json.dumps(_record_json(record, now)))
    else:
        console.print(f"Revoked key [cyan]{prefix}[/] of tenant [cyan]{tenant}[/].")


@app.command("rotate")
def rotate(
    prefix: Annotated[str, typer.Argument(help="The key's 8-character prefix.")],
    tenant: Tenant,
    grace_seconds: Annotated[
        float, typer.Option("--grace-seconds", help="Keep the old key valid this long (0 = revoke now).")
    ] = 0,
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """Issue a replacement with the same models and limits; retire the old key."""
    now = time.time()
    try:
        raw, record = _store(state_dir, stack, region).rotate(tenant, prefix, now, grace_s=grace_seconds)
    except (KeyNotFoundError, ValueError) as exc:
        fail(str(exc), code=1)
    _show_new_key(raw, record, as_json, now)


@app.command("tenant")
def tenant_policy(
    tenant: Tenant,
    rpm: Rpm = None,
    tpm: Tpm = None,
    tokens_per_day: Tpd = None,
    monthly_budget_usd: Budget = None,
    fail_open: Annotated[
        bool | None,
        typer.Option("--fail-open/--fail-closed", help="Admit requests when quota accounting is down."),
    ] = None,
    audit_retention_days: Annotated[int | None, typer.Option("--audit-retention-days")] = None,
    audit_text: Annotated[
        TextRetention | None, typer.Option("--audit-text", help="What the audit trail keeps of prompt text.")
    ] = None,
    guard_policy: Annotated[
        str | None, typer.Option("--guard-policy", help="Named guard policy for all the tenant's requests.")
    ] = None,
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """Show or change TENANT's shared limits (across all its keys) and policy."""
    store = _store(state_dir, stack, region)
    current = store.get_tenant(tenant) or TenantRecord(tenant)
    old = current.limits
    changes = (rpm, tpm, tokens_per_day, monthly_budget_usd, fail_open, audit_retention_days, audit_text, guard_policy)
    try:
        updated = TenantRecord(
            tenant_id=tenant,
            limits=Limits(
                requests_per_minute=old.requests_per_minute if rpm is None else rpm,
                tokens_per_minute=old.tokens_per_minute if tpm is None else tpm,
                tokens_per_day=old.tokens_per_day if tokens_per_day is None else tokens_per_day,
                monthly_budget_usd=old.monthly_budget_usd if monthly_budget_usd is None else monthly_budget_usd,
            ),
            quota_fail_open=current.quota_fail_open if fail_open is None else fail_open,
            audit_retention_days=current.audit_retention_days if audit_retention_days is None else audit_retention_days,
            audit_text=current.audit_text if audit_text is None else audit_text,
            guard_policy=current.guard_policy if guard_policy is None else guard_policy,
        )
    except (InvalidLimitsError, ValueError) as exc:
        fail(str(exc))
    if any(c is not None for c in changes):
        store.put_tenant(updated)
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "tenant": updated.tenant_id,
                    "limits": _limits_json(updated.limits),
                    "quota_fail_open": updated.quota_fail_open,
                    "audit_retention_days": updated.audit_retention_days,
                    "audit_text": updated.audit_text.value,
                    "guard_policy": updated.guard_policy,
                }
            )
        )
        return
    console.print(
        f"tenant [cyan]{updated.tenant_id}[/]: limits {_limits_text(updated.limits)}; "
        f"quota {'fails open' if updated.quota_fail_open else 'fails closed'}; "
        f"audit keeps {updated.audit_text.value} text for {updated.audit_retention_days} days; "
        f"guard policy {updated.guard_policy}"
    )
