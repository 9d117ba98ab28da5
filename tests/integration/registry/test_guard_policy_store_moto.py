"""The guard policy registry on the Prompts table (moto): versions, labels, namespaces."""

from __future__ import annotations

from typing import Any

import pytest

from llmops.adapters.dynamodb.guard_policy_store import DynamoGuardPolicyStore
from llmops.adapters.dynamodb.prompt_store import DynamoPromptStore
from llmops.application.guard_policies import GuardPolicies
from llmops.domain.guard import Action, Direction
from llmops.domain.guard_policy_registry import GuardPolicyDraft, GuardPolicyNotFoundError
from llmops.domain.prompts import PromptDraft

STRICT = {"actions": {"EMAIL": "block"}}
LENIENT = {"actions": {"EMAIL": "allow"}}


@pytest.fixture
def store(dynamodb: Any, names: dict[str, str]) -> DynamoGuardPolicyStore:
    return DynamoGuardPolicyStore(dynamodb, names["Prompts"])


def test_push_validates_numbers_versions_and_skips_unchanged_content(store: DynamoGuardPolicyStore) -> None:
    first = store.push(GuardPolicyDraft("strict", STRICT, author="ana"), now=1.0)
    assert (first.version.version, first.created) == (1, True)
    assert store.push(GuardPolicyDraft("strict", STRICT), now=2.0).created is False
    second = store.push(GuardPolicyDraft("strict", LENIENT, change_note="relax"), now=3.0)
    assert second.version.ref == "strict@2"
    assert store.get_version("strict", 1) == first.version
    assert [v.version for v in store.list_versions("strict")] == [1, 2]
    with pytest.raises(ValueError, match="unknown field"):
        store.push(GuardPolicyDraft("strict", {"nonsense": 1}), now=4.0)


def test_labels_move_and_roll_back(store: DynamoGuardPolicyStore) -> None:
    store.push(GuardPolicyDraft("strict", STRICT), now=1.0)
    store.push(GuardPolicyDraft("strict", LENIENT), now=2.0)
    store.set_label("strict", "production", 1, now=3.0, actor="ana")
    moved = store.set_label("strict", "production", 2, now=4.0, actor="ana")
    assert (moved.version, moved.history) == (2, (1,))
    back = store.rollback("strict", "production", now=5.0)
    assert (back.version, back.history) == (1, ())
    with pytest.raises(GuardPolicyNotFoundError):
        store.set_label("strict", "production", 9, now=6.0)


def test_namespaces_do_not_mix(store: DynamoGuardPolicyStore, dynamodb: Any, names: dict[str, str]) -> None:
    prompts = DynamoPromptStore(dynamodb, names["Prompts"])
    prompts.push(PromptDraft("strict", "Q: {{ q }}", ("q",)), now=1.0)
    prompts.set_label("strict", "production", 1, now=1.0)
    store.push(GuardPolicyDraft("strict", STRICT), now=1.0)
    store.push(GuardPolicyDraft("strict", LENIENT), now=1.0)
    store.set_label("strict", "production", 2, now=2.0)

    assert [(s.subject, s.latest_version, s.labels) for s in store.list_policies()] == [
        ("strict", 2, {"production": 2})
    ]
    assert [(s.prompt_id, s.latest_version, s.labels) for s in prompts.list_prompts()] == [
        ("strict", 1, {"production": 1})
    ]
    assert prompts.get_label("strict", "production").version == 1  # type: ignore[union-attr]


def test_the_gateway_serves_the_production_version(store: DynamoGuardPolicyStore) -> None:
    store.push(GuardPolicyDraft("strict", STRICT), now=1.0)
    store.push(GuardPolicyDraft("strict", LENIENT), now=1.0)
    store.set_label("strict", "production", 1, now=2.0)
    now = [0.0]
    guards = GuardPolicies(registry=store, ttl_s=30.0, clock=lambda: now[0])
    assert guards("strict").policy.action_for("EMAIL", Direction.INPUT) is Action.BLOCK

    store.set_label("strict", "production", 2, now=3.0)
    assert guards("strict").policy.action_for("EMAIL", Direction.INPUT) is Action.BLOCK  # label cached
    now[0] = 31.0
    assert guards("strict").policy.action_for("EMAIL", Direction.INPUT) is Action.ALLOW
