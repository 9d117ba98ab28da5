"""The canary ASL, executed unchanged by moto's Step Functions interpreter."""

from __future__ import annotations

import json
from typing import Any

from moto_workflow_stack import GATES, WorkflowStack

from llmops.workflows.canary_control import abort_canary, approve_canary
from llmops.workflows.canary_input import CanaryInput, TargetRef

CANARY = "CanaryStateMachineArn"
ENDPOINT = "llmops-llama3-8b"


def sagemaker_canary(**options: Any) -> CanaryInput:
    defaults: dict[str, Any] = {"bake_seconds": 0, "gate_poll_seconds": 1, "gates": GATES}
    return CanaryInput(
        alias="llama3-8b",
        provider="sagemaker",
        endpoint_name=ENDPOINT,
        baseline=TargetRef(target="sm-llama3-8b-primary", variant="primary"),
        candidate=TargetRef(target="sm-llama3-8b-candidate", variant="candidate"),
        **{**defaults, **options},
    )


def bedrock_canary(**options: Any) -> CanaryInput:
    defaults: dict[str, Any] = {"bake_seconds": 0, "gate_poll_seconds": 1, "gates": GATES}
    return CanaryInput(
        alias="chat-default",
        baseline=TargetRef(target="bedrock-claude-haiku"),
        candidate=TargetRef(target="bedrock-nova-lite"),
        **{**defaults, **options},
    )


def variant_weight_requests(events: list[dict[str, Any]]) -> list[dict[str, float]]:
    """The weights each UpdateEndpointWeightsAndCapacities call asked for, in order."""
    requests = []
    for event in events:
        details = event.get("taskScheduledEventDetails")
        if details and details["resource"] == "updateEndpointWeightsAndCapacities":
            parameters = json.loads(details["parameters"])
            requests.append(
                {v["VariantName"]: float(v["DesiredWeight"]) for v in parameters["DesiredWeightsAndCapacities"]}
            )
    return requests


def test_healthy_sagemaker_canary_moves_variant_weights_at_each_step(workflow_stack: WorkflowStack) -> None:
    seen: list[dict[str, float]] = []
    arn = workflow_stack.run(CANARY, sagemaker_canary(bake_seconds=1).to_execution_input(), name="healthy-sm")

    def record_and_check_done() -> bool:
        weights = workflow_stack.variant_weights(ENDPOINT)
        if not seen or seen[-1] != weights:
            seen.append(weights)
        return bool(workflow_stack.client("stepfunctions").describe_execution(executionArn=arn)["status"] != "RUNNING")

    workflow_stack.wait_until(record_and_check_done)
    result = workflow_stack.wait(arn)

    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert json.loads(result["output"])["status"] == "promoted"
    expected = [{"primary": 100 - p, "candidate": p} for p in (5, 25, 50, 100)]
    assert variant_weight_requests(workflow_stack.history(arn)) == expected
    # Observed on the endpoint itself between steps (each step bakes a second).
    assert seen[0] == {"primary": 100.0, "candidate": 0.0}
    assert seen[1:] == expected
    assert workflow_stack.route_weights("llama3-8b") == {"sm-llama3-8b-primary": 0.0, "sm-llama3-8b-candidate": 100.0}
    assert any("promoted" in m["Subject"] for m in workflow_stack.notifications())


def test_alarm_mid_bake_rolls_back_and_fails_naming_the_gate(workflow_stack: WorkflowStack) -> None:
    arn = workflow_stack.run(CANARY, sagemaker_canary(bake_seconds=60).to_execution_input(), name="breach-sm")
    # The first step (5%) bakes for a minute; breach it while it does.
    workflow_stack.wait_until(lambda: workflow_stack.variant_weights(ENDPOINT)["candidate"] == 5.0)
    workflow_stack.set_alarm(GATES[1], "ALARM", reason="p99 latency above 4s")

    result = workflow_stack.wait(arn)

    assert result["status"] == "FAILED"
    assert result["error"] == "GateBreached"
    assert GATES[1] in result["cause"]
    assert "5%" in result["cause"]
    assert workflow_stack.variant_weights(ENDPOINT) == {"primary": 100.0, "candidate": 0.0}
    assert workflow_stack.route_weights("llama3-8b") == {"sm-llama3-8b-primary": 100.0, "sm-llama3-8b-candidate": 0.0}
    rolled_back = [m for m in workflow_stack.notifications() if "rolled back" in m["Subject"]]
    assert len(rolled_back) == 1
    assert GATES[1] in rolled_back[0]["Message"]


def route_weight_requests(events: list[dict[str, Any]]) -> list[dict[str, float]]:
    """The weights each route UpdateItem asked for, in order, by target id."""
    requests = []
    for event in events:
        details = event.get("taskScheduledEventDetails")
        if details and details["resource"] == "updateItem":
            parameters = json.loads(details["parameters"])
            names = parameters["ExpressionAttributeNames"]
            values = parameters["ExpressionAttributeValues"]
            requests.append({names["#b"]: float(values[":wb"]["N"]), names["#c"]: float(values[":wc"]["N"])})
    return requests


def test_bedrock_to_bedrock_canary_moves_route_weights(workflow_stack: WorkflowStack) -> None:
    arn = workflow_stack.run(CANARY, bedrock_canary().to_execution_input(), name="bedrock")

    result = workflow_stack.wait(arn)

    assert result["status"] == "SUCCEEDED", result.get("cause")
    history = workflow_stack.history(arn)
    assert route_weight_requests(history) == [
        {"bedrock-claude-haiku": 100.0 - p, "bedrock-nova-lite": float(p)} for p in (5, 25, 50, 100)
    ]
    assert workflow_stack.route_weights("chat-default") == {"bedrock-claude-haiku": 0.0, "bedrock-nova-lite": 100.0}
    assert not any(e.get("taskScheduledEventDetails", {}).get("resourceType") == "sagemaker" for e in history)


def test_bedrock_breach_before_evaluation_restores_the_route(workflow_stack: WorkflowStack) -> None:
    workflow_stack.set_alarm(GATES[0], "ALARM", reason="error rate 12%")
    result = workflow_stack.wait(workflow_stack.run(CANARY, bedrock_canary().to_execution_input(), name="bedrock-bad"))

    assert result["error"] == "GateBreached"
    assert GATES[0] in result["cause"]
    assert workflow_stack.route_weights("chat-default") == {"bedrock-claude-haiku": 100.0, "bedrock-nova-lite": 0.0}


def test_unknown_gate_fails_before_moving_traffic(workflow_stack: WorkflowStack) -> None:
    canary = bedrock_canary(gates=(GATES[0], "llmops-no-such-alarm"))
    result = workflow_stack.wait(workflow_stack.run(CANARY, canary.to_execution_input(), name="missing-gate"))

    assert result["status"] == "FAILED"
    assert result["error"] == "GateMissing"
    assert "llmops-no-such-alarm" in result["cause"]
    assert workflow_stack.route_weights("chat-default") == {"bedrock-claude-haiku": 100.0}


def test_abort_stops_the_execution_and_restores_the_baseline(workflow_stack: WorkflowStack) -> None:
    arn = workflow_stack.run(CANARY, sagemaker_canary(bake_seconds=300).to_execution_input(), name="abort-me")
    # The route moves after the variants: once it shows 5%, the first step is baking.
    workflow_stack.wait_until(lambda: workflow_stack.route_weights("llama3-8b")["sm-llama3-8b-candidate"] == 5.0)

    result = abort_canary(
        workflow_stack.control_plane(),
        arn,
        workflow_stack.routes_table,
    )

    assert result.stopped
    assert workflow_stack.wait(arn)["status"] == "ABORTED"
    assert workflow_stack.variant_weights(ENDPOINT) == {"primary": 100.0, "candidate": 0.0}
    assert workflow_stack.route_weights("llama3-8b") == {"sm-llama3-8b-primary": 100.0, "sm-llama3-8b-candidate": 0.0}


def test_abort_after_promotion_is_an_instant_rollback(workflow_stack: WorkflowStack) -> None:
    arn = workflow_stack.run(CANARY, bedrock_canary().to_execution_input(), name="promoted")
    assert workflow_stack.wait(arn)["status"] == "SUCCEEDED"

    result = abort_canary(
        workflow_stack.control_plane(),
        arn,
        workflow_stack.routes_table,
    )

    assert not result.stopped
    assert workflow_stack.route_weights("chat-default") == {"bedrock-claude-haiku": 100.0, "bedrock-nova-lite": 0.0}


def test_manual_approval_gates_each_later_step(workflow_stack: WorkflowStack) -> None:
    plane = workflow_stack.control_plane()
    arn = workflow_stack.run(
        CANARY, bedrock_canary(steps=(10, 100), approval=True).to_execution_input(), name="approve"
    )
    workflow_stack.wait_until(lambda: approve_canary(plane, arn))

    result = workflow_stack.wait(arn)

    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert workflow_stack.route_weights("chat-default") == {"bedrock-claude-haiku": 0.0, "bedrock-nova-lite": 100.0}
    approvals = [m for m in workflow_stack.notifications() if "approval" in m["Subject"]]
    assert len(approvals) == 1
    assert "100%" in approvals[0]["Message"]


def test_rejected_approval_rolls_back(workflow_stack: WorkflowStack) -> None:
    plane = workflow_stack.control_plane()
    arn = workflow_stack.run(CANARY, bedrock_canary(steps=(10, 100), approval=True).to_execution_input(), name="reject")
    workflow_stack.wait_until(lambda: approve_canary(plane, arn, reject=True))

    result = workflow_stack.wait(arn)

    assert result["error"] == "ApprovalNotGiven"
    assert workflow_stack.route_weights("chat-default") == {"bedrock-claude-haiku": 100.0, "bedrock-nova-lite": 0.0}


def test_breach_while_keeping_the_baseline_rolls_back_a_promotion(workflow_stack: WorkflowStack) -> None:
    canary = bedrock_canary(steps=(100,), baseline_keep_seconds=60)
    arn = workflow_stack.run(CANARY, canary.to_execution_input(), name="hold")
    workflow_stack.wait_until(lambda: workflow_stack.route_weights("chat-default").get("bedrock-nova-lite") == 100.0)
    workflow_stack.set_alarm(GATES[0], "ALARM", reason="error rate 9%")

    result = workflow_stack.wait(arn)

    assert result["error"] == "GateBreached"
    assert workflow_stack.route_weights("chat-default") == {"bedrock-claude-haiku": 100.0, "bedrock-nova-lite": 0.0}


def test_rollback_requests_match_the_state_machine(workflow_stack: WorkflowStack) -> None:
    """The CLI's abort and the ASL's rollback branch leave the same weights behind."""
    from llmops.workflows.canary_rollback import endpoint_rollback_request, route_rollback_request

    canary = sagemaker_canary()
    definition = json.loads(
        workflow_stack.client("stepfunctions").describe_state_machine(stateMachineArn=workflow_stack.outputs[CANARY])[
            "definition"
        ]
    )
    asl_route = definition["States"]["RestoreRouteWeights"]["Parameters"]
    asl_endpoint = definition["States"]["RestoreVariantWeights"]["Parameters"]
    cli_route = route_rollback_request(canary, workflow_stack.routes_table)
    cli_endpoint = endpoint_rollback_request(canary)
    assert cli_endpoint is not None
    for key in ("TableName", "UpdateExpression", "ConditionExpression", "ExpressionAttributeValues"):
        assert cli_route[key] == asl_route[key]
    assert [w["DesiredWeight"] for w in cli_endpoint["DesiredWeightsAndCapacities"]] == [
        w["DesiredWeight"] for w in asl_endpoint["DesiredWeightsAndCapacities"]
    ]
