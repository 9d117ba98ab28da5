"""Service guard detectors in the engine, with fakes: a policy naming one changes the verdict, the
guardrail's own verdict (mask, block, detect) is honoured, stages and both fail modes hold."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from llmops.cli.guard_policies import load_guard_policy_file
from llmops.domain.guard import Action, Direction, Finding, GuardEngine, GuardPolicy
from llmops.domain.guard.policy import GATEWAY_DETECTORS, PolicyError
from llmops.domain.guard.service_detectors import (
    BedrockGuardrailSettings,
    ComprehendSettings,
    Detection,
    DetectorUnavailableError,
    FailMode,
    GuardUnavailableError,
)

TEXT = "Please ship to Alan Turing at 221 Baker Street today."
GUARDRAIL = {"guardrail_id": "gr1abc", "version": "3"}


@dataclass
class FakeGuardrail:
    """Reports what a guardrail configured to mask names and block addresses would."""

    action_for_name: str = "ANONYMIZED"
    fail: bool = False
    calls: list[Direction] = field(default_factory=list)
    name: str = "bedrock_guardrail"

    def detect(self, text: str, direction: Direction) -> Detection:
        self.calls.append(direction)
        if self.fail:
            raise DetectorUnavailableError(self.name, "ThrottlingException")
        found: dict[Finding, Action] = {}
        actions = {"ANONYMIZED": Action.REDACT, "BLOCKED": Action.BLOCK, "NONE": Action.LOG_ONLY}
        start = text.find("Alan Turing")
        if start >= 0:
            found[Finding("PERSON", start, start + 11, 1.0, self.name)] = actions[self.action_for_name]
        return Detection(tuple(found), found)


@dataclass
class FakeComprehend:
    fail: bool = False
    name: str = "comprehend"

    def detect(self, text: str, direction: Direction) -> Detection:
        if self.fail:
            raise DetectorUnavailableError(self.name, "timeout")
        start = text.find("Alan Turing")
        return Detection((Finding("PERSON", start, start + 11, 0.99, self.name),) if start >= 0 else ())


def engine(policy: dict[str, Any], *detectors: Any) -> GuardEngine:
    return GuardEngine(GuardPolicy.from_mapping(policy), service_detectors=detectors)


# -- policy -----------------------------------------------------------------------------------------


def test_an_object_configures_and_enables_each_detector_and_round_trips() -> None:
    policy = GuardPolicy.from_mapping(
        {
            "bedrock_guardrail": {**GUARDRAIL, "stages": ["input"], "timeout_s": 1.5, "fail_mode": "open"},
            "comprehend": {"language": "es", "entity_types": {"NAME": "PERSON"}, "min_score": 0.8},
        }
    )
    assert {"bedrock_guardrail", "comprehend"} <= policy.enabled_detectors
    assert policy.service_settings("bedrock_guardrail") == BedrockGuardrailSettings(
        stages=frozenset({Direction.INPUT}), timeout_s=1.5, fail_mode=FailMode.OPEN, guardrail_id="gr1abc", version="3"
    )
    comprehend = policy.service_settings("comprehend")
    assert isinstance(comprehend, ComprehendSettings)
    assert (comprehend.language, dict(comprehend.entity_types), comprehend.min_score) == ("es", {"NAME": "PERSON"}, 0.8)
    assert comprehend.fail_mode is FailMode.CLOSED  # a guard fails closed unless the tenant says otherwise
    assert GuardPolicy.from_mapping(policy.to_mapping()) == policy


def test_comprehend_named_in_detectors_alone_runs_with_defaults_but_a_guardrail_needs_its_id() -> None:
    policy = GuardPolicy.from_mapping({"detectors": ["pii", "comprehend"]})
    assert policy.service_settings("comprehend") == ComprehendSettings()
    with pytest.raises(PolicyError, match="'bedrock_guardrail' needs a 'bedrock_guardrail' object"):
        GuardPolicy.from_mapping({"detectors": ["pii", "bedrock_guardrail"]})


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"bedrock_guardrail": {"version": "1"}}, "bedrock_guardrail.guardrail_id: required"),
        ({"bedrock_guardrail": {**GUARDRAIL, "version": "v1"}}, "bedrock_guardrail.version"),
        ({"bedrock_guardrail": {**GUARDRAIL, "timeout_s": 0}}, "bedrock_guardrail.timeout_s"),
        ({"bedrock_guardrail": {**GUARDRAIL, "timeout_s": 60}}, "bedrock_guardrail.timeout_s"),
        ({"bedrock_guardrail": {**GUARDRAIL, "fail_mode": "maybe"}}, "bedrock_guardrail.fail_mode"),
        ({"bedrock_guardrail": {**GUARDRAIL, "stages": ["both"]}}, "bedrock_guardrail.stages"),
        ({"bedrock_guardrail": {**GUARDRAIL, "region": "x"}}, "unknown field 'region'"),
        ({"comprehend": {"entity_types": {"NAME": "person"}}}, "comprehend.entity_types"),
        ({"comprehend": {"min_score": 1.5}}, "comprehend.min_score"),
        ({"comprehend": {"language": "english"}}, "comprehend.language"),
        ({"comprehend": []}, "comprehend: must be an object"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(document: dict[str, Any], problem: str) -> None:
    with pytest.raises(PolicyError) as refused:
        GuardPolicy.from_mapping(document)
    assert problem in str(refused.value)


def test_guardrail_arns_are_accepted() -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:guardrail/gr1abc"
    policy = GuardPolicy.from_mapping({"bedrock_guardrail": {"guardrail_id": arn, "version": "DRAFT"}})
    settings = policy.service_settings("bedrock_guardrail")
    assert isinstance(settings, BedrockGuardrailSettings)
    assert settings.guardrail_id == arn


# -- verdicts ---------------------------------------------------------------------------------------


def test_a_policy_naming_the_guardrail_changes_the_verdict() -> None:
    guardrail = FakeGuardrail()
    without = engine({}, guardrail).guard_input([TEXT])
    assert without.action is Action.ALLOW
    assert guardrail.calls == []  # not named: never called
    masked = engine({"bedrock_guardrail": GUARDRAIL}, guardrail).guard_input([TEXT])
    assert masked.action is Action.REDACT
    assert masked.texts == ("Please ship to [PERSON_1] at 221 Baker Street today.",)
    assert guardrail.calls == [Direction.INPUT]


def test_the_guardrails_block_blocks_and_its_detection_is_only_logged() -> None:
    blocked = engine({"bedrock_guardrail": GUARDRAIL}, FakeGuardrail("BLOCKED")).guard_input([TEXT])
    assert blocked.blocked
    assert blocked.blocked_by is not None
    assert (blocked.blocked_by.type, blocked.blocked_by.detector) == ("PERSON", "bedrock_guardrail")
    detected = engine({"bedrock_guardrail": GUARDRAIL}, FakeGuardrail("NONE")).guard_input([TEXT])
    assert detected.action is Action.ALLOW
    assert [d.action for d in detected.decisions] == [Action.LOG_ONLY]


def test_the_guardrails_verdict_wins_over_the_policys_actions() -> None:
    policy = {"bedrock_guardrail": GUARDRAIL, "actions": {"PERSON": "block"}}
    assert engine(policy, FakeGuardrail("ANONYMIZED")).guard_input([TEXT]).action is Action.REDACT


def test_comprehend_findings_take_the_policys_actions() -> None:
    assert engine({}, FakeComprehend()).guard_input([TEXT]).action is Action.ALLOW
    redacted = engine({"comprehend": {}}, FakeComprehend()).guard_input([TEXT])
    assert redacted.texts == ("Please ship to [PERSON_1] at 221 Baker Street today.",)
    blocked = engine({"comprehend": {}, "actions": {"PERSON": "block"}}, FakeComprehend()).guard_input([TEXT])
    assert blocked.blocked


def test_stages_choose_the_directions_and_output_findings_are_redacted() -> None:
    guardrail = FakeGuardrail()
    input_only = engine({"bedrock_guardrail": {**GUARDRAIL, "stages": ["input"]}}, guardrail)
    assert input_only.guard_output(TEXT).action is Action.ALLOW
    assert not input_only.has_extra_detectors  # the output stream need not be held for it
    both = engine({"bedrock_guardrail": GUARDRAIL}, guardrail)
    output = both.guard_output(TEXT)
    assert output.text == "Please ship to [PERSON_1] at 221 Baker Street today."
    assert both.has_extra_detectors
    assert guardrail.calls == [Direction.OUTPUT]


def test_fail_closed_blocks_with_a_retryable_503() -> None:
    verdict = engine({"bedrock_guardrail": GUARDRAIL}, FakeGuardrail(fail=True)).guard_input([TEXT])
    assert verdict.blocked
    assert verdict.blocked_by is not None
    assert (verdict.blocked_by.type, verdict.blocked_by.detector) == ("DETECTOR_UNAVAILABLE", "bedrock_guardrail")
    with pytest.raises(GuardUnavailableError) as refused:
        verdict.raise_if_blocked()
    error = refused.value
    assert (error.status, error.code, error.error_type, error.retry_after_s) == (
        503,
        "guard_unavailable",
        "api_error",
        1,
    )
    assert "Turing" not in error.message
    assert "bedrock_guardrail" in error.message


def test_fail_open_allows_with_the_failure_logged() -> None:
    policy = {"comprehend": {"fail_mode": "open"}}
    verdict = engine(policy, FakeComprehend(fail=True)).guard_input([TEXT])
    assert verdict.action is Action.ALLOW
    assert verdict.texts == (TEXT,)
    assert [(d.finding.type, d.finding.detector, d.action) for d in verdict.decisions] == [
        ("DETECTOR_UNAVAILABLE", "comprehend", Action.LOG_ONLY)
    ]
    # the built-in detectors still ran
    assert engine(policy, FakeComprehend(fail=True)).guard_input(["mail a@b.co"]).action is Action.REDACT


def test_output_fail_closed_blocks_the_completion() -> None:
    verdict = engine({"bedrock_guardrail": GUARDRAIL}, FakeGuardrail(fail=True)).guard_output(TEXT)
    assert verdict.blocked
    assert verdict.text == ""
    with pytest.raises(GuardUnavailableError):
        verdict.raise_if_blocked()


def test_blank_texts_are_not_sent() -> None:
    guardrail = FakeGuardrail()
    engine({"bedrock_guardrail": GUARDRAIL}, guardrail).guard_input(["   "])
    assert guardrail.calls == []


def test_findings_are_mapped_back_through_normalization() -> None:
    # The service sees the folded text (a zero-width space removed); the mask covers the original span.
    verdict = engine({"bedrock_guardrail": GUARDRAIL}, FakeGuardrail()).guard_input(
        ["Ship to A\u200blan Turing please"]
    )
    assert verdict.texts == ("Ship to [PERSON_1] please",)


def test_the_documented_example_policy_loads() -> None:
    path = Path(__file__).resolve().parents[4] / "docs" / "guard-policies" / "managed-detectors.yaml"
    policy = GuardPolicy.from_mapping(load_guard_policy_file(path).document, runnable_detectors=GATEWAY_DETECTORS)
    guardrail, comprehend = policy.service_settings("bedrock_guardrail"), policy.service_settings("comprehend")
    assert isinstance(guardrail, BedrockGuardrailSettings)
    assert (guardrail.guardrail_id, guardrail.version, guardrail.fail_mode) == ("abcd1234efgh", "3", FailMode.CLOSED)
    assert isinstance(comprehend, ComprehendSettings)
    assert (comprehend.stages, comprehend.fail_mode) == (frozenset({Direction.INPUT}), FailMode.OPEN)


def test_a_guardrails_block_stands_over_a_built_in_finding_on_the_same_span() -> None:
    @dataclass
    class BlocksTheSsn:
        name: str = "bedrock_guardrail"

        def detect(self, text: str, direction: Direction) -> Detection:
            start = text.find("536-22-1234")
            # A lower score than the built-in US_SSN finding: overlap resolution keeps the built-in one.
            finding = Finding("US_SSN", start, start + 11, 0.1, self.name)
            return Detection((finding,), {finding: Action.BLOCK})

    verdict = engine({"bedrock_guardrail": GUARDRAIL}, BlocksTheSsn()).guard_input(["My SSN is 536-22-1234."])
    assert verdict.blocked
    assert verdict.blocked_by is not None
    assert verdict.blocked_by.detector == "bedrock_guardrail"
