"""Operating a running canary from outside the state machine: read its routes and history, answer
its approval request, abort it, and build release bundles from the registry.

Aborting stops the execution and then restores the baseline weights (and a release bundle's
labels) itself, because a stopped execution runs no rollback states.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from llmops.adapters.dynamodb.guard_policy_store import DynamoGuardPolicyStore
from llmops.adapters.dynamodb.prompt_items import guard_policy_pk, label_sk, prompt_pk
from llmops.adapters.dynamodb.prompt_store import DynamoPromptStore
from llmops.adapters.dynamodb.route_items import ROUTE_PK, TARGET_PK, document_from_items
from llmops.domain.prompts import scoped_prompt_id
from llmops.workflows.canary_input import CanaryInput, GuardPolicyBundle, PromptBundle
from llmops.workflows.canary_rollback import (
    PromptLabelRollback,
    PromptRestore,
    endpoint_rollback_request,
    label_rollback,
    route_rollback_request,
)
from llmops.workflows.history import pending_approval_token

__all__ = [
    "AbortResult",
    "abort_canary",
    "approve_canary",
    "execution_history",
    "guard_policy_bundle",
    "prompt_bundle",
    "route_document",
]

_ENDPOINT_RETRIES = 12  # an endpoint mid-update rejects weight changes for a minute or so


def route_document(dynamodb: Any, routes_table: str) -> dict[str, Any]:
    """Targets and routes as the gateway sees them now (the Routes table, not routes.json)."""
    items: list[dict[str, Any]] = []
    for pk in (TARGET_PK, ROUTE_PK):
        paginator = dynamodb.get_paginator("query")
        for page in paginator.paginate(
            TableName=routes_table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
            ConsistentRead=True,
        ):
            items.extend(page.get("Items", []))
    return document_from_items(items)


def execution_history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page.get("events", []))
    return events


@dataclass(frozen=True, slots=True)
class AbortResult:
    execution_arn: str
    status_before: str
    stopped: bool
    canary: CanaryInput
    prompt: PromptLabelRollback = field(default_factory=lambda: PromptLabelRollback(PromptRestore.NO_BUNDLE))
    guard_policy: PromptLabelRollback = field(default_factory=lambda: PromptLabelRollback(PromptRestore.NO_BUNDLE))


def _restore_label(
    dynamodb: Any,
    bundle: PromptBundle | GuardPolicyBundle | None,
    prompts_table: str,
    execution_arn: str,
    now: float,
) -> PromptLabelRollback:
    if bundle is None:
        return PromptLabelRollback(PromptRestore.NO_BUNDLE)
    pk = prompt_pk(bundle.scoped_id) if isinstance(bundle, PromptBundle) else guard_policy_pk(bundle.name)
    item = dynamodb.get_item(
        TableName=prompts_table,
        Key={"pk": {"S": pk}, "sk": {"S": label_sk(bundle.label)}},
        ConsistentRead=True,
    ).get("Item")
    # Execution ARNs end with the execution name, which the state machine wrote as the mover.
    plan = label_rollback(bundle, prompts_table, item, execution_arn.rsplit(":", 1)[-1], now)
    if plan.request is None:
        return plan
    try:
        dynamodb.update_item(**plan.request)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        # Moved by someone else between our read and our write: theirs is the newer decision.
        return PromptLabelRollback(PromptRestore.CHANGED, current_version=plan.current_version)
    return plan


def abort_canary(
    sfn: Any,
    dynamodb: Any,
    sagemaker: Any,
    execution_arn: str,
    routes_table: str,
    sleep: Callable[[float], None] = time.sleep,
    prompts_table: str = "",
    clock: Callable[[], float] = time.time,
) -> AbortResult:
    """Stops the execution (if it still runs) and puts all traffic back on the baseline.

    Rolls back even when the execution has already ended: after a promotion that is the instant
    rollback the kept baseline exists for. A release bundle's prompt label goes back to its
    baseline version too, unless someone moved it since the canary did (see `PromptRestore`).
    """
    described = sfn.describe_execution(executionArn=execution_arn)
    canary = CanaryInput.from_execution_input(json.loads(described["input"]))
    if (canary.prompt is not None or canary.guard_policy is not None) and not prompts_table:
        raise ValueError("this canary moves a label: abort_canary needs the Prompts table name")
    status = str(described["status"])
    stopped = False
    if status == "RUNNING":
        sfn.stop_execution(
            executionArn=execution_arn,
            error="CanaryAborted",
            cause=f"Aborted by an operator; alias {canary.alias} restored to baseline {canary.baseline.target}.",
        )
        stopped = True
    # After the stop, so no step of the execution can write weights after ours. Same order as the
    # state machine's rollback: route, prompt label, guard policy label, endpoint variants.
    dynamodb.update_item(**route_rollback_request(canary, routes_table))
    prompt = _restore_label(dynamodb, canary.prompt, prompts_table, execution_arn, clock())
    guard_policy = _restore_label(dynamodb, canary.guard_policy, prompts_table, execution_arn, clock())
    endpoint_request = endpoint_rollback_request(canary)
    if endpoint_request is not None:
        for attempt in range(_ENDPOINT_RETRIES):
            try:
                sagemaker.update_endpoint_weights_and_capacities(**endpoint_request)
                break
            except sagemaker.exceptions.ClientError:
                if attempt == _ENDPOINT_RETRIES - 1:
                    raise
                sleep(5.0)
    return AbortResult(
        execution_arn=execution_arn,
        status_before=status,
        stopped=stopped,
        canary=canary,
        prompt=prompt,
        guard_policy=guard_policy,
    )


def approve_canary(sfn: Any, execution_arn: str, reject: bool = False) -> bool:
    """Answers the execution's pending approval request; False when none is pending."""
    token = pending_approval_token(execution_history(sfn, execution_arn))
    if token is None:
        return False
    if reject:
        sfn.send_task_failure(taskToken=token, error="ApprovalRejected", cause="Rejected by an operator.")
    else:
        sfn.send_task_success(taskToken=token, output=json.dumps({"approved": True}))
    return True


def prompt_bundle(
    store: DynamoPromptStore, prompt_id: str, label: str, candidate_version: int, tenant_id: str | None = None
) -> PromptBundle:
    """The bundle moving `label` of `prompt_id` (`tenant_id`'s own template, or the shared one when
    None) from where it points now to `candidate_version`.

    Raises ValueError when the label or the candidate version does not exist, or the label
    already points at the candidate.
    """
    subject = scoped_prompt_id(prompt_id, tenant_id)
    state = store.get_label(subject, label)
    if state is None:
        raise ValueError(f"prompt {subject} has no label {label!r}: set it to the current version first")
    if store.get_version(subject, candidate_version) is None:
        raise ValueError(f"prompt {subject} has no version {candidate_version}")
    if state.version == candidate_version:
        raise ValueError(f"label {label!r} of prompt {subject} already points at version {candidate_version}")
    return PromptBundle(
        id=prompt_id,
        label=label,
        baseline_version=state.version,
        candidate_version=candidate_version,
        tenant=tenant_id,
    )


def guard_policy_bundle(
    store: DynamoGuardPolicyStore, name: str, label: str, candidate_version: int
) -> GuardPolicyBundle:
    """The bundle moving `label` of guard policy `name` from where it points now to
    `candidate_version`; raises ValueError as `prompt_bundle` does."""
    state = store.get_label(name, label)
    if state is None:
        raise ValueError(f"guard policy {name} has no label {label!r}: set it to the current version first")
    if store.get_version(name, candidate_version) is None:
        raise ValueError(f"guard policy {name} has no version {candidate_version}")
    if state.version == candidate_version:
        raise ValueError(f"label {label!r} of guard policy {name} already points at version {candidate_version}")
    return GuardPolicyBundle(
        name=name, label=label, baseline_version=state.version, candidate_version=candidate_version
    )
