"""The size limit names its direction: an oversized completion is OUTPUT_TOO_LARGE, not INPUT_TOO_LARGE."""

from __future__ import annotations

import pytest

from llmops.domain.guard import Action, GuardEngine, GuardPolicy
from llmops.domain.guard.policy import PolicyError


def test_an_oversized_completion_is_output_too_large_and_blocked_by_default() -> None:
    engine = GuardEngine(GuardPolicy.from_mapping({"max_output_chars": 10}))
    verdict = engine.guard_output("x" * 11)
    assert verdict.action is Action.BLOCK
    assert [(f.type, f.start, f.end) for f in verdict.findings] == [("OUTPUT_TOO_LARGE", 0, 11)]
    assert verdict.blocked_by is not None
    assert "OUTPUT_TOO_LARGE" in verdict.blocked_by.message
    assert "completion" in verdict.blocked_by.message
    assert verdict.text == ""


def test_the_scan_route_reports_the_direction_it_was_asked_about() -> None:
    engine = GuardEngine(GuardPolicy.from_mapping({"max_input_chars": 10, "max_output_chars": 10}))
    assert [f.type for f in engine.scan("x" * 11, "output").findings] == ["OUTPUT_TOO_LARGE"]
    assert [f.type for f in engine.scan("x" * 11, "input").findings] == ["INPUT_TOO_LARGE"]


def test_a_tenant_may_log_oversized_completions_instead_of_blocking() -> None:
    policy = GuardPolicy.from_mapping({"max_output_chars": 10, "output_actions": {"OUTPUT_TOO_LARGE": "log_only"}})
    verdict = GuardEngine(policy).guard_output("x" * 11)
    assert verdict.action is Action.ALLOW
    assert [d.finding.type for d in verdict.decisions] == ["OUTPUT_TOO_LARGE"]
    assert verdict.text == "x" * 11


def test_output_too_large_cannot_be_masked() -> None:
    with pytest.raises(PolicyError, match="OUTPUT_TOO_LARGE"):
        GuardPolicy.from_mapping({"output_actions": {"OUTPUT_TOO_LARGE": "redact"}})
