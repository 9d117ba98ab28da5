"""Creates the tables from `llmops.config.tables` - the local stack and the tests use this; CDK
builds the same definitions in infra/. On-demand billing, every GSI projecting all attributes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from llmops.config.tables import TABLES, TableSpec

__all__ = ["create_table_request", "create_tables"]


def create_table_request(spec: TableSpec, physical_name: str) -> dict[str, Any]:
    schema = [{"AttributeName": spec.partition_key.name, "KeyType": "HASH"}]
    if spec.sort_key is not None:
        schema.append({"AttributeName": spec.sort_key.name, "KeyType": "RANGE"})
    request: dict[str, Any] = {
        "TableName": physical_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": a.name, "AttributeType": a.type.value} for a in spec.attribute_definitions()
        ],
        "KeySchema": schema,
    }
    if spec.indexes:
        indexes = []
        for index in spec.indexes:
            index_schema = [{"AttributeName": index.partition_key.name, "KeyType": "HASH"}]
            if index.sort_key is not None:
                index_schema.append({"AttributeName": index.sort_key.name, "KeyType": "RANGE"})
            indexes.append(
                {"IndexName": index.name, "KeySchema": index_schema, "Projection": {"ProjectionType": "ALL"}}
            )
        request["GlobalSecondaryIndexes"] = indexes
    return request


def create_tables(client: Any, names: Mapping[str, str], specs: Iterable[TableSpec] = TABLES) -> dict[str, str]:
    """Creates each table named in `names` (logical name -> physical name) that does not exist yet,
    waits for it and turns on its TTL. Idempotent. Returns the names it created."""
    existing: set[str] = set()
    for page in client.get_paginator("list_tables").paginate():
        existing.update(page.get("TableNames", []))
    created: dict[str, str] = {}
    for spec in specs:
        physical = names.get(spec.logical_name)
        if physical is None or physical in existing:
            continue
        client.create_table(**create_table_request(spec, physical))
        client.get_waiter("table_exists").wait(TableName=physical, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        if spec.ttl_attribute:
            client.update_time_to_live(
                TableName=physical,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
            )
        created[spec.logical_name] = physical
    return created
