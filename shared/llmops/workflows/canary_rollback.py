"""The rollback that `llmops canary abort` performs after stopping an execution.

A stopped execution runs no more states, so the state machine's own rollback branch never runs;
the CLI issues the same two requests instead. They mirror `RestoreRouteWeights` and
`RestoreVariantWeights` in `canary.asl.json` (the integration tests check that both leave the
same weights behind).

A release bundle's prompt label is put back the same way `RestorePromptLabel` does it: only while
it still points at the candidate version with this execution's name in `updated_by` (the canary's
own move, untouched since), removing the baseline version the move appended to its history. A
label someone changed since is theirs and is left alone. A bundle's guard policy label is the same
kind of item (`RestoreGuardPolicyLabel`) and goes back the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from llmops.config.tables import ROUTE_PK
from llmops.workflows.canary_input import CanaryInput, GuardPolicyBundle, PromptBundle

__all__ = [
    "PROMPT_LABEL_ATTRIBUTE_NAMES",
    "PROMPT_RESTORE_CONDITION",
    "PromptLabelRollback",
    "PromptRestore",
    "endpoint_rollback_request",
    "guard_policy_label_rollback",
    "label_rollback",
    "prompt_label_actor",
    "prompt_label_rollback",
    "route_rollback_request",
]

# As in canary.asl.json's MovePromptLabel / RestorePromptLabel.
PROMPT_LABEL_ATTRIBUTE_NAMES = {"#v": "version", "#h": "history", "#by": "updated_by", "#at": "updated_at"}
PROMPT_RESTORE_CONDITION = "#v = :c AND #by = :by AND size(#h) = :n"


def route_rollback_request(canary: CanaryInput, routes_table: str) -> dict[str, Any]:
    """Keyword arguments for DynamoDB `update_item`: baseline back to 100, candidate to 0."""
    return {
        "TableName": routes_table,
        "Key": {"pk": {"S": ROUTE_PK}, "sk": {"S": canary.alias}},
        "UpdateExpression": "SET weights.#b = :wb, weights.#c = :wc",
        "ConditionExpression": "attribute_exists(weights)",
        "ExpressionAttributeNames": {"#b": canary.baseline.target, "#c": canary.candidate.target},
        "ExpressionAttributeValues": {":wb": {"N": "100"}, ":wc": {"N": "0"}},
    }


def endpoint_rollback_request(canary: CanaryInput) -> dict[str, Any] | None:
    """Keyword arguments for SageMaker `update_endpoint_weights_and_capacities`, or None when the
    canary only moved route weights."""
    if canary.provider != "sagemaker":
        return None
    return {
        "EndpointName": canary.endpoint_name,
        "DesiredWeightsAndCapacities": [
            {"VariantName": canary.baseline.variant, "DesiredWeight": 100.0},
            {"VariantName": canary.candidate.variant, "DesiredWeight": 0.0},
        ],
    }


def prompt_label_actor(execution_name: str) -> str:
    """The `updated_by` the state machine writes when it moves a label (`canary:<execution name>`)."""
    return f"canary:{execution_name}"


class PromptRestore(StrEnum):
    NO_BUNDLE = "no-bundle"  # the canary moved no prompt (or no guard policy)
    NOT_MOVED = "not-moved"  # the label is on the baseline version: never moved, or already back
    RESTORE = "restore"  # still as the canary left it: move it back
    CHANGED = "changed"  # someone else moved it since: left alone
    MISSING = "missing"  # the label item is gone


@dataclass(frozen=True, slots=True)
class PromptLabelRollback:
    outcome: PromptRestore
    request: dict[str, Any] | None = None  # DynamoDB `update_item` kwargs when outcome is RESTORE
    current_version: int | None = None


def prompt_label_rollback(
    canary: CanaryInput,
    prompts_table: str,
    label_item: Mapping[str, Any] | None,
    execution_name: str,
    now: float,
) -> PromptLabelRollback:
    """What to do with the bundle's prompt label (see `label_rollback`)."""
    return label_rollback(canary.prompt, prompts_table, label_item, execution_name, now)


def guard_policy_label_rollback(
    canary: CanaryInput,
    prompts_table: str,
    label_item: Mapping[str, Any] | None,
    execution_name: str,
    now: float,
) -> PromptLabelRollback:
    """What to do with the bundle's guard policy label (see `label_rollback`)."""
    return label_rollback(canary.guard_policy, prompts_table, label_item, execution_name, now)


def label_rollback(
    bundle: PromptBundle | GuardPolicyBundle | None,
    prompts_table: str,
    label_item: Mapping[str, Any] | None,
    execution_name: str,
    now: float,
) -> PromptLabelRollback:
    """What to do with a bundle's label, given its item as read now (low-level JSON, or None).

    The returned request is conditional on exactly what was read, so a label moved between the
    read and the write is left alone too (the write fails with ConditionalCheckFailedException).
    """
    if bundle is None:
        return PromptLabelRollback(PromptRestore.NO_BUNDLE)
    if label_item is None:
        return PromptLabelRollback(PromptRestore.MISSING)
    version = int(label_item["version"]["N"])
    history = [int(v["N"]) for v in label_item.get("history", {}).get("L", [])]
    actor = prompt_label_actor(execution_name)
    if version == bundle.baseline_version:
        return PromptLabelRollback(PromptRestore.NOT_MOVED, current_version=version)
    ours = bool(
        version == bundle.candidate_version
        and label_item.get("updated_by", {}).get("S") == actor
        and history
        and history[-1] == bundle.baseline_version
    )
    if not ours:
        return PromptLabelRollback(PromptRestore.CHANGED, current_version=version)
    request = {
        "TableName": prompts_table,
        "Key": {"pk": label_item["pk"], "sk": label_item["sk"]},
        # Unlike the state machine, the CLI can stamp the time of the move back.
        "UpdateExpression": f"SET #v = :b, #by = :by, #at = :at REMOVE #h[{len(history) - 1}]",
        "ConditionExpression": PROMPT_RESTORE_CONDITION,
        "ExpressionAttributeNames": dict(PROMPT_LABEL_ATTRIBUTE_NAMES),
        "ExpressionAttributeValues": {
            ":b": {"N": str(bundle.baseline_version)},
            ":c": {"N": str(bundle.candidate_version)},
            ":n": {"N": str(len(history))},
            ":by": {"S": actor},
            ":at": {"N": str(Decimal(repr(now)))},
        },
    }
    return PromptLabelRollback(PromptRestore.RESTORE, request=request, current_version=version)
