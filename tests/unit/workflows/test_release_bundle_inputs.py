"""Release bundles: the prompt part of the canary input and the abort's label rollback (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from llmops.workflows import CANARY, asl_path
from llmops.workflows.canary_input import CanaryInput, PromptBundle, TargetRef
from llmops.workflows.canary_rollback import (
    PROMPT_LABEL_ATTRIBUTE_NAMES,
    PROMPT_RESTORE_CONDITION,
    PromptRestore,
    prompt_label_actor,
    prompt_label_rollback,
)

BUNDLE = PromptBundle(id="support-bot", label="prod", baseline_version=2, candidate_version=3)


def canary(prompt: PromptBundle | None = BUNDLE) -> CanaryInput:
    return CanaryInput(
        alias="chat-default",
        baseline=TargetRef(target="bedrock-claude-haiku"),
        candidate=TargetRef(target="bedrock-nova-lite"),
        prompt=prompt,
    )


def label_item(version: int, history: list[int], updated_by: str) -> dict[str, Any]:
    return {
        "pk": {"S": "prompt#support-bot"},
        "sk": {"S": "label#prod"},
        "prompt_id": {"S": "support-bot"},
        "label": {"S": "prod"},
        "version": {"N": str(version)},
        "history": {"L": [{"N": str(v)} for v in history]},
        "updated_by": {"S": updated_by},
    }


def test_the_bundle_travels_with_its_table_keys_and_reads_back() -> None:
    document = canary().to_execution_input()
    assert document["prompt"] == {
        "id": "support-bot",
        "label": "prod",
        "baseline_version": 2,
        "candidate_version": 3,
        "label_key": {"pk": {"S": "prompt#support-bot"}, "sk": {"S": "label#prod"}},
        "candidate_key": {"pk": {"S": "prompt#support-bot"}, "sk": {"S": "v#0000003"}},
    }
    assert CanaryInput.from_execution_input(document).prompt == BUNDLE


def test_a_canary_without_a_bundle_has_no_prompt_key() -> None:
    document = canary(None).to_execution_input()
    assert "prompt" not in document  # the ASL tests IsPresent
    assert CanaryInput.from_execution_input(document).prompt is None


@pytest.mark.parametrize(
    "changes",
    [
        {"candidate_version": 2},
        {"baseline_version": 0},
        {"id": "bad id"},
        {"label": "1st"},
    ],
)
def test_invalid_bundles_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PromptBundle(**{**BUNDLE.model_dump(), **changes})


def test_the_abort_undoes_only_the_canarys_own_move() -> None:
    actor = prompt_label_actor("canary-chat-1")
    plan = prompt_label_rollback(canary(), "Prompts", label_item(3, [1, 2], actor), "canary-chat-1", now=1700000000.5)

    assert plan.outcome is PromptRestore.RESTORE
    assert plan.request is not None
    assert plan.request["Key"] == {"pk": {"S": "prompt#support-bot"}, "sk": {"S": "label#prod"}}
    assert plan.request["UpdateExpression"] == "SET #v = :b, #by = :by, #at = :at REMOVE #h[1]"
    assert plan.request["ConditionExpression"] == PROMPT_RESTORE_CONDITION
    assert plan.request["ExpressionAttributeNames"] == PROMPT_LABEL_ATTRIBUTE_NAMES
    values = plan.request["ExpressionAttributeValues"]
    assert (values[":b"], values[":c"], values[":n"]) == ({"N": "2"}, {"N": "3"}, {"N": "2"})
    assert values[":at"] == {"N": "1700000000.5"}


@pytest.mark.parametrize(
    ("item", "outcome"),
    [
        (label_item(2, [1], "seed"), PromptRestore.NOT_MOVED),
        (label_item(1, [1, 2, 3], "alice"), PromptRestore.CHANGED),
        (label_item(3, [1, 2], "alice"), PromptRestore.CHANGED),  # set back to the candidate by a human
        (label_item(3, [1, 2], "canary:another-run"), PromptRestore.CHANGED),
        (label_item(3, [1], "canary:canary-chat-1"), PromptRestore.CHANGED),  # history not as we left it
        (None, PromptRestore.MISSING),
    ],
)
def test_a_label_that_is_not_as_the_canary_left_it_is_left_alone(
    item: dict[str, Any] | None, outcome: PromptRestore
) -> None:
    plan = prompt_label_rollback(canary(), "Prompts", item, "canary-chat-1", now=1.0)
    assert plan.outcome is outcome
    assert plan.request is None


def test_no_bundle_no_label_rollback() -> None:
    assert prompt_label_rollback(canary(None), "Prompts", None, "x", now=1.0).outcome is PromptRestore.NO_BUNDLE


def test_the_asl_moves_and_restores_under_the_same_conditions_the_cli_uses() -> None:
    states = json.loads(asl_path(CANARY).read_text())["States"]
    move, restore = states["MovePromptLabel"]["Parameters"], states["RestorePromptLabel"]["Parameters"]
    assert move["ConditionExpression"] == "#v = :b"
    assert restore["ConditionExpression"] == PROMPT_RESTORE_CONDITION
    assert move["ExpressionAttributeNames"] == restore["ExpressionAttributeNames"] == PROMPT_LABEL_ATTRIBUTE_NAMES
    assert move["ExpressionAttributeValues"][":by"] == {"S.$": "States.Format('canary:{}', $$.Execution.Name)"}
    assert prompt_label_actor("NAME") == "canary:NAME"
    # A condition failure is not retried: it is an answer (someone moved the label), not a fault.
    assert states["RestorePromptLabel"]["Retry"][0] == {
        "ErrorEquals": ["DynamoDB.ConditionalCheckFailedException"],
        "MaxAttempts": 0,
    }
