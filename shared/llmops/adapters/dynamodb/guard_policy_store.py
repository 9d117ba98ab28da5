"""The guard policy registry: versioned, labelled guard policies in the Prompts table (`guard#`).

The registry store (`registry_store`) with the guard policy kind and its items
(`guard_policy_items`); subjects are policy names.
"""

from __future__ import annotations

from typing import Any

from llmops.adapters.dynamodb.guard_policy_items import GUARD_POLICY_CODEC
from llmops.adapters.dynamodb.registry_store import DynamoRegistryStore
from llmops.domain.guard_policy_registry import GUARD_POLICIES, GuardPolicyVersion
from llmops.domain.registry import PushResult, SubjectSummary

__all__ = ["DynamoGuardPolicyStore", "GuardPolicyPushResult"]

GuardPolicyPushResult = PushResult[GuardPolicyVersion]


class DynamoGuardPolicyStore(DynamoRegistryStore[GuardPolicyVersion]):
    """`client` is a boto3 DynamoDB client (standard retries); `table` the Prompts table name."""

    def __init__(self, client: Any, table: str) -> None:
        super().__init__(client, table, GUARD_POLICIES, GUARD_POLICY_CODEC)

    def list_policies(self) -> list[SubjectSummary]:
        """Every policy (`subject`: its name) with its latest version and labels."""
        return self.list_subjects()
