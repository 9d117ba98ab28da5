"""The canary control plane on AWS: the Step Functions, DynamoDB and SageMaker calls that operating a
canary from outside its state machine makes (`llmops.workflows.canary_control` decides which).

The requests written here are built by `llmops.workflows.canary_rollback`, the same ones the state
machine's rollback states send, so this module only sends them and maps AWS's answers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from llmops.adapters.dynamodb.route_items import document_from_items
from llmops.config.tables import ROUTE_PK, TARGET_PK

__all__ = ["AwsCanaryControlPlane", "execution_history", "route_document"]

_ENDPOINT_RETRIES = 12  # an endpoint mid-update rejects weight changes for a minute or so
_ENDPOINT_RETRY_DELAY_S = 5.0


def route_document(dynamodb: Any, routes_table: str) -> dict[str, Any]:
    """Targets and routes as the gateway sees them now (the Routes table, not routes.json)."""
    items: list[dict[str, Any]] = []
    for pk in (TARGET_PK, ROUTE_PK):
        paginator = dynamodb.get_paginator("query")
        for page in paginator.paginate(
            TableName=routes_table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
            ConsistentRead=True,
        ):
            items.extend(page.get("Items", []))
    return document_from_items(items)


def execution_history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page.get("events", []))
    return events


class AwsCanaryControlPlane:
    """`llmops.workflows.canary_control.CanaryControlPlane` over boto3 clients the caller creates."""

    def __init__(self, sfn: Any, dynamodb: Any, sagemaker: Any, sleep: Callable[[float], None] = time.sleep) -> None:
        self._sfn = sfn
        self._dynamodb = dynamodb
        self._sagemaker = sagemaker
        self._sleep = sleep

    def describe_execution(self, execution_arn: str) -> tuple[str, dict[str, Any]]:
        """The execution's status and its input document."""
        described = self._sfn.describe_execution(executionArn=execution_arn)
        return str(described["status"]), json.loads(described["input"])

    def stop_execution(self, execution_arn: str, error: str, cause: str) -> None:
        self._sfn.stop_execution(executionArn=execution_arn, error=error, cause=cause)

    def execution_history(self, execution_arn: str) -> list[dict[str, Any]]:
        return execution_history(self._sfn, execution_arn)

    def send_task_success(self, token: str, output: Mapping[str, Any]) -> None:
        self._sfn.send_task_success(taskToken=token, output=json.dumps(output))

    def send_task_failure(self, token: str, error: str, cause: str) -> None:
        self._sfn.send_task_failure(taskToken=token, error=error, cause=cause)

    def get_item(self, table: str, key: Mapping[str, str]) -> dict[str, Any] | None:
        """The item at (pk, sk) read consistently, as DynamoDB returns it; None when absent."""
        item: dict[str, Any] | None = self._dynamodb.get_item(
            TableName=table,
            Key={name: {"S": value} for name, value in key.items()},
            ConsistentRead=True,
        ).get("Item")
        return item

    def update_item(self, request: Mapping[str, Any]) -> None:
        self._dynamodb.update_item(**request)

    def conditional_update_item(self, request: Mapping[str, Any]) -> bool:
        """Sends a conditional update; False when its condition no longer holds."""
        try:
            self._dynamodb.update_item(**request)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def update_endpoint_weights(self, request: Mapping[str, Any]) -> None:
        for attempt in range(_ENDPOINT_RETRIES):
            try:
                self._sagemaker.update_endpoint_weights_and_capacities(**request)
                return
            except self._sagemaker.exceptions.ClientError:
                if attempt == _ENDPOINT_RETRIES - 1:
                    raise
                self._sleep(_ENDPOINT_RETRY_DELAY_S)
