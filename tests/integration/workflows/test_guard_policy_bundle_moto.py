"""Release bundles in moto: a guard policy label moves with the model (and a prompt label).

Same states as the prompt's: moved when the candidate reaches 100%, moved back on rollback, and the
abort restores it the same way.
"""

from __future__ import annotations

import re
import zlib

import pytest
from moto_workflow_stack import GATES, PROMPTS_TABLE, WorkflowStack

from llmops.adapters.dynamodb.guard_policy_store import DynamoGuardPolicyStore
from llmops.domain.guard_policy_registry import GuardPolicyDraft
from llmops.workflows.canary_control import abort_canary
from llmops.workflows.canary_input import CanaryInput, GuardPolicyBundle, PromptBundle, TargetRef
from llmops.workflows.canary_rollback import PromptRestore

CANARY = "CanaryStateMachineArn"
LABEL = "production"


@pytest.fixture
def name(workflow_stack: WorkflowStack, request: pytest.FixtureRequest) -> str:
    """A fresh policy and prompt per test, seeded with versions 1 and 2 and the label on 1; also
    the execution's name."""
    slug = re.sub(r"[^A-Za-z0-9-]+", "-", request.node.name.removeprefix("test_")).strip("-")[:40]
    unique = f"guard-{slug}-{zlib.crc32(request.node.name.encode()):08x}"
    store = guards(workflow_stack)
    store.push(GuardPolicyDraft(unique, {"actions": {"EMAIL": "redact"}}), now=1.0)
    store.push(GuardPolicyDraft(unique, {"actions": {"EMAIL": "block"}}), now=1.0)
    store.set_label(unique, LABEL, 1, now=2.0, actor="seed")
    workflow_stack.seed_prompt(unique, LABEL, versions=2, label_at=1)
    return unique


def guards(workflow_stack: WorkflowStack) -> DynamoGuardPolicyStore:
    return DynamoGuardPolicyStore(workflow_stack.client("dynamodb"), PROMPTS_TABLE)


def canary(name: str, **options: object) -> CanaryInput:
    return CanaryInput(
        alias="chat-default",
        baseline=TargetRef(target="bedrock-claude-haiku"),
        candidate=TargetRef(target="bedrock-nova-lite"),
        gates=GATES,
        gate_poll_seconds=1,
        prompt=PromptBundle(id=name, label=LABEL, baseline_version=1, candidate_version=2),
        guard_policy=GuardPolicyBundle(name=name, label=LABEL, baseline_version=1, candidate_version=2),
        **options,  # type: ignore[arg-type]
    )


def guard_label(workflow_stack: WorkflowStack, name: str) -> tuple[int, tuple[int, ...], str]:
    state = guards(workflow_stack).get_label(name, LABEL)
    assert state is not None
    return state.version, state.history, state.updated_by


def test_the_guard_policy_moves_at_100_and_back_on_a_breach(workflow_stack: WorkflowStack, name: str) -> None:
    arn = workflow_stack.run(CANARY, canary(name, steps=(100,), bake_seconds=60).to_execution_input(), name=name)
    workflow_stack.wait_until(lambda: guard_label(workflow_stack, name)[0] == 2)
    assert guard_label(workflow_stack, name) == (2, (1,), f"canary:{name}")
    assert workflow_stack.prompt_label(name, LABEL).version == 2  # moved together
    workflow_stack.set_alarm(GATES[0], "ALARM", reason="error rate 14%")

    result = workflow_stack.wait(arn)

    assert result["status"] == "FAILED"
    assert result["error"] == "GateBreached"
    assert f"Guard policy {name} label {LABEL} moved back to version 1" in result["cause"]
    assert f"Prompt {name} label {LABEL} moved back to version 1" in result["cause"]
    assert guard_label(workflow_stack, name)[:2] == (1, ())
    assert workflow_stack.prompt_label(name, LABEL).version == 1
    assert workflow_stack.route_weights("chat-default") == {"bedrock-claude-haiku": 100.0, "bedrock-nova-lite": 0.0}


def test_a_guard_policy_not_at_its_baseline_moves_no_traffic(workflow_stack: WorkflowStack, name: str) -> None:
    guards(workflow_stack).set_label(name, LABEL, 2, now=3.0, actor="alice")
    before = workflow_stack.route_weights("chat-default")

    result = workflow_stack.wait(
        workflow_stack.run(CANARY, canary(name, bake_seconds=0).to_execution_input(), name=name)
    )

    assert (result["status"], result["error"]) == ("FAILED", "GuardPolicyLabelChanged")
    assert workflow_stack.route_weights("chat-default") == before


def test_abort_after_a_promotion_restores_the_guard_policy(workflow_stack: WorkflowStack, name: str) -> None:
    arn = workflow_stack.run(CANARY, canary(name, steps=(100,), bake_seconds=0).to_execution_input(), name=name)
    assert workflow_stack.wait(arn)["status"] == "SUCCEEDED"
    assert guard_label(workflow_stack, name)[0] == 2

    aborted = abort_canary(
        workflow_stack.control_plane(),
        arn,
        workflow_stack.routes_table,
        prompts_table=PROMPTS_TABLE,
    )

    assert aborted.guard_policy.outcome is PromptRestore.RESTORE
    assert aborted.prompt.outcome is PromptRestore.RESTORE
    assert guard_label(workflow_stack, name)[:2] == (1, ())
