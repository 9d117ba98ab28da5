"""DynamoDB failing under the gateway: quotas fail closed (or open, per tenant), no accounting and no
audit record is lost, and `llmops audit replay` applies what was dead-lettered exactly once.

In-process: the real gateway handler on API Gateway events, over moto (the `aws_settings`
fixture), with the shared fake model (tests/fakes.py). DynamoDB failures are injected on the
gateway's own botocore client through its event hooks, so they surface exactly where a throttled DynamoDB would: as a
ClientError out of the client call, after botocore's retries have given up.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from typer.testing import CliRunner

from llmops.adapters import aws_clients
from llmops.adapters.dynamodb.audit_log import DynamoAuditLog
from llmops.adapters.dynamodb.route_source import FileRouteSource
from llmops.adapters.sqs.dead_letter_transformation import DeadLetterKind, parse_message
from llmops.application.wiring import GatewayRuntime
from llmops.cli import audit as audit_cli
from llmops.cli.stack import StackConnection
from llmops.config.env import Settings
from llmops.domain.keys import authorizer_context
from llmops.domain.quotas import cost_nanos
from llmops.domain.tenancy import Limits, TenantContext
from llmops.local.lambda_runtime import LocalLambdaContext
from tests.fakes import DEFAULT_USAGE, FakeProvider

pytestmark = pytest.mark.xdist_group("faults")

USAGE = DEFAULT_USAGE  # what the fake model bills per answer
LIMITS = Limits(requests_per_minute=1000, tokens_per_minute=1_000_000, tokens_per_day=10_000_000, monthly_budget_usd=50)


class DynamoOutage:
    """Makes a botocore DynamoDB client fail, as throttling that outlasted the client's retries.

    `tables` limits the outage to calls that touch those tables (None: every call).
    """

    def __init__(self, client: Any) -> None:
        self.active = False
        self.tables: set[str] | None = None
        self.failed: list[str] = []
        client.meta.events.register("before-call.dynamodb", self._maybe_fail)

    def start(self, tables: set[str] | None = None) -> None:
        self.active, self.tables = True, tables

    def stop(self) -> None:
        self.active = False

    def _touches(self, request: dict[str, Any]) -> bool:
        if self.tables is None:
            return True
        # `before-call` sees the serialized request: a JSON body naming every table it touches.
        body = request.get("body") or b""
        body = body if isinstance(body, bytes) else str(body).encode()
        return any(json.dumps(table).encode() in body for table in self.tables)

    def _maybe_fail(self, model: Any, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if not self.active or not self._touches(params):
            return None
        self.failed.append(model.name)
        error = {"Code": "ProvisionedThroughputExceededException", "Message": "Rate of requests exceeds the limit."}
        parsed = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}
        return AWSResponse("https://dynamodb.us-east-1.amazonaws.com/", 400, HTTPHeaders(), None), parsed


@pytest.fixture
def runtime(gateway: Any) -> GatewayRuntime:
    built: GatewayRuntime = gateway._runtime
    return built


@pytest.fixture
def outage(runtime: GatewayRuntime) -> DynamoOutage:
    client = runtime.ledger._client
    assert client is runtime.audit._client, "ledger and audit log share one DynamoDB client"
    return DynamoOutage(client)


def _tenant(**overrides: Any) -> TenantContext:
    return TenantContext(**{"tenant_id": "acme", "key_id": "acme1234", "limits": LIMITS, **overrides})


def _chat(gateway: Any, load_event: Any, tenant: TenantContext, request_id: str) -> tuple[int, dict[str, str], Any]:
    event = load_event("chat_completion")
    event["requestContext"]["requestId"] = request_id
    # A question of its own per request: identical deterministic requests may be answered from the
    # response cache, which charges no tokens.
    question = {"role": "user", "content": f"Question {request_id}?"}
    event["body"] = json.dumps({"model": "chat-default", "messages": [question], "max_tokens": 64})
    # API Gateway hands the authorizer context back as strings.
    event["requestContext"]["authorizer"] = {k: str(v) for k, v in authorizer_context(tenant).items()}
    result = gateway.handler(event, LocalLambdaContext("gateway"))
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name.lower()] = values[-1]
    return result["statusCode"], headers, json.loads(result["body"])


def _sqs() -> Any:
    return aws_clients.client("sqs", connect_timeout_s=1, read_timeout_s=5, max_attempts=2)


def _dead_letters(aws_settings: Settings) -> list[dict[str, Any]]:
    """Peeks at the DLQ without consuming it."""
    messages: list[dict[str, Any]] = (
        _sqs()
        .receive_message(QueueUrl=aws_settings.audit_dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        .get("Messages", [])
    )
    return messages


def _replay(aws_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """`llmops audit replay --json`, the real command, against the in-process moto."""
    connection = StackConnection(
        settings=aws_settings, region="us-east-1", local_state={"audit_dlq_url": aws_settings.audit_dlq_url}
    )
    monkeypatch.setattr(audit_cli, "connect", lambda *_args, **_kwargs: connection)
    monkeypatch.delenv(audit_cli.AUDIT_DLQ_URL_ENV, raising=False)
    result = CliRunner().invoke(audit_cli.app, ["replay", "--json"])
    assert result.exit_code == 0, result.output
    report: dict[str, int] = json.loads(result.stdout)
    return report


def _audit_log(runtime: GatewayRuntime, aws_settings: Settings) -> DynamoAuditLog:
    return DynamoAuditLog(runtime.ledger._client, aws_settings.audit_table)


def _used(runtime: GatewayRuntime, tenant: TenantContext) -> dict[str, int]:
    return {w.kind.value: w.used for w in runtime.ledger.usage(tenant, time.time())}


def test_reserve_fails_closed_and_the_audit_record_is_replayed_exactly_once(
    gateway: Any,
    runtime: GatewayRuntime,
    fake_provider: FakeProvider,
    outage: DynamoOutage,
    aws_settings: Settings,
    load_event: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant = _tenant()
    outage.start()
    status, headers, body = _chat(gateway, load_event, tenant, "req-reserve-down")
    assert status == 503
    assert body["error"]["code"] == "quota_unavailable"
    assert set(body["error"]) == {"message", "type", "code", "param"}
    assert headers["retry-after"] == "1"
    assert fake_provider.calls == [], "no model call without a reservation"
    assert "TransactWriteItems" in outage.failed

    letters = [parse_message(m["Body"]) for m in _dead_letters(aws_settings)]
    assert [(d.kind, d.request_id) for d in letters] == [(DeadLetterKind.AUDIT, "req-reserve-down")]
    outage.stop()
    # SQS delivers at least once: a second copy of the letter must not make a second record.
    _sqs().send_message(QueueUrl=aws_settings.audit_dlq_url, MessageBody=_dead_letters(aws_settings)[0]["Body"])

    report = _replay(aws_settings, monkeypatch)
    assert (report["audit_written"], report["audit_duplicates"], report["failed"]) == (1, 1, 0)
    assert _replay(aws_settings, monkeypatch)["received"] == 0

    log = _audit_log(runtime, aws_settings)
    record = log.get("acme", "req-reserve-down")
    assert record is not None
    assert (record.status, record.error_code) == (503, "quota_unavailable")
    verified = log.verify("acme", time.time())
    assert verified.ok and verified.records == 1
    assert all(used == 0 for used in _used(runtime, tenant).values())


def test_settle_failure_keeps_the_accounting_and_replays_it_once(
    gateway: Any,
    runtime: GatewayRuntime,
    fake_provider: FakeProvider,
    outage: DynamoOutage,
    aws_settings: Settings,
    load_event: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant = _tenant()
    fake_provider.on_call = outage.start  # DynamoDB goes down after the reservation, while the model runs
    status, _, body = _chat(gateway, load_event, tenant, "req-settle-down")
    assert status == 200, body
    outage.stop()

    kinds = sorted(parse_message(m["Body"]).kind.value for m in _dead_letters(aws_settings))
    assert kinds == sorted([DeadLetterKind.AUDIT.value, DeadLetterKind.SETTLEMENT.value])
    reserved = _used(runtime, tenant)
    assert reserved["tpm"] > USAGE.total_tokens, "until replay the worst case stays reserved"

    report = _replay(aws_settings, monkeypatch)
    assert (report["audit_written"], report["settlements_applied"], report["failed"]) == (1, 1, 0)
    answered_by = FileRouteSource().current().targets["bedrock-claude-haiku"]
    assert _used(runtime, tenant) == {
        "rpm": 1,
        "tpm": USAGE.total_tokens,
        "tpd": USAGE.total_tokens,
        "usd_month": cost_nanos(answered_by, USAGE.input_tokens, USAGE.output_tokens),
    }
    record = _audit_log(runtime, aws_settings).get("acme", "req-settle-down")
    assert record is not None and record.status == 200 and record.settle_pending


def test_fail_open_tenant_is_served_and_its_usage_recorded_after_replay(
    gateway: Any,
    runtime: GatewayRuntime,
    fake_provider: FakeProvider,
    outage: DynamoOutage,
    aws_settings: Settings,
    load_event: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant = _tenant(quota_fail_open=True)
    outage.start()
    status, _, body = _chat(gateway, load_event, tenant, "req-fail-open")
    assert status == 200, body
    assert len(fake_provider.calls) == 1
    outage.stop()
    assert all(used == 0 for used in _used(runtime, tenant).values())

    report = _replay(aws_settings, monkeypatch)
    assert (report["audit_written"], report["settlements_applied"], report["failed"]) == (1, 1, 0)
    used = _used(runtime, tenant)
    assert (used["rpm"], used["tpm"], used["tpd"]) == (1, USAGE.total_tokens, USAGE.total_tokens)
    assert used["usd_month"] > 0


def test_audit_table_failure_dead_letters_the_record_and_settles_normally(
    gateway: Any,
    runtime: GatewayRuntime,
    outage: DynamoOutage,
    aws_settings: Settings,
    load_event: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant = _tenant()
    outage.start(tables={aws_settings.audit_table})
    for n in range(3):
        status, _, body = _chat(gateway, load_event, tenant, f"req-audit-down-{n}")
        assert status == 200, body
    outage.stop()
    used = _used(runtime, tenant)
    assert (used["rpm"], used["tpm"]) == (3, 3 * USAGE.total_tokens), "settled, nothing left reserved"

    letters = [parse_message(m["Body"]) for m in _dead_letters(aws_settings)]
    assert {d.kind for d in letters} == {DeadLetterKind.AUDIT}
    report = _replay(aws_settings, monkeypatch)
    assert (report["audit_written"], report["failed"]) == (3, 0)
    verified = _audit_log(runtime, aws_settings).verify("acme", time.time())
    assert verified.ok and verified.records == 3


def _call(gateway: Any, load_event: Any, name: str, tenant: TenantContext, body: Any = None) -> tuple[int, Any, Any]:
    event = load_event(name)
    event["requestContext"]["requestId"] = f"req-{name}"
    event["requestContext"]["authorizer"] = {k: str(v) for k, v in authorizer_context(tenant).items()}
    if body is not None:
        event["body"] = json.dumps(body)
    result = gateway.handler(event, LocalLambdaContext("gateway"))
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    for name_, values in (result.get("multiValueHeaders") or {}).items():
        headers[name_.lower()] = values[-1]
    return result["statusCode"], headers, json.loads(result["body"])


@pytest.mark.parametrize(
    ("route", "body", "table", "code"),
    [
        ("usage", None, "quotas_table", "quota_unavailable"),
        ("feedback", {"request_id": "req-rated", "score": "up"}, "audit_table", "audit_unavailable"),
        ("feedback", {"request_id": "req-rated", "score": "up"}, "feedback_table", "feedback_unavailable"),
    ],
)
def test_a_store_outage_is_a_503_naming_the_store(
    gateway: Any,
    outage: DynamoOutage,
    aws_settings: Settings,
    load_event: Any,
    route: str,
    body: Any,
    table: str,
    code: str,
) -> None:
    tenant = _tenant()
    status, _, _ = _chat(gateway, load_event, tenant, "req-rated")
    assert status == 200
    outage.start(tables={getattr(aws_settings, table)})
    status, headers, got = _call(gateway, load_event, route, tenant, body)
    assert status == 503, got
    assert got["error"]["code"] == code
    assert set(got["error"]) == {"message", "type", "code", "param"}
    assert headers["retry-after"] == "1"
    assert headers["x-request-id"] == f"req-{route}"
    outage.stop()
    status, _, got = _call(gateway, load_event, route, tenant, body)
    assert status == 200, got
