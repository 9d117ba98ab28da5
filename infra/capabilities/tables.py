"""Every DynamoDB table in `llmops.config.tables.TABLES`, encrypted with one customer-managed key.

Table shapes come from the shared definitions (the local stack builds its moto tables from the
same ones), so this construct adds only the deployment concerns: billing, encryption, recovery,
protection and least-privilege grants that also inject the table-name environment variables.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import cast

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct, IConstruct

from infra.config import GatewayConfig
from infra.nag import acknowledge
from llmops.config.tables import TABLES, AttributeType, KeyAttribute, TableSpec

__all__ = ["TableAccess", "Tables"]


class TableAccess(StrEnum):
    READ = "read"
    WRITE = "write"
    READ_WRITE = "read_write"


def _attribute(key: KeyAttribute) -> dynamodb.Attribute:
    kind = dynamodb.AttributeType.NUMBER if key.type is AttributeType.NUMBER else dynamodb.AttributeType.STRING
    return dynamodb.Attribute(name=key.name, type=kind)


class Tables(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: GatewayConfig) -> None:
        super().__init__(scope, construct_id)
        removal = cdk.RemovalPolicy.RETAIN if config.is_prod else cdk.RemovalPolicy.DESTROY
        self.key = kms.Key(
            self,
            "Key",
            description=f"llmops-gateway {config.stage.value}: DynamoDB tables",
            enable_key_rotation=True,
            removal_policy=removal,
            pending_window=cdk.Duration.days(30 if config.is_prod else 7),
        )
        self._specs: dict[str, TableSpec] = {spec.logical_name: spec for spec in TABLES}
        self._tables: dict[str, dynamodb.Table] = {
            spec.logical_name: self._table(spec, config, removal) for spec in TABLES
        }

    def _table(self, spec: TableSpec, config: GatewayConfig, removal: cdk.RemovalPolicy) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            spec.logical_name,
            partition_key=_attribute(spec.partition_key),
            sort_key=_attribute(spec.sort_key) if spec.sort_key else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=spec.ttl_attribute,
            deletion_protection=config.is_prod,
            removal_policy=removal,
        )
        for index in spec.indexes:
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_attribute(index.partition_key),
                sort_key=_attribute(index.sort_key) if index.sort_key else None,
                projection_type=dynamodb.ProjectionType.ALL,
            )
        return table

    @property
    def tables(self) -> Mapping[str, dynamodb.ITable]:
        return dict(self._tables)

    def table(self, logical_name: str) -> dynamodb.Table:
        try:
            return self._tables[logical_name]
        except KeyError:
            raise KeyError(f"no table {logical_name!r}; known: {sorted(self._tables)}") from None

    def environment(self) -> dict[str, str]:
        """Every table's env var -> physical name, for functions that only need to know names."""
        return {self._specs[name].env_var: table.table_name for name, table in self._tables.items()}

    def grant(self, grantee: lambda_.Function | iam.Role, access: Mapping[str, TableAccess]) -> None:
        """Grant exactly `access`; a function is also told each table's name through its env var."""
        policy_holder: IConstruct = grantee.role if isinstance(grantee, lambda_.Function) and grantee.role else grantee
        for logical_name, level in access.items():
            table = self.table(logical_name)
            if level is TableAccess.READ:
                table.grant_read_data(grantee)
            elif level is TableAccess.WRITE:
                table.grant_write_data(grantee)
            else:
                table.grant_read_write_data(grantee)
            if isinstance(grantee, lambda_.Function):
                grantee.add_environment(self._specs[logical_name].env_var, table.table_name)
            if self._specs[logical_name].indexes and level is not TableAccess.WRITE:
                logical_id = cdk.Stack.of(self).resolve(cast(dynamodb.CfnTable, table.node.default_child).logical_id)
                acknowledge(
                    policy_holder,
                    (
                        f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/index/*]",
                        f"Queries on the {logical_name} table's own global secondary indexes only.",
                    ),
                )
        acknowledge(
            policy_holder,
            *(
                (
                    f"AwsSolutions-IAM5[Action::{action}]",
                    "CDK's DynamoDB grant for the tables' customer-managed key; scoped to that one key.",
                )
                for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*")
            ),
        )
