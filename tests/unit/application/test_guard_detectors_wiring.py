"""The service guard detectors on the chat path: a policy naming them changes the verdict, the
policy's guardrail goes on the Converse call, calls are bounded in time, both fail modes answer as
documented, the failure reaches the audit record and GuardDetectorFailures, and no text is logged."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from aws_lambda_powertools import Metrics

from llmops.adapters.bedrock.transformation import to_converse_request
from llmops.application.embeddings_endpoint import guard_embedding_inputs
from llmops.application.guard_detectors import (
    ServiceDetectors,
    TimedDetector,
    bound_deadline,
    converse_guardrail_config,
    parse_granted,
    with_policy_guardrail,
)
from llmops.application.guard_policies import GuardPolicies
from llmops.config.env import Settings
from llmops.domain.chat import ChatRequest, Message, Role, Usage
from llmops.domain.deadline import Deadline
from llmops.domain.guard import Action, Direction, Finding, GuardEngine, GuardPolicy
from llmops.domain.guard.service_detectors import (
    BedrockGuardrailSettings,
    ComprehendSettings,
    Detection,
    DetectorUnavailableError,
    GuardUnavailableError,
)
from llmops.domain.routing import Provider, Target
from llmops.observability.emit import emit_request_metrics
from llmops.observability.metrics import NAMESPACE
from tests.fakes import FakeProvider, gateway_runtime
from tests.unit.application.chat_parts_harness import Harness

CANARY = "Zebulon Quartermaine-7731"  # a "name" that must never reach a log line
GUARDRAIL = {"guardrail_id": "gr1abc", "version": "3"}


@dataclass
class FakeGuardrail:
    """Masks the canary name, as a guardrail anonymizing NAME would; or fails."""

    fail: bool = False
    delay_s: float = 0.0
    texts: list[str] = field(default_factory=list)
    name: str = "bedrock_guardrail"

    def detect(self, text: str, direction: Direction) -> Detection:
        self.texts.append(text)
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail:
            raise DetectorUnavailableError(self.name, "ThrottlingException")
        start = text.find(CANARY)
        if start < 0:
            return Detection()
        finding = Finding("PERSON", start, start + len(CANARY), 1.0, self.name)
        return Detection((finding,), {finding: Action.REDACT})


def _harness(settings: Settings, policy: dict[str, Any], detector: FakeGuardrail) -> tuple[Harness, FakeProvider]:
    provider = FakeProvider("Shipped.", Usage(20, 3))
    runtime = gateway_runtime(settings, provider)
    settings_of = GuardPolicy.from_mapping(policy).service_settings("bedrock_guardrail")
    assert settings_of is not None

    def detectors(p: GuardPolicy) -> list[Any]:
        return [TimedDetector(detector, settings_of)] if p.services else []

    runtime.chat.guards = GuardPolicies({"default": policy}, detectors=detectors)
    return Harness(runtime, provider), provider


def _request(text: str = f"Ship it to {CANARY} today.", **changes: Any) -> ChatRequest:
    return ChatRequest(model="chat-default", messages=(Message(Role.USER, text),), **changes)


def test_a_policy_naming_the_guardrail_masks_before_the_model_and_sets_guardrail_config(aws_settings: Settings) -> None:
    harness, provider = _harness(aws_settings, {"bedrock_guardrail": GUARDRAIL}, FakeGuardrail())
    caller = {"guardrailConfig": {"guardrailIdentifier": "callers-own", "guardrailVersion": "1"}}
    harness.json(_request(provider_options=caller))
    (sent,) = provider.requests
    assert CANARY not in sent.messages[-1].content
    assert "[PERSON_1]" in str(sent.messages[-1].content)
    # The gateway's guardrail replaces the caller's: the tenant's policy decides which guardrail applies.
    assert sent.provider_options["guardrailConfig"] == {"guardrailIdentifier": "gr1abc", "guardrailVersion": "3"}
    record = harness.records[-1]
    assert record.guard[0].findings == {"PERSON": 1}


def test_without_the_policy_nothing_is_called_and_the_text_goes_as_sent(aws_settings: Settings) -> None:
    detector = FakeGuardrail()
    harness, provider = _harness(aws_settings, {"bedrock_guardrail": GUARDRAIL}, detector)
    harness.runtime.chat.guards = GuardPolicies()  # the default policy names no service detector
    harness.json(_request())
    assert detector.texts == []
    assert CANARY in str(provider.requests[0].messages[-1].content)
    assert "guardrailConfig" not in provider.requests[0].provider_options


def test_fail_closed_refuses_with_503_guard_unavailable_and_counts_it(
    aws_settings: Settings, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    harness, provider = _harness(aws_settings, {"bedrock_guardrail": GUARDRAIL}, FakeGuardrail(fail=True))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(GuardUnavailableError) as refused:
        harness.send(_request())
    assert (refused.value.status, refused.value.code) == (503, "guard_unavailable")
    assert provider.requests == []  # the model never saw the unchecked text
    record = harness.records[-1]
    assert (record.status, record.error_code) == (503, "guard_unavailable")
    assert record.guard[0].unavailable == {"bedrock_guardrail": 1}
    assert record.guard[0].to_dict()["unavailable"] == {"bedrock_guardrail": 1}
    capsys.readouterr()
    emit_request_metrics(Metrics(namespace=NAMESPACE, service="gateway"), harness.traces[-1])
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    failures = [r for r in emf if "GuardDetectorFailures" in r]
    by_detector = {r.get("detector"): r["GuardDetectorFailures"] for r in failures}
    assert by_detector["bedrock_guardrail"] in (1.0, [1.0])
    assert all(CANARY not in json.dumps(r) for r in emf)
    assert all(CANARY not in str(vars(r)) for r in caplog.records)  # messages and extra fields alike
    (warning,) = [r for r in caplog.records if r.getMessage() == "guard detector unavailable"]
    assert (vars(warning)["detector"], vars(warning)["reason"]) == ("bedrock_guardrail", "ThrottlingException")


def test_fail_open_answers_with_the_failure_in_the_audit_record(aws_settings: Settings) -> None:
    policy = {"bedrock_guardrail": {**GUARDRAIL, "fail_mode": "open"}}
    harness, provider = _harness(aws_settings, policy, FakeGuardrail(fail=True))
    body = harness.json(_request())
    assert body["choices"][0]["message"]["content"] == "Shipped."
    assert CANARY in str(provider.requests[0].messages[-1].content)  # let through, as the tenant chose
    verdicts = harness.records[-1].guard
    assert verdicts[0].findings == {"DETECTOR_UNAVAILABLE": 1}
    assert [v.unavailable for v in verdicts] == [{"bedrock_guardrail": 1}, {"bedrock_guardrail": 1}]


def test_the_output_is_checked_too(aws_settings: Settings) -> None:
    detector = FakeGuardrail()
    harness, provider = _harness(aws_settings, {"bedrock_guardrail": GUARDRAIL}, detector)
    provider.text = f"Sent to {CANARY}."
    body = harness.json(_request("Where did it go?"))
    assert body["choices"][0]["message"]["content"] == "Sent to [PERSON_1]."


# -- time bounds ------------------------------------------------------------------------------------


def test_a_slow_service_times_out_at_the_policys_timeout() -> None:
    settings = BedrockGuardrailSettings(guardrail_id="gr1abc", timeout_s=0.1)
    release = threading.Event()

    @dataclass
    class Hanging:
        name: str = "bedrock_guardrail"

        def detect(self, text: str, direction: Direction) -> Detection:
            release.wait(5)
            return Detection()

    started = time.monotonic()
    with pytest.raises(DetectorUnavailableError) as failed:
        TimedDetector(Hanging(), settings).detect("hello", Direction.INPUT)
    release.set()
    assert failed.value.reason == "timeout"
    assert time.monotonic() - started < 1.0


def test_the_requests_deadline_bounds_the_call_below_the_policys_timeout() -> None:
    settings = ComprehendSettings(timeout_s=5.0)
    detector = TimedDetector(FakeGuardrail(delay_s=2.0), settings, margin_s=0.5)
    with bound_deadline(Deadline.after(0.7)):
        assert detector.timeout_s() <= 0.2 + 1e-6
        started = time.monotonic()
        with pytest.raises(DetectorUnavailableError) as failed:
            detector.detect("hello", Direction.INPUT)
    assert failed.value.reason == "timeout"
    assert time.monotonic() - started < 1.0
    with bound_deadline(Deadline.after(0.1)), pytest.raises(DetectorUnavailableError) as spent:
        detector.detect("hello", Direction.INPUT)
    assert spent.value.reason == "deadline"
    assert detector.timeout_s() == 5.0  # outside a request: the policy's timeout alone


def test_a_malformed_answer_is_an_unavailable_detector_not_a_500() -> None:
    @dataclass
    class Broken:
        name: str = "comprehend"

        def detect(self, text: str, direction: Direction) -> Detection:
            raise KeyError("Entities")

    with pytest.raises(DetectorUnavailableError) as failed:
        TimedDetector(Broken(), ComprehendSettings()).detect("hello", Direction.INPUT)
    assert failed.value.reason == "KeyError"


# -- building and the Converse field ----------------------------------------------------------------


def test_service_detectors_are_built_per_policy_without_calling_anything() -> None:
    policy = GuardPolicy.from_mapping({"bedrock_guardrail": GUARDRAIL, "comprehend": {"fail_mode": "open"}})
    built = ServiceDetectors(margin_s=0.5)(policy)
    assert sorted(d.name for d in built) == ["bedrock_guardrail", "comprehend"]
    assert ServiceDetectors()(GuardPolicy.default()) == ()


def test_converse_guardrail_config_for_calls_and_streams() -> None:
    policy = GuardPolicy.from_mapping({"bedrock_guardrail": GUARDRAIL})
    assert converse_guardrail_config(policy, stream=False) == {"guardrailIdentifier": "gr1abc", "guardrailVersion": "3"}
    assert converse_guardrail_config(policy, stream=True) == {
        "guardrailIdentifier": "gr1abc",
        "guardrailVersion": "3",
        "streamProcessingMode": "sync",
    }
    off = GuardPolicy.from_mapping({"bedrock_guardrail": {**GUARDRAIL, "converse": False}})
    assert converse_guardrail_config(off, stream=False) is None
    assert converse_guardrail_config(GuardPolicy.default(), stream=False) is None
    request = _request(provider_options={"serviceTier": {"type": "flex"}})
    assert with_policy_guardrail(request, GuardPolicy.default()) is request
    assert with_policy_guardrail(request, policy).provider_options == {
        "serviceTier": {"type": "flex"},
        "guardrailConfig": {"guardrailIdentifier": "gr1abc", "guardrailVersion": "3"},
    }


def test_the_bedrock_converse_body_carries_the_policys_guardrail() -> None:
    target = Target(
        id="bedrock-nova",
        provider=Provider.BEDROCK,
        model_id="amazon.nova-lite-v1:0",
        price_per_1k_input_usd=0.00006,
        price_per_1k_output_usd=0.00024,
        context_window=300_000,
    )
    policy = GuardPolicy.from_mapping({"bedrock_guardrail": GUARDRAIL})
    caller = {"guardrailConfig": {"guardrailIdentifier": "callers1", "guardrailVersion": "9"}}
    body = to_converse_request(target, with_policy_guardrail(_request(provider_options=caller), policy))
    assert body["guardrailConfig"] == {"guardrailIdentifier": "gr1abc", "guardrailVersion": "3"}
    streamed = to_converse_request(target, with_policy_guardrail(_request(stream=True), policy))
    assert streamed["guardrailConfig"]["streamProcessingMode"] == "sync"


def test_embedding_inputs_follow_the_fail_mode_too() -> None:
    def engine(fail_mode: str) -> GuardEngine:
        policy = GuardPolicy.from_mapping({"bedrock_guardrail": {**GUARDRAIL, "fail_mode": fail_mode}})
        return GuardEngine(policy, service_detectors=[FakeGuardrail(fail=True)])

    with pytest.raises(GuardUnavailableError) as refused:
        guard_embedding_inputs(engine("closed"), ("embed me",))
    assert refused.value.status == 503
    verdict, texts = guard_embedding_inputs(engine("open"), ("embed me",))
    assert texts == ("embed me",)
    assert verdict.unavailable == {"bedrock_guardrail": 1}


def test_a_guardrail_the_stack_does_not_grant_is_never_called(caplog: pytest.LogCaptureFixture) -> None:
    arn = "arn:aws:bedrock:us-east-1:111122223333:guardrail/gr1abc"
    assert parse_granted(None) is None
    assert parse_granted("none") == frozenset()
    assert parse_granted(f"{arn},other2") == frozenset({"gr1abc", "other2"})
    policy = GuardPolicy.from_mapping({"bedrock_guardrail": GUARDRAIL})
    (granted,) = ServiceDetectors(granted=frozenset({"gr1abc"}))(policy)
    assert isinstance(granted, TimedDetector)
    assert granted.inner.__class__.__name__ == "BedrockGuardrailDetector"
    caplog.set_level(logging.WARNING)
    (denied,) = ServiceDetectors(granted=frozenset({"other2"}))(policy)
    assert "does not grant" in caplog.text
    with pytest.raises(DetectorUnavailableError) as failed:
        denied.detect("hello", Direction.INPUT)
    assert failed.value.reason == "not_granted"


def test_an_ungranted_guardrail_is_not_put_on_the_converse_call() -> None:
    policy = GuardPolicy.from_mapping({"bedrock_guardrail": GUARDRAIL})
    request = _request()
    assert with_policy_guardrail(request, policy, granted=frozenset({"other2"})) is request
    granted = with_policy_guardrail(request, policy, granted=frozenset({"gr1abc"}))
    assert granted.provider_options["guardrailConfig"]["guardrailIdentifier"] == "gr1abc"


def test_the_gateway_is_wired_with_the_granted_guardrails(aws_settings: Settings) -> None:
    settings = aws_settings.model_copy(update={"granted_guardrails": "other2"})
    provider = FakeProvider("Shipped.", Usage(20, 3))
    runtime = gateway_runtime(settings, provider)
    policy = GuardPolicy.from_mapping({"bedrock_guardrail": GUARDRAIL})
    assert runtime.chat.policy_guardrail(_request(), policy).provider_options == {}


def test_comprehend_the_stack_does_not_grant_is_never_called() -> None:
    policy = GuardPolicy.from_mapping({"comprehend": {}})
    (denied,) = ServiceDetectors(comprehend_granted=False)(policy)
    with pytest.raises(DetectorUnavailableError) as failed:
        denied.detect("hello", Direction.INPUT)
    assert failed.value.reason == "not_granted"
    (granted,) = ServiceDetectors()(policy)
    assert isinstance(granted, TimedDetector)
    assert granted.inner.__class__.__name__ == "ComprehendPiiDetector"
    assert Settings.from_env({"LLMOPS_COMPREHEND_GRANTED": "false"}).comprehend_granted is False
