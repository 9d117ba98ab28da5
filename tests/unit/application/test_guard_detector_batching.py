"""A request's texts go to a batch service detector together: one ApplyGuardrail call per request
direction (split only where its limits require), each text getting its own part of the answer;
the timeout, the fail modes and their counting are those of one call per text."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from llmops.adapters.bedrock_guardrails import BedrockGuardrailDetector
from llmops.application.embeddings_endpoint import guard_embedding_inputs
from llmops.application.guard_detectors import TimedDetector, batched_service_calls
from llmops.config.env import Settings
from llmops.domain.chat import ChatRequest, Message, Role
from llmops.domain.guard import Action, Direction, Finding, GuardEngine, GuardPolicy
from llmops.domain.guard.service_detectors import (
    BedrockGuardrailSettings,
    Detection,
    DetectorUnavailableError,
    GuardUnavailableError,
)
from tests.unit.application.test_guard_detectors_wiring import CANARY, GUARDRAIL, FakeGuardrail, _harness

SETTINGS = BedrockGuardrailSettings(guardrail_id="gr1abc", version="3")


@dataclass
class FakeBatchGuardrail(FakeGuardrail):
    """`FakeGuardrail` that also takes several texts at once, as ApplyGuardrail does."""

    batches: list[tuple[str, ...]] = field(default_factory=list)

    def detect_many(self, texts: Sequence[str], direction: Direction) -> list[Detection]:
        self.batches.append(tuple(texts))
        if self.fail:
            raise DetectorUnavailableError(self.name, "ThrottlingException")
        return [FakeGuardrail.detect(FakeGuardrail(), text, direction) for text in texts]


def _engine(detector: FakeGuardrail, fail_mode: str = "closed") -> GuardEngine:
    policy = GuardPolicy.from_mapping({"bedrock_guardrail": {**GUARDRAIL, "fail_mode": fail_mode}})
    settings = policy.service_settings("bedrock_guardrail")
    assert settings is not None
    return GuardEngine(policy, service_detectors=[TimedDetector(detector, settings)])


TEXTS = ["Hello there.", f"Please ship to {CANARY}.", "   ", "Thanks!"]


def test_a_requests_texts_are_checked_in_one_call_and_each_gets_its_own_answer() -> None:
    detector = FakeBatchGuardrail()
    with batched_service_calls(TEXTS):
        verdict = _engine(detector).guard_input(TEXTS)
    assert detector.batches == [("Hello there.", f"Please ship to {CANARY}.", "Thanks!")]  # blank: not sent
    assert detector.texts == []  # no call per text
    assert verdict.texts == ("Hello there.", "Please ship to [PERSON_1].", "   ", "Thanks!")
    assert [len(f) for f in verdict.findings] == [0, 1, 0, 0]


def test_without_the_batch_each_text_is_its_own_call() -> None:
    detector = FakeBatchGuardrail()
    verdict = _engine(detector).guard_input(TEXTS)
    assert detector.batches == []
    assert detector.texts == ["Hello there.", f"Please ship to {CANARY}.", "Thanks!"]
    assert verdict.texts[1] == "Please ship to [PERSON_1]."


def test_the_batch_is_asked_about_the_texts_the_engine_sees_normalized() -> None:
    detector = FakeBatchGuardrail()
    texts = ["\uff28\uff45\uff4c\uff4c\uff4f", f"to {CANARY}"]  # fullwidth "Hello", folded by the engine
    with batched_service_calls(texts):
        verdict = _engine(detector).guard_input(texts)
    (batch,) = detector.batches
    assert batch[0] != texts[0]  # what the engine hands detectors, not the raw text
    assert detector.texts == []
    assert verdict.texts[1] == "to [PERSON_1]"


def test_a_failed_batch_fails_every_text_by_the_fail_mode_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    closed = FakeBatchGuardrail(fail=True)
    with batched_service_calls(TEXTS):
        refused = _engine(closed).guard_input(TEXTS)
    assert len(closed.batches) == 1
    with pytest.raises(GuardUnavailableError):
        refused.raise_if_blocked()
    assert [[f.type for f in found] for found in refused.findings] == [
        ["DETECTOR_UNAVAILABLE"],
        ["DETECTOR_UNAVAILABLE"],
        [],
        ["DETECTOR_UNAVAILABLE"],
    ]
    warnings = [r for r in caplog.records if r.getMessage() == "guard detector unavailable"]
    assert len(warnings) == 1
    with batched_service_calls(TEXTS):
        opened = _engine(FakeBatchGuardrail(fail=True), fail_mode="open").guard_input(TEXTS)
    assert opened.action is Action.ALLOW
    assert sum(d.finding.type == "DETECTOR_UNAVAILABLE" for d in opened.decisions) == 3  # counted per text


def test_a_text_outside_the_batch_is_asked_on_its_own() -> None:
    detector = FakeBatchGuardrail()
    engine = _engine(detector)
    with batched_service_calls(["something else"]):
        engine.guard_input([f"to {CANARY}"])
    assert detector.batches == []
    assert detector.texts == [f"to {CANARY}"]


def test_a_batch_for_the_input_does_not_answer_the_output() -> None:
    detector = FakeBatchGuardrail()
    with batched_service_calls([f"to {CANARY}"], Direction.INPUT):
        verdict = _engine(detector).guard_output(f"to {CANARY}")
    assert detector.batches == []
    assert verdict.text == "to [PERSON_1]"


def test_a_detection_per_text_is_required() -> None:
    @dataclass
    class Short(FakeBatchGuardrail):
        def detect_many(self, texts: Sequence[str], direction: Direction) -> list[Detection]:
            return [Detection()]

    with batched_service_calls(["one", "two"]), pytest.raises(DetectorUnavailableError) as failed:
        TimedDetector(Short(), SETTINGS).detect("one", Direction.INPUT)
    assert failed.value.reason == "malformed_answer"


# -- through the chat and embeddings endpoints -------------------------------------------------------


def test_the_chat_input_guard_makes_one_call_for_every_message(aws_settings: Settings) -> None:
    detector = FakeBatchGuardrail()
    harness, provider = _harness(aws_settings, {"bedrock_guardrail": GUARDRAIL}, detector)
    messages = (
        Message(Role.SYSTEM, "You ship parcels."),
        Message(Role.USER, "Where is my parcel?"),
        Message(Role.ASSISTANT, "Who is it for?"),
        Message(Role.USER, f"For {CANARY}."),
    )
    harness.json(ChatRequest(model="chat-default", messages=messages))
    inputs = [b for b in detector.batches if "Where is my parcel?" in b]
    assert len(inputs) == 1
    assert len(inputs[0]) == 4
    assert provider.requests[0].messages[-1].content == "For [PERSON_1]."
    assert harness.records[-1].guard[0].findings == {"PERSON": 1}


def test_embedding_inputs_are_checked_in_one_call() -> None:
    detector = FakeBatchGuardrail()
    verdict, texts = guard_embedding_inputs(_engine(detector), ("embed me", f"and {CANARY}"))
    assert detector.batches == [("embed me", f"and {CANARY}")]
    assert texts == ("embed me", "and [PERSON_1]")
    assert verdict.findings == {"PERSON": 1}


# -- the adapter: one ApplyGuardrail call, or as few as its limits allow ------------------------------


@dataclass
class RecordingBedrock:
    """A bedrock-runtime client whose ApplyGuardrail masks the canary in each block it is sent."""

    calls: list[dict[str, Any]] = field(default_factory=list)

    def apply_guardrail(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        texts = [block["text"]["text"] for block in request["content"]]
        assessments = [
            {"sensitiveInformationPolicy": {"piiEntities": [{"match": CANARY, "type": "NAME", "action": "ANONYMIZED"}]}}
            if CANARY in text
            else {}
            for text in texts
        ]
        return {"action": "GUARDRAIL_INTERVENED", "assessments": assessments, "outputs": []}


def test_the_adapter_sends_the_texts_as_the_blocks_of_one_call() -> None:
    client = RecordingBedrock()
    detector = BedrockGuardrailDetector(lambda: client, guardrail_id="gr1abc", version="3")  # type: ignore[arg-type, return-value]
    detections = detector.detect_many(["one", "", f"to {CANARY}"], Direction.OUTPUT)
    (call,) = client.calls
    assert call["source"] == "OUTPUT"
    assert call["content"] == [{"text": {"text": "one"}}, {"text": {"text": f"to {CANARY}"}}]
    assert [d.findings for d in detections[:2]] == [(), ()]
    assert detections[2].findings == (Finding("PERSON", 3, 3 + len(CANARY), 1.0, "bedrock_guardrail"),)


def test_the_adapter_splits_only_where_the_limits_require() -> None:
    client = RecordingBedrock()
    detector = BedrockGuardrailDetector(lambda: client, guardrail_id="gr1abc")  # type: ignore[arg-type, return-value]
    big = "x" * 20_000  # 20 text units: two of them do not fit in one call
    detections = detector.detect_many([big, f"to {CANARY}", big], Direction.INPUT)
    assert [len(c["content"]) for c in client.calls] == [2, 1]
    assert detections[1].findings[0].type == "PERSON"
