"""`llmops keys|usage|audit` against a moto server, through a local-stack state file."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
import typer
from typer.testing import CliRunner

from llmops.adapters.dynamodb.audit_log import DynamoAuditLog
from llmops.adapters.dynamodb.key_store import DynamoKeyStore
from llmops.adapters.dynamodb.provisioning import create_tables
from llmops.adapters.dynamodb.quota_ledger import DynamoQuotaLedger
from llmops.adapters.sqs.dead_letter_queue import DeadLetterQueue
from llmops.cli import audit, keys, usage
from llmops.config.tables import TABLES
from llmops.domain.audit import AuditRecord
from llmops.domain.quotas import Demand, UsageEntry
from llmops.domain.tenancy import TenantContext
from llmops.local.naming import local_table_name

PEPPER = "cli-test-pepper"

root = typer.Typer()
root.add_typer(keys.app, name="keys")
root.add_typer(usage.app, name="usage")
root.add_typer(audit.app, name="audit")


@pytest.fixture(scope="module")
def local_tables(moto_endpoint: str) -> dict[str, str]:
    names = {spec.logical_name: local_table_name(spec.logical_name) for spec in TABLES}
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    create_tables(client, names)
    return names


@pytest.fixture
def state_dir(tmp_path: Path, moto_endpoint: str, local_tables: dict[str, str]) -> Path:
    (tmp_path / "local.json").write_text(
        json.dumps(
            {
                "base_url": "http://x/v1",
                "api_key": "",
                "tenant": "dev",
                "aws_endpoint_url": moto_endpoint,
                "key_pepper": PEPPER,
            }
        )
    )
    return tmp_path


def run(state_dir: Path, *args: str) -> Any:
    result = CliRunner().invoke(root, [*args, "--state-dir", str(state_dir)])
    return result


def test_keys_lifecycle(state_dir: Path, server_client: Callable[[str], Any], local_tables: dict[str, str]) -> None:
    created = run(
        state_dir, "keys", "create", "--tenant", "cli-a", "--rpm", "5", "--models", "chat,nova-lite", "--json"
    )
    assert created.exit_code == 0, created.output
    key = json.loads(created.output)
    assert key["limits"]["requests_per_minute"] == 5 and key["allowed_models"] == ["chat", "nova-lite"]
    store = DynamoKeyStore(server_client("dynamodb"), local_tables["ApiKeys"], PEPPER)
    assert store.resolve(key["api_key"], time.time()).tenant_id == "cli-a"

    listed = run(state_dir, "keys", "list", "--tenant", "cli-a", "--json")
    assert [k["prefix"] for k in json.loads(listed.output)] == [key["prefix"]]
    assert key["api_key"] not in listed.output

    rotated = run(state_dir, "keys", "rotate", key["prefix"], "--tenant", "cli-a", "--json")
    assert rotated.exit_code == 0, rotated.output
    new = json.loads(rotated.output)
    assert new["rotated_from"] == key["prefix"]
    revoked = run(state_dir, "keys", "revoke", new["prefix"], "--tenant", "cli-a")
    assert revoked.exit_code == 0 and "Revoked" in revoked.output
    statuses = {
        k["prefix"]: k["status"]
        for k in json.loads(run(state_dir, "keys", "list", "--tenant", "cli-a", "--json").output)
    }
    assert statuses == {key["prefix"]: "revoked", new["prefix"]: "revoked"}

    other = run(state_dir, "keys", "revoke", new["prefix"], "--tenant", "cli-b")
    assert other.exit_code == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rpm", "-1"], "requests_per_minute cannot be negative"),
        (["--tokens-per-day", "5000000000"], "above the maximum"),
        (["--monthly-budget-usd", "20000000"], "above the maximum"),
    ],
)
def test_keys_create_rejects_bad_limits(state_dir: Path, args: list[str], message: str) -> None:
    result = run(state_dir, "keys", "create", "--tenant", "cli-bad", *args)
    assert result.exit_code == 2
    assert message in result.output


def test_tenant_policy_can_be_shown_and_changed(state_dir: Path) -> None:
    result = run(state_dir, "keys", "tenant", "--tenant", "cli-t", "--tpm", "1000", "--fail-open", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(run(state_dir, "keys", "tenant", "--tenant", "cli-t", "--json").output)
    assert shown["limits"]["tokens_per_minute"] == 1000 and shown["quota_fail_open"] is True


def test_usage_shows_spend_by_alias_and_day(
    state_dir: Path, server_client: Callable[[str], Any], local_tables: dict[str, str]
) -> None:
    now = time.time()
    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    ledger = DynamoQuotaLedger(server_client("dynamodb"), local_tables["Quotas"], local_tables["Usage"])
    ctx = TenantContext("cli-u", "key00001")
    for i, alias in enumerate(("chat", "chat", "nova-lite")):
        reservation = ledger.reserve(ctx, f"u{i}", Demand(tokens=10, cost_nanos=0), now)
        ledger.settle(
            reservation,
            Demand(tokens=10, cost_nanos=2_000_000),
            UsageEntry("cli-u", day, alias, 8, 2, 2_000_000),
            now,
        )
    result = run(state_dir, "usage", "--tenant", "cli-u", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["alias"]: r for r in json.loads(result.output)["rows"]}
    assert rows["chat"]["requests"] == 2 and rows["chat"]["cost_usd"] == 0.004
    assert rows["nova-lite"]["day"] == day
    table = run(state_dir, "usage", "--tenant", "cli-u")
    assert "chat" in table.output and "total" in table.output
    assert json.loads(run(state_dir, "usage", "--tenant", "nobody", "--json").output)["rows"] == []


def test_audit_verify_show_and_replay(
    state_dir: Path, server_client: Callable[[str], Any], local_tables: dict[str, str]
) -> None:
    now = time.time()
    log = DynamoAuditLog(server_client("dynamodb"), local_tables["Audit"])
    log.write(AuditRecord("cli-req-1", "cli-audit", "key00001", now, now + 1, 200, alias="chat"))
    sqs = server_client("sqs")
    url = sqs.create_queue(QueueName="cli-audit-dlq")["QueueUrl"]
    DeadLetterQueue(sqs, url).send_audit(AuditRecord("cli-req-2", "cli-audit", "key00001", now, now + 1, 429))

    replayed = run(state_dir, "audit", "replay", "--queue-url", url, "--json")
    assert replayed.exit_code == 0, replayed.output
    assert json.loads(replayed.output)["audit_written"] == 1

    verified = run(state_dir, "audit", "verify", "--tenant", "cli-audit", "--json")
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.output)["records"] == 2

    shown = run(state_dir, "audit", "show", "cli-req-2", "--tenant", "cli-audit", "--json")
    assert json.loads(shown.output)["status"] == 429
    assert run(state_dir, "audit", "show", "cli-req-2", "--tenant", "someone-else").exit_code == 1
    assert "cli-req-1" in run(state_dir, "audit", "show", "cli-req-1").output
