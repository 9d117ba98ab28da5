"""Release bundles: the guard policy part of the canary input and the ASL states that move it."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from llmops.workflows import CANARY, asl_path
from llmops.workflows.canary_input import CanaryInput, GuardPolicyBundle, TargetRef
from llmops.workflows.canary_rollback import PromptRestore, guard_policy_label_rollback

GUARD = GuardPolicyBundle(name="strict", label="production", baseline_version=1, candidate_version=2)


def canary() -> CanaryInput:
    return CanaryInput(
        alias="chat-default",
        baseline=TargetRef(target="bedrock-claude-haiku"),
        candidate=TargetRef(target="bedrock-nova-lite"),
        guard_policy=GUARD,
    )


def test_the_execution_input_carries_guard_namespace_keys_and_round_trips() -> None:
    document = canary().to_execution_input()
    assert "prompt" not in document
    assert document["guard_policy"]["label_key"] == {"pk": {"S": "guard#strict"}, "sk": {"S": "label#production"}}
    assert document["guard_policy"]["candidate_key"] == {"pk": {"S": "guard#strict"}, "sk": {"S": "v#0000002"}}
    assert CanaryInput.from_execution_input(json.loads(json.dumps(document))) == canary()


def test_a_bundle_must_move_the_label() -> None:
    with pytest.raises(ValidationError, match="must differ"):
        GuardPolicyBundle(name="strict", label="production", baseline_version=2, candidate_version=2)
    with pytest.raises(ValidationError):
        GuardPolicyBundle(name="no spaces", label="production", baseline_version=1, candidate_version=2)


def test_the_abort_restores_only_the_canarys_own_move() -> None:
    item = {
        "pk": {"S": "guard#strict"},
        "sk": {"S": "label#production"},
        "version": {"N": "2"},
        "history": {"L": [{"N": "1"}]},
        "updated_by": {"S": "canary:run-1"},
    }
    plan = guard_policy_label_rollback(canary(), "Prompts", item, "run-1", now=1.0)
    assert plan.outcome is PromptRestore.RESTORE
    assert plan.request is not None and plan.request["Key"] == {"pk": item["pk"], "sk": item["sk"]}
    other = guard_policy_label_rollback(canary(), "Prompts", item, "run-2", now=1.0)
    assert other.outcome is PromptRestore.CHANGED


def test_the_asl_moves_and_restores_the_guard_policy_after_the_prompt() -> None:
    states = json.loads(asl_path(CANARY).read_text())["States"]
    assert states["HasPromptBundle"]["Default"] == "HasGuardPolicyBundle"
    assert states["MovePromptLabel"]["Next"] == "MovesGuardPolicyLabel"
    assert states["MoveGuardPolicyLabel"]["Parameters"]["Key.$"] == "$.guard_policy.label_key"
    assert states["PromptLabelMoved"]["Default"] == "GuardPolicyLabelMoved"
    assert states["RestoreGuardPolicyLabel"]["Parameters"]["Key.$"] == "$.guard_policy.label_key"
    # No guard state reads the prompt's data.
    guard_states = json.dumps({k: v for k, v in states.items() if "GuardPolicy" in k})
    assert "$.prompt" not in guard_states
