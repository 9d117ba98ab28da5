from llmops.adapters.dynamodb.provisioning import create_table_request
from llmops.config.tables import table


def test_audit_table_request_has_keys_and_the_by_request_index() -> None:
    request = create_table_request(table("Audit"), "llmops-test-Audit")
    assert request["TableName"] == "llmops-test-Audit"
    assert request["BillingMode"] == "PAY_PER_REQUEST"
    assert request["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    (index,) = request["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "by-request"
    assert {"AttributeName": "request_id", "AttributeType": "S"} in request["AttributeDefinitions"]


def test_quotas_table_request_is_hash_only_with_the_sparse_reservations_index() -> None:
    request = create_table_request(table("Quotas"), "q")
    assert request["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    (index,) = request["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "by-release"
    assert index["KeySchema"] == [
        {"AttributeName": "sweep_shard", "KeyType": "HASH"},
        {"AttributeName": "release_at", "KeyType": "RANGE"},
    ]
