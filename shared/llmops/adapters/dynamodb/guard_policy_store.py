"""The guard policy registry: versioned, labelled guard policies in the Prompts table (`guard#`).

Labels, listing and the conditional writes are the prompt store's own, run in the `guard#`
namespace; only the version items (a policy document instead of a template) are specific.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmops.adapters.dynamodb.prompt_items import (
    GUARD_POLICY_PK_PREFIX,
    VERSION_SK_PREFIX,
    guard_policy_version_from_item,
    guard_policy_version_item,
    version_sk,
)
from llmops.adapters.dynamodb.prompt_store import DynamoPromptStore, PromptSummary
from llmops.domain.guard_policy_registry import GuardPolicyDraft, GuardPolicyVersion, validate_policy_name
from llmops.domain.prompts import LabelState

__all__ = ["DynamoGuardPolicyStore", "GuardPolicyPushResult"]

_MAX_WRITE_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class GuardPolicyPushResult:
    version: GuardPolicyVersion
    created: bool  # False: the latest version already had this content, nothing was written


class DynamoGuardPolicyStore:
    """`client` is a boto3 DynamoDB client (standard retries); `table` the Prompts table name."""

    def __init__(self, client: Any, table: str) -> None:
        self._namespace = DynamoPromptStore(client, table, pk_prefix=GUARD_POLICY_PK_PREFIX)

    # -- reads (GuardPolicySource) ---------------------------------------------------------------

    def get_version(self, name: str, version: int) -> GuardPolicyVersion | None:
        item = self._namespace.get_raw_item(name, version_sk(version))
        return guard_policy_version_from_item(item) if item else None

    def get_label(self, name: str, label: str) -> LabelState | None:
        return self._namespace.get_label(name, label)

    def latest_version(self, name: str) -> GuardPolicyVersion | None:
        item = self._namespace.latest_raw_version(name)
        return guard_policy_version_from_item(item) if item else None

    def list_versions(self, name: str) -> list[GuardPolicyVersion]:
        return [guard_policy_version_from_item(i) for i in self._namespace.query_raw_items(name, VERSION_SK_PREFIX)]

    def list_labels(self, name: str) -> list[LabelState]:
        return self._namespace.list_labels(name)

    def list_policies(self) -> list[PromptSummary]:
        """Every policy with its latest version and labels (`prompt_id` is the policy name)."""
        return self._namespace.list_prompts()

    # -- writes ----------------------------------------------------------------------------------

    def push(self, draft: GuardPolicyDraft, now: float) -> GuardPolicyPushResult:
        """Stores `draft` as the next version; identical to the latest version is a no-op."""
        problems = draft.problems()
        if problems:
            raise ValueError("; ".join(problems))
        for _ in range(_MAX_WRITE_ATTEMPTS):
            latest = self.latest_version(draft.name)
            if latest is not None and latest.fingerprint == draft.fingerprint:
                return GuardPolicyPushResult(latest, created=False)
            version = draft.to_version((latest.version if latest else 0) + 1, now)
            if self._namespace.put_new_version_item(guard_policy_version_item(version)):
                return GuardPolicyPushResult(version, created=True)
        raise RuntimeError(f"could not allocate a version of guard policy {draft.name}: too much contention")

    def set_label(self, name: str, label: str, version: int, now: float, actor: str = "") -> LabelState:
        """Points `label` at `version` (which must exist); raises `PromptNotFoundError` if not."""
        return self._namespace.set_label(validate_policy_name(name), label, version, now, actor)

    def rollback(self, name: str, label: str, now: float, actor: str = "") -> LabelState:
        return self._namespace.rollback(name, label, now, actor)
