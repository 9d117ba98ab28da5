"""The service guard detectors as the gateway builds them (`ServiceDetectors`), through real botocore
clients against the local emulator: a policy naming them changes the verdict; the guardrail's masking
is a redact and its block a block; errors, unknown guardrails and slow answers follow the fail mode."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from llmops.adapters.bedrock_guardrails import BedrockGuardrailDetector, default_bedrock_runtime_client
from llmops.adapters.comprehend import ComprehendPiiDetector, default_comprehend_client
from llmops.application.guard_detectors import ServiceDetectors, converse_guardrail_config
from llmops.domain.guard import Action, Direction, GuardEngine, GuardPolicy
from llmops.domain.guard.service_detectors import DetectorUnavailableError, GuardUnavailableError
from llmops.local.emulators import FaultSpec
from llmops.local.emulators.guardrail_services import GuardrailServicesEmulator
from tests.integration.guardrail_services.conftest import POLICY_GUARDRAIL_ID

TEXT = "Please ship to Dr. Alan Turing at 221 Baker Street, London today."
GUARDRAIL = {"guardrail_id": POLICY_GUARDRAIL_ID, "version": "1"}


def engine(policy: dict[str, Any]) -> GuardEngine:
    resolved = GuardPolicy.from_mapping(policy)
    return GuardEngine(resolved, service_detectors=ServiceDetectors()(resolved))


def test_the_adapters_find_person_and_address(guardrail_emulator: GuardrailServicesEmulator) -> None:
    comprehend = ComprehendPiiDetector(default_comprehend_client).findings(TEXT)
    guardrail = BedrockGuardrailDetector(default_bedrock_runtime_client, guardrail_id=POLICY_GUARDRAIL_ID).findings(
        TEXT
    )
    for findings in (comprehend, guardrail):
        assert {(f.type, TEXT[f.start : f.end]) for f in findings} == {
            ("PERSON", "Alan Turing"),
            ("ADDRESS", "221 Baker Street, London"),
        }


def test_comprehend_chunks_long_text_and_maps_offsets(guardrail_emulator: GuardrailServicesEmulator) -> None:
    filler = "lorem ipsum dolor sit amet " * 10
    text = filler + TEXT + " " + filler + "Contact Mrs. Grace Hopper."
    findings = ComprehendPiiDetector(default_comprehend_client, max_chunk_bytes=200).findings(text)
    assert [text[f.start : f.end] for f in findings if f.type == "PERSON"] == ["Alan Turing", "Grace Hopper"]


@pytest.mark.parametrize("policy", [{"comprehend": {}}, {"bedrock_guardrail": GUARDRAIL}])
def test_a_policy_naming_a_detector_changes_the_verdict(
    guardrail_emulator: GuardrailServicesEmulator, policy: dict[str, Any]
) -> None:
    assert engine({}).scan(TEXT, "input").action is Action.ALLOW  # off by default: no call, no finding
    result = engine(policy).scan(TEXT, "input")
    assert result.action is Action.REDACT
    assert result.redacted_text == "Please ship to Dr. [PERSON_1] at [ADDRESS_1] today."


def test_comprehend_entity_types_and_min_score_select_what_counts(
    guardrail_emulator: GuardrailServicesEmulator,
) -> None:
    only_names = engine({"comprehend": {"entity_types": {"NAME": "PERSON"}}}).scan(TEXT, "input")
    assert only_names.redacted_text == "Please ship to Dr. [PERSON_1] at 221 Baker Street, London today."
    assert engine({"comprehend": {"min_score": 1.0}}).scan(TEXT, "input").action is Action.ALLOW


def test_the_guardrails_block_blocks(guardrail_emulator: GuardrailServicesEmulator) -> None:
    # The emulated guardrail blocks SSNs (its own verdict), denied topics and blocked words.
    policy = {"bedrock_guardrail": GUARDRAIL, "detectors": ["secrets", "injection"]}  # no built-in PII
    ssn = engine(policy).guard_input(["my SSN is 536-22-1234"])
    assert ssn.blocked_by is not None
    assert (ssn.blocked_by.type, ssn.blocked_by.detector) == ("US_SSN", "bedrock_guardrail")
    topic = engine(policy).guard_input(["Which stocks should I buy?"])
    assert topic.blocked_by is not None
    assert topic.blocked_by.type == "DENIED_TOPIC"


def test_the_output_side_masks_names_in_completions(guardrail_emulator: GuardrailServicesEmulator) -> None:
    verdict = engine({"bedrock_guardrail": GUARDRAIL}).guard_output("I forwarded it to Dr. Alan Turing.")
    assert verdict.text == "I forwarded it to Dr. [PERSON_1]."
    input_only = engine({"bedrock_guardrail": {**GUARDRAIL, "stages": ["input"]}})
    assert input_only.guard_output("I forwarded it to Dr. Alan Turing.").action is Action.ALLOW


@pytest.mark.parametrize("fault", [FaultSpec(error_rate=1.0), FaultSpec(throttle_rate=1.0)])
def test_service_failures_fail_closed_unless_the_policy_says_open(
    guardrail_emulator: GuardrailServicesEmulator, fault: FaultSpec
) -> None:
    guardrail_emulator.faults.set("comprehend", fault)
    guardrail_emulator.faults.set(f"guardrail:{POLICY_GUARDRAIL_ID}", fault)
    for name, settings in (("comprehend", {}), ("bedrock_guardrail", GUARDRAIL)):
        closed = engine({name: settings}).guard_input([TEXT])
        with pytest.raises(GuardUnavailableError) as refused:
            closed.raise_if_blocked()
        assert refused.value.status == 503
        assert "Turing" not in refused.value.message
        opened = engine({name: {**settings, "fail_mode": "open"}}).guard_input([TEXT])
        assert opened.action is Action.ALLOW
        assert [d.finding.type for d in opened.decisions] == ["DETECTOR_UNAVAILABLE"]


def test_an_unknown_guardrail_is_an_unavailable_detector(guardrail_emulator: GuardrailServicesEmulator) -> None:
    detector = ServiceDetectors()(GuardPolicy.from_mapping({"bedrock_guardrail": {"guardrail_id": "nosuch1"}}))[0]
    with pytest.raises(DetectorUnavailableError) as failed:
        detector.detect(TEXT, Direction.INPUT)
    assert failed.value.reason == "ResourceNotFoundException"


def test_a_slow_service_is_cut_at_the_policys_timeout(guardrail_emulator: GuardrailServicesEmulator) -> None:
    guardrail_emulator.faults.set(f"guardrail:{POLICY_GUARDRAIL_ID}", FaultSpec(latency_ms=3_000))
    started = time.monotonic()
    verdict = engine({"bedrock_guardrail": {**GUARDRAIL, "timeout_s": 0.3}}).guard_input([TEXT])
    assert time.monotonic() - started < 2.0
    assert verdict.blocked_by is not None
    assert verdict.blocked_by.type == "DETECTOR_UNAVAILABLE"


def _converse(**extra: Any) -> Any:
    client = default_bedrock_runtime_client(5.0)
    return client.converse(
        modelId="amazon.nova-lite-v1:0", messages=[{"role": "user", "content": [{"text": "Hello"}]}], **extra
    )


def test_the_bedrock_emulator_accepts_the_gateways_guardrail_config(
    guardrail_emulator: GuardrailServicesEmulator,
) -> None:
    # What the Bedrock adapter sends when a policy names a guardrail (application.guard_detectors).
    config = converse_guardrail_config(GuardPolicy.from_mapping({"bedrock_guardrail": GUARDRAIL}), stream=False)
    assert config is not None
    answer = _converse(guardrailConfig={**config, "trace": "enabled"})
    assert answer["output"]["message"]["content"]
    streamed: Any = converse_guardrail_config(GuardPolicy.from_mapping({"bedrock_guardrail": GUARDRAIL}), stream=True)
    stream = default_bedrock_runtime_client(5.0).converse_stream(
        modelId="amazon.nova-lite-v1:0",
        messages=[{"role": "user", "content": [{"text": "Hello"}]}],
        guardrailConfig=streamed,
    )
    assert any("messageStop" in event for event in stream["stream"])


def test_the_bedrock_emulator_refuses_a_malformed_guardrail_config(
    guardrail_emulator: GuardrailServicesEmulator,
) -> None:
    with pytest.raises(ClientError) as refused:
        _converse(guardrailConfig={"guardrailIdentifier": "Not-An-Id", "guardrailVersion": "1"})
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "guardrailIdentifier" in str(refused.value)
