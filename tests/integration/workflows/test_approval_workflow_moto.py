"""The approval ASL in moto: an approved model package's event starts the canary for it.

moto cannot execute a `states:startExecution` task (it hands the PascalCase parameters to boto3
unchanged and botocore rejects them), so these tests read the parameters the `StartCanary` task
was scheduled with from the execution history, and start the canary with exactly those.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from moto_workflow_stack import WorkflowStack

from llmops.workflows import APPROVAL, load_definition
from llmops.workflows.canary_input import CanaryInput, TargetRef

GATE_PREFIX = "llmops-test-"
BAKE_SECONDS = 0
GATE_NAMES = (
    "canary-error-rate",
    "canary-latency-p99",
    "canary-guard-block-rate",
    "canary-negative-feedback",
    "canary-ttft-p99",
)


@pytest.fixture
def approval_arn(workflow_stack: WorkflowStack) -> str:
    outputs = workflow_stack.outputs
    definition = load_definition(
        APPROVAL,
        {
            "CanaryStateMachineArn": outputs["CanaryStateMachineArn"],
            "NotificationTopicArn": outputs["NotificationTopicArn"],
            "GateAlarmPrefix": GATE_PREFIX,
            "CanaryBakeSeconds": str(BAKE_SECONDS),
            "CanaryGatePollSeconds": str(BAKE_SECONDS),
        },
    )
    sfn = workflow_stack.client("stepfunctions")
    existing = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
    if "llmops-test-approval" in existing:
        return str(existing["llmops-test-approval"])
    role = sfn.describe_state_machine(stateMachineArn=outputs["CanaryStateMachineArn"])["roleArn"]
    return str(
        sfn.create_state_machine(name="llmops-test-approval", definition=definition, roleArn=role)["stateMachineArn"]
    )


def _gates(workflow_stack: WorkflowStack, target: str) -> list[str]:
    names = [f"{GATE_PREFIX}{gate}-{target}" for gate in GATE_NAMES]
    for name in names:
        workflow_stack.client("cloudwatch").put_metric_alarm(
            AlarmName=name,
            Namespace="LLMOps",
            MetricName="Errors",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanThreshold",
        )
    return names


def _approved_package(workflow_stack: WorkflowStack, metadata: Mapping[str, str], status: str = "Approved") -> str:
    sagemaker = workflow_stack.client("sagemaker")
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=workflow_stack.outputs["ModelPackageGroupName"],
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/llm:1"}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        CustomerMetadataProperties=dict(metadata),
    )["ModelPackageArn"]
    sagemaker.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus=status, CustomerMetadataProperties=dict(metadata)
    )
    return str(arn)


def _event(package_arn: str) -> dict[str, Any]:
    # The fields the rule matches on and the machine reads; the real event carries more.
    return {
        "version": "0",
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "resources": [package_arn],
        "detail": {"ModelPackageArn": package_arn, "ModelApprovalStatus": "Approved"},
    }


def _start_canary_as_scheduled(workflow_stack: WorkflowStack, approval_execution: str) -> dict[str, Any]:
    """Runs what the approval machine asked for; returns the canary execution's description."""
    (scheduled,) = [
        json.loads(event["taskScheduledEventDetails"]["parameters"])
        for event in workflow_stack.history(approval_execution)
        if event.get("taskScheduledEventDetails", {}).get("resource") == "startExecution"
    ]
    assert scheduled["StateMachineArn"] == workflow_stack.outputs["CanaryStateMachineArn"]
    document = scheduled["Input"]
    started = workflow_stack.client("stepfunctions").start_execution(
        stateMachineArn=scheduled["StateMachineArn"],
        name=scheduled["Name"],
        input=document if isinstance(document, str) else json.dumps(document),
    )
    described: dict[str, Any] = workflow_stack.wait(started["executionArn"])
    return described


def _canary_executions(workflow_stack: WorkflowStack) -> list[dict[str, Any]]:
    sfn = workflow_stack.client("stepfunctions")
    listed = sfn.list_executions(stateMachineArn=workflow_stack.outputs["CanaryStateMachineArn"])["executions"]
    return [sfn.describe_execution(executionArn=e["executionArn"]) for e in listed]


def test_approval_starts_a_routes_canary_that_promotes_the_candidate(
    workflow_stack: WorkflowStack, approval_arn: str
) -> None:
    gates = _gates(workflow_stack, "bedrock-nova-lite")
    package = _approved_package(
        workflow_stack,
        {
            "llmops:alias": "chat-default",
            "llmops:baseline-target": "bedrock-claude-haiku",
            "llmops:candidate-target": "bedrock-nova-lite",
        },
    )
    sfn = workflow_stack.client("stepfunctions")
    run = sfn.start_execution(stateMachineArn=approval_arn, name="approved-1", input=json.dumps(_event(package)))
    workflow_stack.wait(run["executionArn"])
    canary = _start_canary_as_scheduled(workflow_stack, run["executionArn"])
    assert canary["name"].startswith("canary-llmops-local-candidates-v")
    document = json.loads(canary["input"])
    expected = CanaryInput(
        alias="chat-default",
        baseline=TargetRef(target="bedrock-claude-haiku"),
        candidate=TargetRef(target="bedrock-nova-lite"),
        bake_seconds=BAKE_SECONDS,
        gates=tuple(gates),
    ).to_execution_input()
    assert document == expected
    assert canary["status"] == "SUCCEEDED", canary
    assert workflow_stack.route_weights("chat-default")["bedrock-nova-lite"] == 100
    kinds = [n["MessageAttributes"]["kind"]["Value"] for n in workflow_stack.notifications()]
    assert "canary-promoted" in kinds


def test_approval_of_two_variants_on_one_endpoint_starts_a_sagemaker_canary(
    workflow_stack: WorkflowStack, approval_arn: str
) -> None:
    gates = _gates(workflow_stack, "sm-llama3-8b-candidate")
    package = _approved_package(
        workflow_stack,
        {
            "llmops:alias": "llama3-8b",
            "llmops:baseline-target": "sm-llama3-8b-primary",
            "llmops:candidate-target": "sm-llama3-8b-candidate",
            "llmops:endpoint-name": "llmops-llama3-8b",
            "llmops:baseline-variant": "primary",
            "llmops:candidate-variant": "candidate",
        },
    )
    sfn = workflow_stack.client("stepfunctions")
    run = sfn.start_execution(stateMachineArn=approval_arn, name="approved-sm", input=json.dumps(_event(package)))
    workflow_stack.wait(run["executionArn"])
    canary = _start_canary_as_scheduled(workflow_stack, run["executionArn"])
    restored = CanaryInput.from_execution_input(json.loads(canary["input"]))
    assert restored.provider == "sagemaker" and restored.endpoint_name == "llmops-llama3-8b"
    assert (restored.baseline.variant, restored.candidate.variant) == ("primary", "candidate")
    assert restored.gates == tuple(gates)
    assert canary["status"] == "SUCCEEDED", canary
    assert workflow_stack.variant_weights("llmops-llama3-8b") == {"primary": 0.0, "candidate": 100.0}


def test_approval_without_release_metadata_starts_nothing_and_says_why(
    workflow_stack: WorkflowStack, approval_arn: str
) -> None:
    before = len(_canary_executions(workflow_stack))
    package = _approved_package(workflow_stack, {"llmops:alias": "chat-default"})
    sfn = workflow_stack.client("stepfunctions")
    run = sfn.start_execution(stateMachineArn=approval_arn, name="incomplete", input=json.dumps(_event(package)))
    done = workflow_stack.wait(run["executionArn"])
    assert done["status"] == "FAILED"
    assert done["error"] == "ReleaseMetadataMissing"
    assert "llmops:candidate-target" in done["cause"]
    assert len(_canary_executions(workflow_stack)) == before
    (notice,) = workflow_stack.notifications()
    assert notice["MessageAttributes"]["kind"]["Value"] == "canary-not-started"


def test_a_package_no_longer_approved_is_ignored(workflow_stack: WorkflowStack, approval_arn: str) -> None:
    package = _approved_package(
        workflow_stack,
        {
            "llmops:alias": "chat-default",
            "llmops:baseline-target": "bedrock-claude-haiku",
            "llmops:candidate-target": "bedrock-nova-lite",
        },
        status="Rejected",
    )
    sfn = workflow_stack.client("stepfunctions")
    run = sfn.start_execution(stateMachineArn=approval_arn, name="late-event", input=json.dumps(_event(package)))
    assert workflow_stack.wait(run["executionArn"])["status"] == "SUCCEEDED"
    assert workflow_stack.notifications() == []
