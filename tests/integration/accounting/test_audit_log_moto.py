"""The hash-chained audit trail against moto: chaining, verify, tamper detection, isolation, DLQ."""

from __future__ import annotations

import hashlib
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from llmops.adapters.dynamodb.audit_items import entry_pk, entry_sk
from llmops.adapters.dynamodb.audit_log import DynamoAuditLog
from llmops.adapters.sqs.dead_letter_queue import DeadLetterQueue
from llmops.domain.audit import AuditRecord, AuditWriteOutcome, GuardVerdict, ProblemKind, shard_for

NOW = 1_800_000_000.0
SHARDS = 2


def record(request_id: str, tenant: str = "acme") -> AuditRecord:
    return AuditRecord(
        request_id=request_id,
        tenant_id=tenant,
        key_prefix="key00001",
        started_at=NOW,
        finished_at=NOW + 0.3,
        status=200,
        alias="chat",
        target="bedrock:m",
        guard=(GuardVerdict("input", "redact", {"EMAIL": 1}),),
        input_tokens=12,
        output_tokens=3,
        cost_usd=0.0001,
        stage_ms={"provider": 250.0},
    )


@pytest.fixture
def log(dynamodb: Any, names: dict[str, str]) -> DynamoAuditLog:
    return DynamoAuditLog(dynamodb, names["Audit"], shards=SHARDS, sleep=lambda _s: None)


def fill(log: DynamoAuditLog, n: int, tenant: str = "acme") -> list[str]:
    ids = [f"req-{tenant}-{i}" for i in range(n)]
    for rid in ids:
        assert log.write(record(rid, tenant)) is AuditWriteOutcome.WRITTEN
    return ids


def shard_items(dynamodb: Any, names: dict[str, str], shard: int) -> list[dict[str, Any]]:
    items = dynamodb.query(
        TableName=names["Audit"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": entry_pk("acme", shard)}},
    )["Items"]
    return [i for i in items if i["sk"]["S"] != "head"]


def busiest_shard(ids: list[str]) -> int:
    counts = [sum(1 for r in ids if shard_for(r, SHARDS) == s) for s in range(SHARDS)]
    return counts.index(max(counts))


def test_records_chain_and_verify(log: DynamoAuditLog) -> None:
    fill(log, 12)
    report = log.verify("acme", NOW)
    assert report.ok and report.records == 12 and report.shards == SHARDS


def test_a_request_is_recorded_once(log: DynamoAuditLog) -> None:
    assert log.write(record("req-1")) is AuditWriteOutcome.WRITTEN
    assert log.write(record("req-1")) is AuditWriteOutcome.DUPLICATE
    assert log.verify("acme", NOW).records == 1


def test_reads_stay_inside_the_callers_tenant(log: DynamoAuditLog) -> None:
    fill(log, 2, "acme")
    fill(log, 2, "globex")
    assert log.get("acme", "req-acme-0") == record("req-acme-0")
    assert log.get("globex", "req-acme-0") is None
    assert log.verify("globex", NOW).records == 2
    assert [r.tenant_id for r in log.find_any_tenant("req-globex-1")] == ["globex"]


def test_an_altered_record_is_detected(log: DynamoAuditLog, dynamodb: Any, names: dict[str, str]) -> None:
    ids = fill(log, 8)
    shard = busiest_shard(ids)
    victim = shard_items(dynamodb, names, shard)[0]
    body = victim["body"]["S"].replace('"cost_usd":0.0001', '"cost_usd":0.0')
    dynamodb.put_item(TableName=names["Audit"], Item={**victim, "body": {"S": body}})
    report = log.verify("acme", NOW)
    assert [p.kind for p in report.problems] == [ProblemKind.ALTERED]


def test_an_altered_record_with_a_recomputed_hash_is_detected(
    log: DynamoAuditLog, dynamodb: Any, names: dict[str, str]
) -> None:
    ids = fill(log, 8)
    shard = busiest_shard(ids)
    victim = shard_items(dynamodb, names, shard)[0]
    body = victim["body"]["S"].replace('"status":200', '"status":403')
    forged = {**victim, "body": {"S": body}, "hash": {"S": hashlib.sha256(body.encode()).hexdigest()}}
    dynamodb.put_item(TableName=names["Audit"], Item=forged)
    assert [p.kind for p in log.verify("acme", NOW).problems] == [ProblemKind.ALTERED]


def test_a_deleted_middle_or_tail_record_is_detected(log: DynamoAuditLog, dynamodb: Any, names: dict[str, str]) -> None:
    ids = fill(log, 10)
    shard = busiest_shard(ids)
    entries = shard_items(dynamodb, names, shard)
    assert len(entries) >= 3
    for victim in (entries[1], entries[-1]):
        dynamodb.delete_item(TableName=names["Audit"], Key={"pk": victim["pk"], "sk": victim["sk"]})
    kinds = [p.kind for p in log.verify("acme", NOW).problems]
    assert kinds == [ProblemKind.DELETED, ProblemKind.DELETED]


def test_an_inserted_record_is_detected(log: DynamoAuditLog, dynamodb: Any, names: dict[str, str]) -> None:
    ids = fill(log, 6)
    shard = busiest_shard(ids)
    last = shard_items(dynamodb, names, shard)[-1]
    seq = int(last["sk"]["S"].removeprefix("r#")) + 1
    dynamodb.put_item(
        TableName=names["Audit"],
        Item={**last, "sk": {"S": entry_sk(seq)}, "request_id": {"S": "forged"}},
    )
    assert ProblemKind.INSERTED in [p.kind for p in log.verify("acme", NOW).problems]


def test_a_failed_write_goes_to_the_dlq_and_replays_exactly_once(
    dynamodb: Any, names: dict[str, str], sqs: Any, dlq_url: str
) -> None:
    dlq = DeadLetterQueue(sqs, dlq_url)
    log = DynamoAuditLog(dynamodb, names["Audit"], shards=SHARDS, dead_letter=dlq.send_audit, sleep=lambda _s: None)
    fill(log, 3)
    failure = ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "TransactWriteItems")
    with mock.patch.object(dynamodb, "transact_write_items", side_effect=failure):
        assert log.write(record("req-lost")) is AuditWriteOutcome.DEAD_LETTERED
    assert log.get("acme", "req-lost") is None
    dlq.send_audit(record("req-lost"))  # a duplicate delivery

    report = dlq.drain(log.write_once, lambda _p: True)
    assert (report.received, report.audit_written, report.audit_duplicates, report.failed) == (2, 1, 1, 0)
    assert log.get("acme", "req-lost") == record("req-lost")
    assert dlq.drain(log.write_once, lambda _p: True).received == 0
    verified = log.verify("acme", NOW)
    assert verified.ok and verified.records == 4


def test_without_a_dlq_a_failed_write_raises(log: DynamoAuditLog, dynamodb: Any) -> None:
    failure = ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "TransactWriteItems")
    with mock.patch.object(dynamodb, "transact_write_items", side_effect=failure), pytest.raises(ClientError):
        log.write(record("req-x"))


def test_a_container_reads_a_shard_head_once_then_chains_on_what_it_wrote(
    log: DynamoAuditLog, dynamodb: Any, names: dict[str, str]
) -> None:
    fill(log, 12)
    assert log.head_reads <= SHARDS  # one read per shard this container had not seen
    assert log.write_calls == 12
    assert log.verify("acme", NOW).ok


def test_a_head_moved_by_another_container_is_detected_and_the_chain_stays_unbroken(
    log: DynamoAuditLog, dynamodb: Any, names: dict[str, str]
) -> None:
    other = DynamoAuditLog(dynamodb, names["Audit"], shards=SHARDS, sleep=lambda _s: None)
    ids = [f"req-acme-{i}" for i in range(20)]
    for i, rid in enumerate(ids):
        # Alternate containers: each one's remembered head is stale whenever the other wrote last.
        writer = log if i % 3 else other
        assert writer.write(record(rid)) is AuditWriteOutcome.WRITTEN
    report = log.verify("acme", NOW)
    assert report.ok and report.records == len(ids)
    assert log.get("acme", ids[-1]) is not None
