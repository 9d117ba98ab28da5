"""The drift monitor's ports (what the job reads and writes) and their AWS implementations: audit
and feedback reads, dataset staging, retraining starts.

The job (`llmops.application.drift_monitor`) sees only the protocols and `MonitorPorts`; the tests
and the local stack build `MonitorPorts` from fakes or moto-backed clients. Clients are created by
the caller (`llmops.application.drift_monitor_wiring.build_monitor_ports`), never at import time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from llmops.adapters.dynamodb.audit_items import stored_entry_from_item
from llmops.adapters.dynamodb.feedback_store import DynamoFeedbackStore
from llmops.domain.audit import AuditRecord
from llmops.domain.drift import DriftReport
from llmops.domain.feedback import Feedback

__all__ = [
    "AuditReader",
    "DatasetStager",
    "DynamoAuditScan",
    "DynamoFeedbackReader",
    "FeedbackReader",
    "MonitorPorts",
    "RetrainingStarter",
    "S3DatasetStager",
    "StepFunctionsRetraining",
]


class AuditReader(Protocol):
    def records_since(self, since: float) -> Iterable[AuditRecord]: ...


class FeedbackReader(Protocol):
    def feedback_since(self, since: float) -> Iterable[Feedback]: ...


class DatasetStager(Protocol):
    def put(self, key: str, body: bytes) -> None: ...


class RetrainingStarter(Protocol):
    def start(self, name: str, document: Mapping[str, Any]) -> bool:
        """Starts the execution; False when one with this name already exists."""
        ...


@dataclass(frozen=True, slots=True)
class MonitorPorts:
    audit: AuditReader
    feedback: FeedbackReader
    datasets: DatasetStager
    retraining: RetrainingStarter | None  # None: no retraining state machine configured
    emit: Callable[[str, DriftReport], None]


class DynamoAuditScan:
    """Audit records from the chain entries of the Audit table (heads and sentinels skipped)."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def records_since(self, since: float) -> Iterator[AuditRecord]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "begins_with(sk, :entry)",
            "ExpressionAttributeValues": {":entry": {"S": "r#"}},
        }
        while True:
            page = self._client.scan(**request)
            for item in page.get("Items", []):
                record = _audit_record(item)
                if record is not None and record.started_at >= since:
                    yield record
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _audit_record(item: Mapping[str, Any]) -> AuditRecord | None:
    entry = stored_entry_from_item(item)
    try:
        return AuditRecord.from_dict(json.loads(entry.body)["record"])
    except (ValueError, KeyError, TypeError):
        return None  # not a chain entry this version can read; the verifier reports those


class DynamoFeedbackReader:
    def __init__(self, client: Any, table: str) -> None:
        self._store = DynamoFeedbackStore(client, table)

    def feedback_since(self, since: float) -> Iterator[Feedback]:
        return self._store.scan(since=since)


class S3DatasetStager:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def put(self, key: str, body: bytes) -> None:
        self._client.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType="application/jsonl")


class StepFunctionsRetraining:
    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._client = client
        self._arn = state_machine_arn

    def start(self, name: str, document: Mapping[str, Any]) -> bool:
        try:
            self._client.start_execution(stateMachineArn=self._arn, name=name, input=json.dumps(document))
        except self._client.exceptions.ExecutionAlreadyExists:
            return False
        return True
