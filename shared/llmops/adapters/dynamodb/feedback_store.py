"""Feedback on the Feedback table: the `FeedbackStore` port, plus reads for metrics and retraining.

`put` overwrites the same rater's earlier rating of the same request. It is also conditional on the
stored tenant and key, so even a caller that skipped the audit check could not overwrite another
tenant's or another key's feedback. `rates` scans with a filter: fine for the retraining
workflow's periodic reads and the CLI; a high-volume deployment would add an index per target and
prompt version.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from llmops.adapters.dynamodb.feedback_items import feedback_from_item, feedback_item, request_pk
from llmops.adapters.dynamodb.store_errors import unavailable_as
from llmops.domain.feedback import REQUEST_NOT_FOUND, Feedback, FeedbackRates, RequestNotFoundError, aggregate

__all__ = ["DynamoFeedbackStore"]


class DynamoFeedbackStore:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def put(self, feedback: Feedback) -> None:
        try:
            with unavailable_as("feedback"):
                self._client.put_item(
                    TableName=self._table,
                    Item=feedback_item(feedback),
                    ConditionExpression="attribute_not_exists(pk) OR (tenant_id = :t AND key_id = :k)",
                    ExpressionAttributeValues={":t": {"S": feedback.tenant_id}, ":k": {"S": feedback.key_id}},
                )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                # Same answer as an unknown id: another tenant's request must not be confirmed, and
                # another key's row is not this key's to replace.
                raise RequestNotFoundError(REQUEST_NOT_FOUND, param="request_id") from None
            raise

    def for_request(self, tenant_id: str, request_id: str) -> list[Feedback]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": request_pk(request_id)}},
            "ConsistentRead": True,
        }
        with unavailable_as("feedback"):
            while True:
                page = self._client.query(**kwargs)
                items.extend(page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [f for f in map(feedback_from_item, items) if f.tenant_id == tenant_id]

    def scan(
        self,
        *,
        tenant_id: str | None = None,
        target_id: str | None = None,
        prompt_version: str | None = None,
        since: float | None = None,
    ) -> Iterator[Feedback]:
        """Every stored rating matching all the given filters (None = any)."""
        filters: list[str] = []
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        for attr, value in (("tenant_id", tenant_id), ("target_id", target_id), ("prompt_version", prompt_version)):
            if value is not None:
                filters.append(f"#{attr} = :{attr}")
                names[f"#{attr}"] = attr
                values[f":{attr}"] = {"S": value}
        if since is not None:
            filters.append("#created_at >= :since")
            names["#created_at"] = "created_at"
            values[":since"] = {"N": str(Decimal(repr(since)))}
        kwargs: dict[str, Any] = {"TableName": self._table}
        if filters:
            kwargs.update(
                FilterExpression=" AND ".join(filters),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        while True:
            page = self._client.scan(**kwargs)
            yield from map(feedback_from_item, page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def rates(
        self,
        *,
        tenant_id: str | None = None,
        target_id: str | None = None,
        prompt_version: str | None = None,
        since: float | None = None,
    ) -> FeedbackRates:
        """Count, negative rate, mean normalized score and label counts for one target and/or prompt
        version (e.g. `rates(target_id="llama3-candidate", since=canary_start)`), over every stored
        rating. The retraining trigger counts `llmops.domain.feedback.trusted_votes` instead."""
        return aggregate(
            self.scan(tenant_id=tenant_id, target_id=target_id, prompt_version=prompt_version, since=since)
        )
