"""The canary state machine: moves an alias's weights (and a release bundle's labels) in gated steps,
rolls back on a gate alarm."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.capabilities.alerting import Alerting
from infra.capabilities.model_access import sagemaker_endpoint_arn
from infra.capabilities.state_machines import grant_notify, logged_state_machine, state_machine_role
from infra.capabilities.tables import Tables
from infra.config import GatewayConfig
from llmops.workflows import CANARY, load_definition

__all__ = ["canary_state_machine"]


def canary_state_machine(
    scope: Construct, config: GatewayConfig, tables: Tables, alerting: Alerting
) -> sfn.StateMachine:
    role = state_machine_role(scope, config, "canary")
    routes_table = tables.table("Routes")
    routes_table.grant(role, "dynamodb:UpdateItem")
    # Release bundles: read a prompt label and candidate version before any traffic moves, move
    # the label at 100% and back on rollback (conditional writes on the label item only).
    prompts_table = tables.table("Prompts")
    prompts_table.grant(role, "dynamodb:GetItem", "dynamodb:UpdateItem")
    tables.key.grant(role, "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey")
    if config.sagemaker_endpoint_names:
        stack = cdk.Stack.of(scope)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="MoveConfiguredEndpointVariants",
                actions=["sagemaker:UpdateEndpointWeightsAndCapacities", "sagemaker:DescribeEndpoint"],
                resources=[sagemaker_endpoint_arn(stack, n) for n in config.sagemaker_endpoint_names],
            )
        )
    role.add_to_policy(
        iam.PolicyStatement(sid="ReadGateAlarms", actions=["cloudwatch:DescribeAlarms"], resources=["*"])
    )
    grant_notify(role, alerting)
    definition = load_definition(
        CANARY,
        {
            "RoutesTable": routes_table.table_name,
            "PromptsTable": prompts_table.table_name,
            "NotificationTopicArn": alerting.topic.topic_arn,
        },
    )
    return logged_state_machine(
        scope,
        config,
        "canary",
        definition,
        role,
        unscoped=" cloudwatch:DescribeAlarms (read-only) is granted on all alarms too: the gates are "
        "alarm names chosen per execution.",
    )
