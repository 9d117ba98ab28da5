"""Seeds the Routes table from routes.json at deploy time.

Item layout is owned by `llmops.adapters.dynamodb.route_items` (the same items the local stack and
the runtime read), so this construct only ships them with DynamoDB BatchWriteItem.

Semantics worth knowing:
- The writes run when the stack is created and whenever the seeded items change, keyed by a
  digest of the items. An unchanged routes.json does not touch the table, so a canary's weight
  changes survive unrelated deploys; a changed routes.json overwrites every seeded item.
- Items removed from routes.json are not deleted from the table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra.capabilities.python_function import retention
from infra.capabilities.tables import TableAccess, Tables
from infra.config import GatewayConfig
from llmops.adapters.dynamodb.route_items import table_items

__all__ = ["BATCH_WRITE_LIMIT", "RouteSeed", "batches", "items_digest"]

BATCH_WRITE_LIMIT = 25  # DynamoDB BatchWriteItem accepts at most 25 put requests


def items_digest(items: Sequence[Mapping[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(list(items), sort_keys=True).encode()).hexdigest()[:16]


def batches(items: Sequence[Mapping[str, Any]], size: int = BATCH_WRITE_LIMIT) -> Iterator[list[Mapping[str, Any]]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


class RouteSeed(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tables: Tables,
        document: Mapping[str, Any],
        config: GatewayConfig,
    ) -> None:
        super().__init__(scope, construct_id)
        self.items = table_items(document)
        digest = items_digest(self.items)

        log_group = logs.LogGroup(
            self,
            "Logs",
            retention=retention(config.retention_days),
            removal_policy=cdk.RemovalPolicy.RETAIN if config.is_prod else cdk.RemovalPolicy.DESTROY,
        )
        # Our own role instead of the default one, which carries an AWS managed policy.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"llmops route seeding ({config.stage.value})",
        )
        log_group.grant_write(self.role)
        # Through Tables so the role also gets the table's customer-managed key.
        tables.grant(self.role, {"Routes": TableAccess.WRITE})
        table = tables.table("Routes")

        self.writes: list[cr.AwsCustomResource] = []
        for index, batch in enumerate(batches(self.items)):
            call = cr.AwsSdkCall(
                service="DynamoDB",
                action="batchWriteItem",
                parameters={"RequestItems": {table.table_name: [{"PutRequest": {"Item": i}} for i in batch]}},
                physical_resource_id=cr.PhysicalResourceId.of(f"routes-{digest}-{index}"),
            )
            self.writes.append(
                cr.AwsCustomResource(
                    self,
                    f"Batch{index}",
                    on_create=call,
                    on_update=call,
                    role=self.role,
                    log_group=log_group,
                    install_latest_aws_sdk=False,
                    timeout=cdk.Duration.minutes(2),
                    policy=cr.AwsCustomResourcePolicy.from_statements(
                        [iam.PolicyStatement(actions=["dynamodb:BatchWriteItem"], resources=[table.table_arn])]
                    ),
                )
            )
