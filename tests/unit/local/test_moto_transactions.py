"""The local stack's moto patch (item-level rollback, installed by `MotoService` and the handler-overhead
benchmark) keeps TransactWriteItems all-or-nothing (in-process moto, no network)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from llmops.local.moto_transactions import install


@pytest.fixture
def table() -> Iterator[Any]:
    undo = install()
    try:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            client.create_table(
                TableName="t",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            yield client
    finally:
        undo()


def _get(client: Any, pk: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = client.get_item(TableName="t", Key={"pk": {"S": pk}}).get("Item")
    return item


def test_failed_transaction_leaves_every_item_as_it_was(table: Any) -> None:
    table.put_item(TableName="t", Item={"pk": {"S": "counter"}, "n": {"N": "1"}})
    table.put_item(TableName="t", Item={"pk": {"S": "taken"}})
    with pytest.raises(ClientError) as caught:
        table.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": "t",
                        "Key": {"pk": {"S": "counter"}},
                        "UpdateExpression": "SET n = n + :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "new"}}}},
                {
                    "Put": {
                        "TableName": "t",
                        "Item": {"pk": {"S": "taken"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    assert caught.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _get(table, "counter") == {"pk": {"S": "counter"}, "n": {"N": "1"}}
    assert _get(table, "new") is None


def test_successful_transaction_applies_every_item(table: Any) -> None:
    table.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}}}},
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "b"}}, "ConditionExpression": "attribute_not_exists(pk)"}},
        ]
    )
    assert _get(table, "a") is not None
    assert _get(table, "b") is not None


def test_install_is_idempotent_and_undoable() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    # The local stack installs the patch whenever it starts moto, possibly earlier in this process:
    # start from stock moto.
    install()()
    original = DynamoDBBackend.transact_write_items
    undo = install()
    assert install() is undo
    assert DynamoDBBackend.transact_write_items is not original
    undo()
    assert DynamoDBBackend.transact_write_items is original
