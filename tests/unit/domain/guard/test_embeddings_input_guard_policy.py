"""The guard policy's `embeddings_input_guard`: redact by default, block or off by choice, refused at
push (and at gateway start) when it is anything else."""

from __future__ import annotations

import pytest

from llmops.domain.guard.policy import EmbeddingsInputGuard, GuardPolicy, PolicyError


def test_the_default_guards_embeddings_as_chat_input() -> None:
    assert GuardPolicy.default().embeddings_input_guard is EmbeddingsInputGuard.REDACT
    assert GuardPolicy.default().to_mapping()["embeddings_input_guard"] == "redact"


@pytest.mark.parametrize("mode", ["redact", "block", "off"])
def test_each_mode_round_trips(mode: str) -> None:
    policy = GuardPolicy.from_mapping({"embeddings_input_guard": mode})
    assert policy.embeddings_input_guard is EmbeddingsInputGuard(mode)
    assert GuardPolicy.from_mapping(policy.to_mapping()) == policy


@pytest.mark.parametrize("value", ["redacted", True, None, 1])
def test_anything_else_is_refused_naming_the_field(value: object) -> None:
    with pytest.raises(PolicyError) as error:
        GuardPolicy.from_mapping({"embeddings_input_guard": value})
    assert error.value.errors == (f"embeddings_input_guard: {value!r} is not one of redact, block, off",)
