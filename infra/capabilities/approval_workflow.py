"""The approval state machine and its EventBridge rule: an approved model package in the candidates
group starts its canary (see the `Workflows` docstring for the package metadata it needs)."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.capabilities.alarms import CANARY_GATES, Alarms
from infra.capabilities.alerting import Alerting
from infra.capabilities.state_machines import (
    acknowledge_resources,
    grant_notify,
    logged_state_machine,
    sagemaker_arn,
    state_machine_role,
)
from infra.config import ConfigError, GatewayConfig
from llmops.workflows import APPROVAL, load_definition
from llmops.workflows.canary_input import CanaryInput, TargetRef

__all__ = ["approval_state_machine", "gate_alarm_prefix"]


def gate_alarm_prefix(config: GatewayConfig, alarms: Alarms) -> str:
    """`llmops-<stage>-`: the canary gates are `<prefix><gate>-<target>` (see approval.asl.json)."""
    probe = "target"
    prefix = f"llmops-{config.stage.value}-"
    expected = [f"{prefix}{gate.value}-{probe}" for gate in CANARY_GATES]
    if alarms.gate_names(probe) != expected:
        raise ConfigError("canary gate alarm names no longer match the approval workflow's gate names")
    return prefix


def approval_state_machine(
    scope: Construct,
    config: GatewayConfig,
    alerting: Alerting,
    alarms: Alarms,
    canary: sfn.StateMachine,
    *,
    model_package_group_name: str,
    canary_bake_seconds: int,
) -> tuple[sfn.StateMachine, events.Rule]:
    """The machine and the rule that starts it."""
    role = state_machine_role(scope, config, "approval")
    group = model_package_group_name
    role.add_to_policy(
        iam.PolicyStatement(
            sid="ReadApprovedCandidates",
            actions=["sagemaker:DescribeModelPackage"],
            resources=[packages := sagemaker_arn(scope, "model-package", f"{group}/*")],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(sid="StartCanary", actions=["states:StartExecution"], resources=[canary.state_machine_arn])
    )
    grant_notify(role, alerting)
    # Gate poll and bake as CanaryInput computes them, so the event-built input matches the CLI's.
    defaults = CanaryInput(
        alias="alias",
        baseline=TargetRef(target="baseline"),
        candidate=TargetRef(target="candidate"),
        bake_seconds=canary_bake_seconds,
    ).to_execution_input()
    definition = load_definition(
        APPROVAL,
        {
            "CanaryStateMachineArn": canary.state_machine_arn,
            "NotificationTopicArn": alerting.topic.topic_arn,
            "GateAlarmPrefix": gate_alarm_prefix(config, alarms),
            "CanaryBakeSeconds": str(defaults["bake_seconds"]),
            "CanaryGatePollSeconds": str(defaults["gate_poll_seconds"]),
        },
    )
    machine = logged_state_machine(scope, config, "approval", definition, role)
    acknowledge_resources(
        role,
        {packages: "Model package versions are numbered by SageMaker; the group is fixed."},
    )
    rule = events.Rule(
        scope,
        "CandidateApproved",
        description="Model package approved in the candidates group: start its canary.",
        event_pattern=events.EventPattern(
            source=["aws.sagemaker"],
            detail_type=["SageMaker Model Package State Change"],
            detail={"ModelPackageGroupName": [group], "ModelApprovalStatus": ["Approved"]},
        ),
    )
    rule.add_target(targets.SfnStateMachine(machine, retry_attempts=3))
    return machine, rule
