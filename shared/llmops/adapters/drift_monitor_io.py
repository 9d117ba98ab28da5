"""The drift monitor's AWS-backed ports: audit and feedback reads, dataset staging, retraining
starts. Clients are created by the caller (llmops.application.drift_monitor.build_monitor_ports)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from llmops.adapters.dynamodb.audit_items import stored_entry_from_item
from llmops.adapters.dynamodb.feedback_store import DynamoFeedbackStore
from llmops.domain.audit import AuditRecord
from llmops.domain.feedback import Feedback

__all__ = ["DynamoAuditScan", "DynamoFeedbackReader", "S3DatasetStager", "StepFunctionsRetraining"]


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
