"""The pluggable detectors through real botocore clients against the emulator, and in the engine."""

from __future__ import annotations

from typing import Any

import pytest

from llmops.adapters import aws_clients
from llmops.adapters.bedrock_guardrails import BedrockGuardrailDetector
from llmops.adapters.comprehend import ComprehendPiiDetector
from llmops.domain.errors import UpstreamUnavailableError
from llmops.domain.guard import Action, GuardEngine, GuardPolicy
from llmops.local.emulators import FaultSpec
from llmops.local.emulators.guardrail_services import GuardrailServicesEmulator

TEXT = "Please ship to Dr. Alan Turing at 221 Baker Street, London today."


def comprehend_client() -> Any:
    return aws_clients.client("comprehend", connect_timeout_s=2, read_timeout_s=5, max_attempts=1)


def comprehend_detector(**kwargs: Any) -> ComprehendPiiDetector:
    return ComprehendPiiDetector(comprehend_client, **kwargs)


def bedrock_detector(**kwargs: Any) -> BedrockGuardrailDetector:
    return BedrockGuardrailDetector(
        lambda: aws_clients.bedrock_runtime(connect_timeout_s=2, read_timeout_s=5, max_attempts=1),
        guardrail_id="gr-test",
        version="1",
        **kwargs,
    )


def test_comprehend_detector_finds_person_and_address(guardrail_emulator: GuardrailServicesEmulator) -> None:
    findings = comprehend_detector().detect(TEXT)
    assert {(f.type, TEXT[f.start : f.end]) for f in findings} == {
        ("PERSON", "Alan Turing"),
        ("ADDRESS", "221 Baker Street, London"),
    }
    assert {f.detector for f in findings} == {"comprehend"}


def test_comprehend_detector_chunks_long_text_and_maps_offsets(guardrail_emulator: GuardrailServicesEmulator) -> None:
    filler = "lorem ipsum dolor sit amet " * 10
    text = filler + TEXT + " " + filler + "Contact Mrs. Grace Hopper."
    findings = comprehend_detector(max_chunk_bytes=200).detect(text)
    names = [text[f.start : f.end] for f in findings if f.type == "PERSON"]
    assert names == ["Alan Turing", "Grace Hopper"]


def test_bedrock_detector_finds_person_and_address(guardrail_emulator: GuardrailServicesEmulator) -> None:
    findings = bedrock_detector().detect(TEXT)
    assert {(f.type, TEXT[f.start : f.end]) for f in findings} == {
        ("PERSON", "Alan Turing"),
        ("ADDRESS", "221 Baker Street, London"),
    }


def test_engine_redacts_names_and_addresses_only_when_the_policy_enables_a_detector(
    guardrail_emulator: GuardrailServicesEmulator,
) -> None:
    detectors = [comprehend_detector(), bedrock_detector()]
    default = GuardEngine(GuardPolicy.default(), extra_detectors=detectors).scan(TEXT, "input")
    assert default.action is Action.ALLOW  # off by default: no call, no finding
    for name in ("comprehend", "bedrock_guardrail"):
        policy = GuardPolicy.from_mapping({"detectors": ["secrets", "pii", "injection", name]})
        result = GuardEngine(policy, extra_detectors=detectors).scan(TEXT, "input")
        assert result.action is Action.REDACT
        assert result.redacted_text == "Please ship to Dr. [PERSON_1] at [ADDRESS_1] today."
        assert {f.type for f in result.findings} == {"PERSON", "ADDRESS"}
        assert {f.detector for f in result.findings} == {name}


def test_engine_blocks_on_a_bedrock_denied_topic(guardrail_emulator: GuardrailServicesEmulator) -> None:
    policy = GuardPolicy.from_mapping({"detectors": ["bedrock_guardrail"]})
    result = GuardEngine(policy, extra_detectors=[bedrock_detector()]).scan("Which stocks should I buy?", "input")
    assert result.action is Action.BLOCK
    assert result.findings[0].type == "DENIED_TOPIC"


def test_service_failures_fail_closed_unless_configured_open(guardrail_emulator: GuardrailServicesEmulator) -> None:
    guardrail_emulator.faults.set("comprehend", FaultSpec(error_rate=1.0))
    guardrail_emulator.faults.set("guardrail:gr-test", FaultSpec(error_rate=1.0))
    for detector in (comprehend_detector(), bedrock_detector()):
        with pytest.raises(UpstreamUnavailableError) as failed:
            detector.detect(TEXT)
        assert failed.value.status == 503
        assert "Turing" not in failed.value.message
    assert comprehend_detector(fail_open=True).detect(TEXT) == []
    assert bedrock_detector(fail_open=True).detect(TEXT) == []
