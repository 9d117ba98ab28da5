"""Release bundles in moto: a canary that moves a prompt label together with the model target.

The label moves when the candidate reaches 100% and moves back on every rollback path; a label
someone else moved is never overwritten.
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

import pytest
from moto_workflow_stack import GATES, PROMPTS_TABLE, WorkflowStack

from llmops.domain.prompts import PromptDraft
from llmops.workflows.canary_control import abort_canary, approve_canary, prompt_bundle
from llmops.workflows.canary_input import CanaryInput, PromptBundle, TargetRef
from llmops.workflows.canary_rollback import PROMPT_LABEL_ATTRIBUTE_NAMES, PROMPT_RESTORE_CONDITION, PromptRestore

CANARY = "CanaryStateMachineArn"
ENDPOINT = "llmops-llama3-8b"
LABEL = "prod"
# Seeded: versions 1..3, label `prod` moved 1 -> 2, so its history is (1,).
BASELINE_VERSION, CANDIDATE_VERSION = 2, 3


@pytest.fixture
def prompt_id(workflow_stack: WorkflowStack, request: pytest.FixtureRequest) -> str:
    """A fresh prompt per test (the Prompts table is not reset between tests); also the
    execution's name, since names are unique per state machine."""
    slug = re.sub(r"[^A-Za-z0-9-]+", "-", request.node.name.removeprefix("test_")).strip("-")[:54]
    prompt = f"{slug}-{zlib.crc32(request.node.name.encode()):08x}"
    workflow_stack.seed_prompt(prompt, LABEL, versions=3, label_at=1)
    workflow_stack.prompts().set_label(prompt, LABEL, BASELINE_VERSION, now=3.0, actor="seed")
    return prompt


def bundle(prompt_id: str, **changes: Any) -> PromptBundle:
    values: dict[str, Any] = {
        "id": prompt_id,
        "label": LABEL,
        "baseline_version": BASELINE_VERSION,
        "candidate_version": CANDIDATE_VERSION,
    }
    return PromptBundle(**{**values, **changes})


def bedrock_canary(prompt: PromptBundle, **options: Any) -> CanaryInput:
    defaults: dict[str, Any] = {"bake_seconds": 0, "gate_poll_seconds": 1, "gates": GATES, "steps": (5, 100)}
    return CanaryInput(
        alias="chat-default",
        baseline=TargetRef(target="bedrock-claude-haiku"),
        candidate=TargetRef(target="bedrock-nova-lite"),
        prompt=prompt,
        **{**defaults, **options},
    )


def sagemaker_canary(prompt: PromptBundle, **options: Any) -> CanaryInput:
    defaults: dict[str, Any] = {"bake_seconds": 0, "gate_poll_seconds": 1, "gates": GATES, "steps": (5, 100)}
    return CanaryInput(
        alias="llama3-8b",
        provider="sagemaker",
        endpoint_name=ENDPOINT,
        baseline=TargetRef(target="sm-llama3-8b-primary", variant="primary"),
        candidate=TargetRef(target="sm-llama3-8b-candidate", variant="candidate"),
        prompt=prompt,
        **{**defaults, **options},
    )


def dynamodb_writes(events: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(table, parameters) of every UpdateItem the execution scheduled, in order."""
    writes = []
    for event in events:
        details = event.get("taskScheduledEventDetails")
        if details and details["resource"] == "updateItem":
            parameters = json.loads(details["parameters"])
            writes.append((parameters["TableName"], parameters))
    return writes


def label_moved(workflow_stack: WorkflowStack, prompt_id: str) -> bool:
    return bool(workflow_stack.prompt_label(prompt_id, LABEL).version == CANDIDATE_VERSION)


def abort(workflow_stack: WorkflowStack, arn: str) -> Any:
    return abort_canary(
        workflow_stack.control_plane(),
        arn,
        workflow_stack.routes_table,
        prompts_table=PROMPTS_TABLE,
    )


def test_a_healthy_bundle_moves_the_label_when_the_candidate_reaches_100(
    workflow_stack: WorkflowStack, prompt_id: str
) -> None:
    arn = workflow_stack.run(CANARY, bedrock_canary(bundle(prompt_id)).to_execution_input(), name=prompt_id)

    result = workflow_stack.wait(arn)

    assert result["status"] == "SUCCEEDED", result.get("cause")
    state = workflow_stack.prompt_label(prompt_id, LABEL)
    assert state.version == CANDIDATE_VERSION
    assert state.history == (1, BASELINE_VERSION)
    assert state.updated_by == f"canary:{prompt_id}"
    # Route to 5%, route to 100%, and only then the label.
    writes = dynamodb_writes(workflow_stack.history(arn))
    assert [table for table, _ in writes] == [workflow_stack.routes_table, workflow_stack.routes_table, PROMPTS_TABLE]
    assert writes[1][1]["ExpressionAttributeValues"][":wc"] == {"N": "100"}
    assert workflow_stack.route_weights("chat-default") == {"bedrock-claude-haiku": 0.0, "bedrock-nova-lite": 100.0}
    # The gateway resolves the label through the registry, which now serves the candidate.
    assert workflow_stack.prompts().get_version(prompt_id, state.version) is not None


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"steps": (100,), "bake_seconds": 60}, id="during-the-100-bake"),
        pytest.param({"steps": (100,), "baseline_keep_seconds": 60}, id="while-keeping-the-baseline"),
    ],
)
def test_a_breach_after_the_label_moved_puts_it_back_on_the_baseline(
    workflow_stack: WorkflowStack, prompt_id: str, options: dict[str, Any]
) -> None:
    arn = workflow_stack.run(CANARY, bedrock_canary(bundle(prompt_id), **options).to_execution_input(), name=prompt_id)
    workflow_stack.wait_until(lambda: label_moved(workflow_stack, prompt_id))
    workflow_stack.set_alarm(GATES[0], "ALARM", reason="error rate 14%")

    result = workflow_stack.wait(arn)

    assert result["status"] == "FAILED"
    assert result["error"] == "GateBreached"
    assert GATES[0] in result["cause"]
    assert f"label {LABEL} moved back to version {BASELINE_VERSION}" in result["cause"]
    state = workflow_stack.prompt_label(prompt_id, LABEL)
    # Exactly undone: the baseline the move appended to the history is gone again.
    assert (state.version, state.history) == (BASELINE_VERSION, (1,))
    assert workflow_stack.route_weights("chat-default") == {"bedrock-claude-haiku": 100.0, "bedrock-nova-lite": 0.0}
    (rolled_back,) = [m for m in workflow_stack.notifications() if "rolled back" in m["Subject"]]
    assert "moved back" in rolled_back["Message"]


def test_a_breach_before_100_leaves_the_label_on_the_baseline(workflow_stack: WorkflowStack, prompt_id: str) -> None:
    canary = sagemaker_canary(bundle(prompt_id), bake_seconds=60)
    arn = workflow_stack.run(CANARY, canary.to_execution_input(), name=prompt_id)
    workflow_stack.wait_until(lambda: workflow_stack.variant_weights(ENDPOINT)["candidate"] == 5.0)
    workflow_stack.set_alarm(GATES[1], "ALARM", reason="p99 latency above 4s")

    result = workflow_stack.wait(arn)

    assert result["error"] == "GateBreached"
    assert GATES[1] in result["cause"] and "5%" in result["cause"]
    state = workflow_stack.prompt_label(prompt_id, LABEL)
    assert (state.version, state.history, state.updated_by) == (BASELINE_VERSION, (1,), "seed")
    assert PROMPTS_TABLE not in [table for table, _ in dynamodb_writes(workflow_stack.history(arn))]
    assert workflow_stack.variant_weights(ENDPOINT) == {"primary": 100.0, "candidate": 0.0}


def test_a_label_moved_by_someone_else_fails_the_canary_and_rolls_the_model_back(
    workflow_stack: WorkflowStack, prompt_id: str
) -> None:
    plane = workflow_stack.control_plane()
    canary = sagemaker_canary(bundle(prompt_id), approval=True)
    arn = workflow_stack.run(CANARY, canary.to_execution_input(), name=prompt_id)
    # The canary holds at 5% for approval of the 100% step; meanwhile a human moves the label.
    workflow_stack.wait_until(lambda: workflow_stack.variant_weights(ENDPOINT)["candidate"] == 5.0)
    workflow_stack.prompts().set_label(prompt_id, LABEL, 1, now=4.0, actor="alice")
    workflow_stack.wait_until(lambda: approve_canary(plane, arn))

    result = workflow_stack.wait(arn)

    assert result["status"] == "FAILED"
    assert result["error"] == "PromptLabelChanged"
    assert f"no longer pointed at baseline version {BASELINE_VERSION}" in result["cause"]
    assert "left as it is" in result["cause"]
    state = workflow_stack.prompt_label(prompt_id, LABEL)
    assert (state.version, state.updated_by) == (1, "alice")  # the human's change stands
    # The model went to 100% before the label move was refused, and came all the way back.
    variant_requests = [
        json.loads(e["taskScheduledEventDetails"]["parameters"])["DesiredWeightsAndCapacities"]
        for e in workflow_stack.history(arn)
        if e.get("taskScheduledEventDetails", {}).get("resource") == "updateEndpointWeightsAndCapacities"
    ]
    assert [[w["DesiredWeight"] for w in r] for r in variant_requests] == [[95, 5], [0, 100], [100, 0]]
    assert workflow_stack.variant_weights(ENDPOINT) == {"primary": 100.0, "candidate": 0.0}
    assert workflow_stack.route_weights("llama3-8b") == {"sm-llama3-8b-primary": 100.0, "sm-llama3-8b-candidate": 0.0}
    assert any("PromptLabelChanged" in m["Message"] for m in workflow_stack.notifications())


def test_a_label_changed_after_the_move_is_not_overwritten_by_the_rollback(
    workflow_stack: WorkflowStack, prompt_id: str
) -> None:
    canary = bedrock_canary(bundle(prompt_id), steps=(100,), bake_seconds=60)
    arn = workflow_stack.run(CANARY, canary.to_execution_input(), name=prompt_id)
    workflow_stack.wait_until(lambda: label_moved(workflow_stack, prompt_id))
    workflow_stack.prompts().set_label(prompt_id, LABEL, 1, now=4.0, actor="alice")
    workflow_stack.set_alarm(GATES[0], "ALARM", reason="error rate 14%")

    result = workflow_stack.wait(arn)

    assert result["error"] == "GateBreached"
    assert "was NOT moved back" in result["cause"]
    assert workflow_stack.prompt_label(prompt_id, LABEL).version == 1
    assert workflow_stack.route_weights("chat-default") == {"bedrock-claude-haiku": 100.0, "bedrock-nova-lite": 0.0}


def test_a_rejected_approval_leaves_the_label_on_the_baseline(workflow_stack: WorkflowStack, prompt_id: str) -> None:
    plane = workflow_stack.control_plane()
    arn = workflow_stack.run(
        CANARY, bedrock_canary(bundle(prompt_id), approval=True).to_execution_input(), name=prompt_id
    )
    workflow_stack.wait_until(lambda: approve_canary(plane, arn, reject=True))

    result = workflow_stack.wait(arn)

    assert result["error"] == "ApprovalNotGiven"
    assert workflow_stack.prompt_label(prompt_id, LABEL).version == BASELINE_VERSION


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        pytest.param({"baseline_version": 1}, "PromptLabelChanged", id="label-not-at-baseline"),
        pytest.param({"candidate_version": 9}, "PromptBundleInvalid", id="no-such-candidate-version"),
        pytest.param({"label": "staging"}, "PromptBundleInvalid", id="no-such-label"),
    ],
)
def test_a_bundle_that_does_not_match_the_registry_moves_no_traffic(
    workflow_stack: WorkflowStack, prompt_id: str, changes: dict[str, Any], error: str
) -> None:
    canary = bedrock_canary(bundle(prompt_id, **changes))
    result = workflow_stack.wait(workflow_stack.run(CANARY, canary.to_execution_input(), name=prompt_id))

    assert result["status"] == "FAILED"
    assert result["error"] == error
    assert "no traffic was moved" in result["cause"]
    assert workflow_stack.route_weights("chat-default") == {"bedrock-claude-haiku": 100.0}
    assert workflow_stack.prompt_label(prompt_id, LABEL).version == BASELINE_VERSION


def test_abort_restores_the_label(workflow_stack: WorkflowStack, prompt_id: str) -> None:
    canary = sagemaker_canary(bundle(prompt_id), steps=(100,), bake_seconds=300)
    arn = workflow_stack.run(CANARY, canary.to_execution_input(), name=prompt_id)
    workflow_stack.wait_until(lambda: label_moved(workflow_stack, prompt_id))

    result = abort(workflow_stack, arn)

    assert result.stopped
    assert result.prompt.outcome is PromptRestore.RESTORE
    assert workflow_stack.wait(arn)["status"] == "ABORTED"
    state = workflow_stack.prompt_label(prompt_id, LABEL)
    assert (state.version, state.history) == (BASELINE_VERSION, (1,))
    assert state.updated_at > 0  # the CLI, unlike the state machine, stamps the time
    assert workflow_stack.variant_weights(ENDPOINT) == {"primary": 100.0, "candidate": 0.0}
    # A second abort finds nothing of the canary's left to undo.
    assert abort(workflow_stack, arn).prompt.outcome is PromptRestore.NOT_MOVED


def test_abort_after_a_promotion_restores_the_label_but_not_someone_elses(
    workflow_stack: WorkflowStack, prompt_id: str
) -> None:
    arn = workflow_stack.run(CANARY, bedrock_canary(bundle(prompt_id)).to_execution_input(), name=prompt_id)
    assert workflow_stack.wait(arn)["status"] == "SUCCEEDED"
    workflow_stack.prompts().set_label(prompt_id, LABEL, 1, now=4.0, actor="alice")

    result = abort(workflow_stack, arn)

    assert not result.stopped
    assert result.prompt.outcome is PromptRestore.CHANGED
    assert workflow_stack.prompt_label(prompt_id, LABEL).version == 1
    assert workflow_stack.route_weights("chat-default") == {"bedrock-claude-haiku": 100.0, "bedrock-nova-lite": 0.0}


def test_abort_of_a_bundle_needs_the_prompts_table(workflow_stack: WorkflowStack, prompt_id: str) -> None:
    arn = workflow_stack.run(CANARY, bedrock_canary(bundle(prompt_id)).to_execution_input(), name=prompt_id)
    workflow_stack.wait(arn)
    with pytest.raises(ValueError, match="Prompts table"):
        abort_canary(
            workflow_stack.control_plane(),
            arn,
            workflow_stack.routes_table,
        )


def test_the_cli_restore_matches_the_state_machine(workflow_stack: WorkflowStack) -> None:
    definition = json.loads(
        workflow_stack.client("stepfunctions").describe_state_machine(stateMachineArn=workflow_stack.outputs[CANARY])[
            "definition"
        ]
    )
    restore = definition["States"]["RestorePromptLabel"]["Parameters"]
    move = definition["States"]["MovePromptLabel"]["Parameters"]
    assert restore["TableName"] == move["TableName"] == PROMPTS_TABLE
    assert restore["ConditionExpression"] == PROMPT_RESTORE_CONDITION
    assert restore["ExpressionAttributeNames"] == move["ExpressionAttributeNames"] == PROMPT_LABEL_ATTRIBUTE_NAMES


def test_a_tenants_bundle_moves_and_restores_that_tenants_label_only(
    workflow_stack: WorkflowStack, prompt_id: str
) -> None:
    # The fixture seeded the shared template of this id; team-a gets its own of the same id.
    store = workflow_stack.prompts()
    for n in range(1, 4):
        store.push(
            PromptDraft(prompt_id, f"Team A ({n}): {{{{question}}}}", ("question",), tenant_id="team-a"), now=1.0
        )
    scoped = f"team-a/{prompt_id}"
    store.set_label(scoped, LABEL, BASELINE_VERSION, now=2.0, actor="seed")
    tenant_bundle = prompt_bundle(store, prompt_id, LABEL, CANDIDATE_VERSION, tenant_id="team-a")
    assert (tenant_bundle.tenant, tenant_bundle.scoped_id) == ("team-a", scoped)
    document = tenant_bundle.to_execution_input()
    assert document["label_key"]["pk"] == document["candidate_key"]["pk"] == {"S": f"prompt#{scoped}"}
    assert PromptBundle.from_execution_input(document) == tenant_bundle

    canary = sagemaker_canary(tenant_bundle, steps=(100,), bake_seconds=300)
    arn = workflow_stack.run(CANARY, canary.to_execution_input(), name=prompt_id)
    workflow_stack.wait_until(lambda: workflow_stack.prompt_label(scoped, LABEL).version == CANDIDATE_VERSION)
    assert workflow_stack.prompt_label(prompt_id, LABEL).version == BASELINE_VERSION  # the shared one stays

    result = abort(workflow_stack, arn)

    assert result.prompt.outcome is PromptRestore.RESTORE
    assert workflow_stack.wait(arn)["status"] == "ABORTED"
    assert workflow_stack.prompt_label(scoped, LABEL).version == BASELINE_VERSION
    assert workflow_stack.prompt_label(prompt_id, LABEL).version == BASELINE_VERSION
