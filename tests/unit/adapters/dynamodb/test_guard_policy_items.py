"""Guard policy versions and labels as Prompts table items (the `guard#` namespace)."""

from __future__ import annotations

import pytest

from llmops.adapters.dynamodb.guard_policy_items import (
    GUARD_POLICY_PK_PREFIX,
    guard_policy_pk,
    guard_policy_version_from_item,
    guard_policy_version_item,
)
from llmops.adapters.dynamodb.prompt_items import label_from_item, label_item, prompt_id_from_pk
from llmops.domain.guard_policy_registry import GuardPolicyDraft, GuardPolicyVersion
from llmops.domain.registry import LabelState


def test_a_version_round_trips_under_the_guard_namespace() -> None:
    version = GuardPolicyVersion("strict", 3, {"actions": {"EMAIL": "block"}}, "ana", "tighten", 12.5)
    item = guard_policy_version_item(version)
    assert item["pk"] == {"S": "guard#strict"}
    assert item["sk"] == {"S": "v#0000003"}
    assert guard_policy_version_from_item(item) == version
    assert item["fingerprint"] == {"S": version.fingerprint}


def test_labels_reuse_the_prompt_label_item_with_the_namespace() -> None:
    state = LabelState("strict", "production", 2, (1,), 5.0, "ana")
    item = label_item(state, GUARD_POLICY_PK_PREFIX)
    assert item["pk"] == {"S": guard_policy_pk("strict")}
    assert label_from_item(item) == state
    assert prompt_id_from_pk("guard#strict", GUARD_POLICY_PK_PREFIX) == "strict"
    assert label_item(state)["pk"] == {"S": "prompt#strict"}


def test_a_draft_is_validated_with_the_guard_policy_format() -> None:
    assert GuardPolicyDraft("strict", {"actions": {"EMAIL": "block"}}).problems() == []
    problems = GuardPolicyDraft("bad name!", {"nonsense": True}).problems()
    assert len(problems) == 2
    assert "unknown field" in problems[1]


@pytest.mark.parametrize("note", ["", "different note"])
def test_the_fingerprint_ignores_authorship(note: str) -> None:
    base = GuardPolicyDraft("strict", {"actions": {"EMAIL": "block"}})
    assert GuardPolicyDraft("strict", {"actions": {"EMAIL": "block"}}, "bob", note).fingerprint == base.fingerprint
    assert GuardPolicyDraft("strict", {"actions": {"EMAIL": "allow"}}).fingerprint != base.fingerprint
