"""Operating a running canary from outside the state machine: answer its approval request, abort it,
and build release bundles from the registry.

Aborting stops the execution and then restores the baseline weights (and a release bundle's
labels) itself, because a stopped execution runs no rollback states.

Why here and not in `llmops.application`: no Lambda runs this; the CLI (`llmops canary`) and the
workflow tests do, against AWS or the local stack. It sits with the state machines whose input,
history and rollback requests it reads (`canary_input`, `history`, `canary_rollback`), and it
talks to AWS only through the `CanaryControlPlane` port, which
`llmops.adapters.stepfunctions_canary.AwsCanaryControlPlane` implements.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmops.config.tables import guard_policy_pk, label_sk, prompt_pk
from llmops.domain.prompts import scoped_prompt_id
from llmops.domain.registry import RegistrySource, RegistryVersion
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
    "CanaryControlPlane",
    "LabelledVersions",
    "abort_canary",
    "approve_canary",
    "guard_policy_bundle",
    "prompt_bundle",
]


class CanaryControlPlane(Protocol):
    """The Step Functions, DynamoDB and SageMaker calls a canary operator makes."""

    def describe_execution(self, execution_arn: str) -> tuple[str, dict[str, Any]]:
        """The execution's status and its input document."""
        ...

    def stop_execution(self, execution_arn: str, error: str, cause: str) -> None: ...

    def execution_history(self, execution_arn: str) -> list[dict[str, Any]]: ...

    def send_task_success(self, token: str, output: Mapping[str, Any]) -> None: ...

    def send_task_failure(self, token: str, error: str, cause: str) -> None: ...

    def get_item(self, table: str, key: Mapping[str, str]) -> dict[str, Any] | None:
        """The item at {"pk": ..., "sk": ...} read consistently (low-level JSON); None when absent."""
        ...

    def update_item(self, request: Mapping[str, Any]) -> None: ...

    def conditional_update_item(self, request: Mapping[str, Any]) -> bool:
        """False when the request's condition no longer holds."""
        ...

    def update_endpoint_weights(self, request: Mapping[str, Any]) -> None:
        """Retries while the endpoint is mid-update and rejects weight changes."""
        ...


# A versioned-label registry as a release bundle reads it (prompts or guard policies).
LabelledVersions = RegistrySource[RegistryVersion]


@dataclass(frozen=True, slots=True)
class AbortResult:
    execution_arn: str
    status_before: str
    stopped: bool
    canary: CanaryInput
    prompt: PromptLabelRollback = field(default_factory=lambda: PromptLabelRollback(PromptRestore.NO_BUNDLE))
    guard_policy: PromptLabelRollback = field(default_factory=lambda: PromptLabelRollback(PromptRestore.NO_BUNDLE))


def _restore_label(
    plane: CanaryControlPlane,
    bundle: PromptBundle | GuardPolicyBundle | None,
    prompts_table: str,
    execution_arn: str,
    now: float,
) -> PromptLabelRollback:
    if bundle is None:
        return PromptLabelRollback(PromptRestore.NO_BUNDLE)
    pk = prompt_pk(bundle.scoped_id) if isinstance(bundle, PromptBundle) else guard_policy_pk(bundle.name)
    item = plane.get_item(prompts_table, {"pk": pk, "sk": label_sk(bundle.label)})
    # Execution ARNs end with the execution name, which the state machine wrote as the mover.
    plan = label_rollback(bundle, prompts_table, item, execution_arn.rsplit(":", 1)[-1], now)
    if plan.request is None:
        return plan
    if not plane.conditional_update_item(plan.request):
        # Moved by someone else between our read and our write: theirs is the newer decision.
        return PromptLabelRollback(PromptRestore.CHANGED, current_version=plan.current_version)
    return plan


def abort_canary(
    plane: CanaryControlPlane,
    execution_arn: str,
    routes_table: str,
    prompts_table: str = "",
    clock: Callable[[], float] = time.time,
) -> AbortResult:
    """Stops the execution (if it still runs) and puts all traffic back on the baseline.

    Rolls back even when the execution has already ended: after a promotion that is the instant
    rollback the kept baseline exists for. A release bundle's prompt label goes back to its
    baseline version too, unless someone moved it since the canary did (see `PromptRestore`).
    """
    status, execution_input = plane.describe_execution(execution_arn)
    canary = CanaryInput.from_execution_input(execution_input)
    if (canary.prompt is not None or canary.guard_policy is not None) and not prompts_table:
        raise ValueError("this canary moves a label: abort_canary needs the Prompts table name")
    stopped = False
    if status == "RUNNING":
        plane.stop_execution(
            execution_arn,
            error="CanaryAborted",
            cause=f"Aborted by an operator; alias {canary.alias} restored to baseline {canary.baseline.target}.",
        )
        stopped = True
    # After the stop, so no step of the execution can write weights after ours. Same order as the
    # state machine's rollback: route, prompt label, guard policy label, endpoint variants.
    plane.update_item(route_rollback_request(canary, routes_table))
    prompt = _restore_label(plane, canary.prompt, prompts_table, execution_arn, clock())
    guard_policy = _restore_label(plane, canary.guard_policy, prompts_table, execution_arn, clock())
    endpoint_request = endpoint_rollback_request(canary)
    if endpoint_request is not None:
        plane.update_endpoint_weights(endpoint_request)
    return AbortResult(
        execution_arn=execution_arn,
        status_before=status,
        stopped=stopped,
        canary=canary,
        prompt=prompt,
        guard_policy=guard_policy,
    )


def approve_canary(plane: CanaryControlPlane, execution_arn: str, reject: bool = False) -> bool:
    """Answers the execution's pending approval request; False when none is pending."""
    token = pending_approval_token(plane.execution_history(execution_arn))
    if token is None:
        return False
    if reject:
        plane.send_task_failure(token, error="ApprovalRejected", cause="Rejected by an operator.")
    else:
        plane.send_task_success(token, {"approved": True})
    return True


def prompt_bundle(
    store: LabelledVersions, prompt_id: str, label: str, candidate_version: int, tenant_id: str | None = None
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


def guard_policy_bundle(store: LabelledVersions, name: str, label: str, candidate_version: int) -> GuardPolicyBundle:
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
