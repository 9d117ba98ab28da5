"""The hash-chained audit trail on DynamoDB: the `AuditLog` port.

A write chains onto its shard's head and commits entry + head move + request sentinel in one
TransactWriteItems call. The head is the one this writer (a Lambda container) last wrote or read
for that shard; only when it has none does it read the head first (one strongly consistent
GetItem). The head's condition makes a stale head harmless: if another writer moved it, the
transaction fails, the write re-reads the head and chains again (bounded). So a container's
steady state is one write per record and no read, and the chain is exactly as safe as with a read
before every write. A failed write is retried, then handed to `dead_letter` (the SQS queue drained
by `llmops audit replay`), whose replay calls `write_once`: the sentinel turns a second copy into
`DUPLICATE`.

A quota settle can ride in the same transaction (`write_once(record, settle=...)`, used by
`request_books.DynamoRequestBooks`): it commits with the record or not at all, so a retry after a
stale head re-sends both without counting the settle twice.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from llmops.adapters.dynamodb.audit_items import (
    ENTRY_INDEX,
    HEAD_INDEX,
    HEAD_SK,
    SENTINEL_INDEX,
    entry_pk,
    entry_sk,
    entry_transaction,
    head_from_item,
    sentinel_key,
    stored_entry_from_item,
)
from llmops.adapters.dynamodb.quota_items import SettleTransaction, cancellation_codes
from llmops.adapters.dynamodb.store_errors import unavailable_as
from llmops.domain.audit import (
    DEFAULT_SHARDS,
    AuditRecord,
    AuditWriteOutcome,
    ShardHead,
    StoredEntry,
    VerifyReport,
    chain_entry,
    shard_for,
    verify_shard,
)

__all__ = ["BY_REQUEST_INDEX", "AuditWriteFailedError", "DynamoAuditLog", "SettleAlreadyAppliedError"]

BY_REQUEST_INDEX = "by-request"

_log = logging.getLogger(__name__)

_MAX_BACKOFF_S = 0.2
# Cancellation reasons that say only "another transaction touched one of these items": retry.
_CONTENTION = frozenset({"None", "TransactionConflict"})


class AuditWriteFailedError(Exception):
    pass


class SettleAlreadyAppliedError(Exception):
    """The settle riding with the record had been applied before (its sentinel exists): nothing was written."""


class DynamoAuditLog:
    def __init__(
        self,
        client: Any,
        table: str,
        *,
        shards: int = DEFAULT_SHARDS,
        chain_attempts: int = 8,
        dead_letter: Callable[[AuditRecord], None] | None = None,
        backoff_s: float = 0.005,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if shards < 1:
            raise ValueError("shards must be at least 1")
        self._client = client
        self._table = table
        self._shards = shards
        self._attempts = max(1, chain_attempts)
        self._dead_letter = dead_letter
        self._backoff_s = backoff_s
        self._sleep = sleep
        self._lock = threading.Lock()
        self._write_calls = 0
        self._head_reads = 0
        # Per shard partition: the head as this process last saw it (written or read). Never None
        # for "empty": an unknown shard is read, since another container may have started it.
        self._heads: dict[str, ShardHead] = {}

    @property
    def write_calls(self) -> int:
        return self._write_calls

    @property
    def head_reads(self) -> int:
        return self._head_reads

    def _read_head(self, pk: str) -> ShardHead | None:
        with self._lock:
            self._head_reads += 1
        head_item = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": pk}, "sk": {"S": HEAD_SK}},
            ConsistentRead=True,
        ).get("Item")
        return head_from_item(head_item)

    def _remember(self, pk: str, head: ShardHead | None) -> None:
        with self._lock:
            if head is None:
                self._heads.pop(pk, None)
            else:
                self._heads[pk] = head

    def write(self, record: AuditRecord) -> AuditWriteOutcome:
        """Writes the record or, failing that, dead-letters it; raises only if both fail."""
        try:
            return self.write_once(record)
        except (ClientError, BotoCoreError, AuditWriteFailedError) as exc:
            if self._dead_letter is None:
                raise
            _log.error(
                "audit write failed; dead-lettering it",
                extra={
                    "tenant": record.tenant_id,
                    "request_id": record.request_id,
                    "error": type(exc).__name__,
                },
            )
            self._dead_letter(record)
            return AuditWriteOutcome.DEAD_LETTERED

    def write_once(self, record: AuditRecord, *, settle: SettleTransaction | None = None) -> AuditWriteOutcome:
        """WRITTEN, or DUPLICATE if this request id is already in the trail; raises on failure.

        `settle`'s items go in the same transaction, after the chain's own: WRITTEN means both were
        applied, DUPLICATE and every exception that neither was; `SettleAlreadyAppliedError` says
        the settle's sentinel already existed.
        """
        shard = shard_for(record.request_id, self._shards)
        pk = entry_pk(record.tenant_id, shard)
        with self._lock:
            known = self._heads.get(pk)
        for attempt in range(self._attempts):
            from_cache = known is not None
            head = known if known is not None else self._read_head(pk)
            entry = chain_entry(record, shard, head)
            items = entry_transaction(self._table, entry, head)
            settle_sentinel = None if settle is None else len(items) + settle.sentinel_index
            if settle is not None:
                items += settle.items
            with self._lock:
                self._write_calls += 1
            try:
                self._client.transact_write_items(TransactItems=items)
                self._remember(pk, ShardHead(seq=entry.seq, hash=entry.hash, expires_at=record.expires_at))
                return AuditWriteOutcome.WRITTEN
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                codes = cancellation_codes(exc.response)

                def failed(index: int | None, codes: list[str] = codes) -> bool:
                    return index is not None and len(codes) > index and codes[index] == "ConditionalCheckFailed"

                if failed(SENTINEL_INDEX):
                    return AuditWriteOutcome.DUPLICATE
                if failed(settle_sentinel):
                    raise SettleAlreadyAppliedError(record.request_id) from None
                lost_race = any(
                    len(codes) > i and codes[i] in ("ConditionalCheckFailed", "TransactionConflict")
                    for i in (ENTRY_INDEX, HEAD_INDEX)
                )
                # Only the settle's items (the quota windows) were contended: the head still holds.
                contended = bool(codes) and set(codes) <= _CONTENTION
                if not (lost_race or contended):
                    raise
                if lost_race:
                    self._remember(pk, None)
                    known = None  # a retry reads: the head moved since it was seen
                    if from_cache:
                        continue  # the remembered head was stale (another container wrote): read it, no backoff
                else:
                    known = head
            # Full jitter, capped: writers that lost the race spread out instead of colliding again.
            self._sleep(random.uniform(0, min(_MAX_BACKOFF_S, self._backoff_s * 2**attempt)))
        raise AuditWriteFailedError(f"shard {shard} head kept moving after {self._attempts} attempts")

    def get(self, tenant_id: str, request_id: str) -> AuditRecord | None:
        sentinel = self._client.get_item(
            TableName=self._table, Key=sentinel_key(tenant_id, request_id), ConsistentRead=True
        ).get("Item")
        if sentinel is None:
            return None
        shard, seq = int(sentinel["shard"]["N"]), int(sentinel["seq"]["N"])
        item = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": entry_pk(tenant_id, shard)}, "sk": {"S": entry_sk(seq)}},
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return None
        return _record(stored_entry_from_item(item), tenant_id)

    def find_any_tenant(self, request_id: str) -> list[AuditRecord]:
        """Lookup across tenants via the `by-request` index (the admin CLI, and feedback, which
        checks the tenant itself)."""
        with unavailable_as("audit"):
            page = self._client.query(
                TableName=self._table,
                IndexName=BY_REQUEST_INDEX,
                KeyConditionExpression="request_id = :r",
                ExpressionAttributeValues={":r": {"S": request_id}},
            )
        records = []
        for item in page.get("Items", []):
            entry = stored_entry_from_item(item)
            record = _record(entry, entry.tenant_id)
            if record is not None:
                records.append(record)
        return records

    def verify(self, tenant_id: str, now: float) -> VerifyReport:
        report = VerifyReport(tenant_id=tenant_id)
        for shard in range(self._shards):
            head_item: dict[str, Any] | None = None
            entries: list[StoredEntry] = []
            request: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": entry_pk(tenant_id, shard)}},
                "ConsistentRead": True,
            }
            while True:
                page = self._client.query(**request)
                for item in page.get("Items", []):
                    if item["sk"]["S"] == HEAD_SK:
                        head_item = item
                    else:
                        entries.append(stored_entry_from_item(item))
                if "LastEvaluatedKey" not in page:
                    break
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            problems, expired = verify_shard(tenant_id, shard, entries, head_from_item(head_item), now)
            report.shards += 1
            report.records += len(entries)
            report.expired_gaps += expired
            report.problems.extend(problems)
        return report


def _record(entry: StoredEntry, tenant_id: str) -> AuditRecord | None:
    try:
        body = json.loads(entry.body)
        record = AuditRecord.from_dict(body["record"])
    except (ValueError, KeyError, TypeError):
        return None
    return record if record.tenant_id == tenant_id else None
