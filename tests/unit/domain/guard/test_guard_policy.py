"""GuardPolicy: product defaults, layering a tenant's JSON over them, and validation messages."""

from __future__ import annotations

import json

import pytest

from llmops.domain.guard import Action, Direction, GuardPolicy, PolicyError


def test_defaults() -> None:
    policy = GuardPolicy.default()
    assert policy.action_for("EMAIL", Direction.INPUT) is Action.REDACT
    assert policy.action_for("AWS_SECRET_KEY", Direction.INPUT) is Action.REDACT
    assert policy.action_for("AWS_SECRET_KEY", Direction.OUTPUT) is Action.REDACT
    assert policy.action_for("PROMPT_INJECTION", Direction.INPUT) is Action.BLOCK
    assert policy.action_for("DENIED_TOPIC", Direction.INPUT) is Action.BLOCK
    assert policy.action_for("SYSTEM_PROMPT_LEAK", Direction.OUTPUT) is Action.BLOCK
    assert policy.action_for("GROUNDING", Direction.OUTPUT) is Action.LOG_ONLY
    assert policy.action_for("SOMETHING_NEW", Direction.INPUT) is Action.REDACT
    assert "comprehend" not in policy.enabled_detectors


def test_from_mapping_layers_over_the_default() -> None:
    policy = GuardPolicy.from_mapping(
        {
            "actions": {"EMAIL": "pseudonymize"},
            "output_actions": {"EMAIL": "block", "GROUNDING": "block"},
            "thresholds": {"injection_block": 0.9, "grounding": 0.7},
            "denied_words": ["falcon"],
            "denied_topics": {"weapons": ["nerve agent"]},
            "max_input_chars": 5000,
            "detectors": ["pii", "secrets", "comprehend"],
            "system_prompt_leak_check": False,
        }
    )
    assert policy.action_for("EMAIL", Direction.INPUT) is Action.PSEUDONYMIZE
    assert policy.action_for("EMAIL", Direction.OUTPUT) is Action.BLOCK
    assert policy.action_for("PHONE_NUMBER", Direction.INPUT) is Action.REDACT  # untouched default
    assert policy.injection_block_threshold == 0.9
    assert policy.injection_flag_threshold == 0.5
    assert policy.grounding_threshold == 0.7
    assert policy.denied_topics == {"weapons": ("nerve agent",)}
    assert policy.enabled_detectors == frozenset({"pii", "secrets", "comprehend"})
    assert policy.max_input_chars == 5000 and policy.max_output_chars == 200_000
    assert not policy.system_prompt_leak_check


def test_round_trip_through_json() -> None:
    policy = GuardPolicy.from_mapping({"actions": {"EMAIL": "allow"}, "denied_words": ["x"]})
    again = GuardPolicy.from_mapping(json.loads(json.dumps(policy.to_mapping())))
    assert again == policy


def test_validation_reports_every_problem_with_its_field() -> None:
    with pytest.raises(PolicyError) as caught:
        GuardPolicy.from_mapping(
            {
                "actions": {"EMAIL": "shred", "lowercase": "block", "PROMPT_INJECTION": "redact"},
                "thresholds": {"injection_block": 1.5, "vibes": 0.2},
                "denied_words": "not-a-list",
                "max_input_chars": 0,
                "detectors": ["pii", "telepathy"],
                "system_prompt_leak_check": "yes",
                "colour": "blue",
            }
        )
    errors = caught.value.errors
    joined = " | ".join(errors)
    for expected in (
        "unknown field 'colour'",
        "actions.EMAIL: 'shred' is not one of allow, log_only, redact, pseudonymize, block",
        "actions.lowercase",
        "actions.PROMPT_INJECTION",
        "thresholds.injection_block",
        "thresholds.vibes",
        "denied_words",
        "max_input_chars",
        "detectors: unknown telepathy",
        "system_prompt_leak_check",
    ):
        assert expected in joined, expected
    assert isinstance(caught.value, ValueError)


def test_flag_threshold_may_not_exceed_block_threshold() -> None:
    with pytest.raises(PolicyError, match="injection_flag must not exceed injection_block"):
        GuardPolicy.from_mapping({"thresholds": {"injection_flag": 0.9, "injection_block": 0.6}})


def test_policy_must_be_an_object() -> None:
    with pytest.raises(PolicyError):
        GuardPolicy.from_mapping(["EMAIL"])  # type: ignore[arg-type]
