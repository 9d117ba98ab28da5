"""What every control-plane state machine shares: its own role, its own log group (ALL events, never
execution data), X-Ray tracing, on-call notification rights, and cdk-nag acknowledgements for the
wildcard resources it is granted.

Everything is created in the caller's scope (the `Workflows` construct), so the logical ids stay
those of the resources the stack has always had.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, IConstruct

from infra.capabilities.alerting import Alerting
from infra.capabilities.python_function import retention
from infra.config import GatewayConfig
from infra.nag import acknowledge

__all__ = ["acknowledge_resources", "grant_notify", "logged_state_machine", "sagemaker_arn", "state_machine_role"]


def sagemaker_arn(scope: Construct, resource: str, name: str) -> str:
    # SageMaker lower-cases resource names in its ARNs.
    return cdk.Stack.of(scope).format_arn(service="sagemaker", resource=resource, resource_name=name.lower())


def state_machine_role(scope: Construct, config: GatewayConfig, name: str) -> iam.Role:
    return iam.Role(
        scope,
        f"{name.capitalize()}Role",
        assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
        description=f"llmops {name} state machine ({config.stage.value})",
    )


def grant_notify(role: iam.Role, alerting: Alerting) -> None:
    role.add_to_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[alerting.topic.topic_arn]))
    # The on-call topic is encrypted with its own key; publishing needs a data key from it.
    alerting.key.grant(role, "kms:Decrypt", "kms:GenerateDataKey")


def logged_state_machine(
    scope: Construct, config: GatewayConfig, name: str, definition: str, role: iam.Role, *, unscoped: str = ""
) -> sfn.StateMachine:
    removal = cdk.RemovalPolicy.RETAIN if config.is_prod else cdk.RemovalPolicy.DESTROY
    log_group = logs.LogGroup(
        scope,
        f"{name.capitalize()}Logs",
        # The /aws/vendedlogs/ prefix keeps Step Functions from growing the account's (size
        # limited) CloudWatch Logs resource policy by one statement per machine.
        log_group_name=f"/aws/vendedlogs/states/llmops-{config.stage.value}-{name}",
        retention=retention(config.retention_days),
        removal_policy=removal,
    )
    machine = sfn.StateMachine(
        scope,
        f"{name.capitalize()}StateMachine",
        state_machine_name=f"llmops-{config.stage.value}-{name}",
        definition_body=sfn.DefinitionBody.from_string(definition),
        role=role,
        tracing_enabled=True,
        logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
    )
    acknowledge(
        role,
        (
            "AwsSolutions-IAM5[Resource::*]",
            "Step Functions log delivery (logs:CreateLogDelivery and friends) and X-Ray "
            "(PutTraceSegments, PutTelemetryRecords) support no resource-level permissions; CDK adds "
            f"them for logging and tracing.{unscoped}",
        ),
    )
    return machine


def _nag_resource(scope: IConstruct, value: str) -> str:
    """How cdk-nag spells a resource in a finding id: tokens as <Ref> or <LogicalId.Attr>."""
    resolved = cdk.Stack.of(scope).resolve(value)
    if isinstance(resolved, str):
        return resolved
    separator, parts = resolved["Fn::Join"]
    return str(separator).join(_nag_part(part) for part in parts)


def _nag_part(part: Any) -> str:
    if isinstance(part, str):
        return part
    if "Ref" in part:
        return f"<{part['Ref']}>"
    if "Fn::GetAtt" in part:
        return f"<{'.'.join(part['Fn::GetAtt'])}>"
    raise ValueError(f"cannot name {part!r} in a cdk-nag finding")


def acknowledge_resources(role: iam.IRole, reasons: Mapping[str, str]) -> None:
    """Acknowledges IAM5 for each wildcard resource (given as the ARN granted) with its reason."""
    acknowledge(
        role,
        *(
            (f"AwsSolutions-IAM5[Resource::{_nag_resource(role, resource)}]", reason)
            for resource, reason in reasons.items()
        ),
    )
