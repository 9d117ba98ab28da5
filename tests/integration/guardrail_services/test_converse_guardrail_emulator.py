"""The local Bedrock Runtime applies Converse's `guardrailConfig` as Bedrock does, with the same
emulated guardrails (and the same logic) as ApplyGuardrail: an unknown guardrail id or version is
refused, a blocked input is never answered, a blocked or masked answer is replaced or masked, both
end with stopReason guardrail_intervened, and `trace` carries the assessments; ConverseStream too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from llmops.adapters.bedrock_guardrails import default_bedrock_runtime_client
from llmops.local.emulators import BedrockRuntimeEmulator
from llmops.local.emulators.guardrail_services import EmulatedGuardrail, GuardrailServicesEmulator
from llmops.local.wsgi_server import LoopbackServer

MODEL = "amazon.nova-lite-v1:0"
STRICT = EmulatedGuardrail(
    denied_topics={"investment advice": ("which stocks",)},
    blocked_words=("emulated answer",),  # every emulated answer starts so: its output is blocked
    blocked_message="Blocked by the strict guardrail.",
    versions=frozenset({"1", "DRAFT"}),
)
GUARDRAILS = {"grstrict": STRICT, "grmask": EmulatedGuardrail(blocked_message="Blocked by the masking guardrail.")}


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    emulator = GuardrailServicesEmulator(guardrails=GUARDRAILS, fallback=BedrockRuntimeEmulator(guardrails=GUARDRAILS))
    server = LoopbackServer(emulator).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", server.url)
    try:
        yield default_bedrock_runtime_client(5.0)
    finally:
        server.stop()


def _converse(client: Any, text: str, **config: Any) -> Any:
    extra = {"guardrailConfig": config} if config else {}
    return client.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": text}]}], **extra)


def _stream(client: Any, text: str, **config: Any) -> tuple[str, str, dict[str, Any]]:
    events = client.converse_stream(
        modelId=MODEL, messages=[{"role": "user", "content": [{"text": text}]}], guardrailConfig=config
    )["stream"]
    text_out, stop, metadata = "", "", {}
    for event in events:
        text_out += event.get("contentBlockDelta", {}).get("delta", {}).get("text", "")
        stop = event.get("messageStop", {}).get("stopReason", stop)
        metadata = event.get("metadata", metadata)
    return text_out, stop, metadata


def test_without_a_guardrail_config_nothing_is_applied(client: Any) -> None:
    answer = _converse(client, "Which stocks should I buy?")
    assert answer["stopReason"] == "end_turn"
    assert "trace" not in answer


def test_a_blocked_input_is_answered_with_the_guardrails_message_and_never_reaches_the_model(client: Any) -> None:
    answer = _converse(client, "Which stocks should I buy?", guardrailIdentifier="grstrict", guardrailVersion="1")
    assert answer["stopReason"] == "guardrail_intervened"
    assert answer["output"]["message"]["content"] == [{"text": "Blocked by the strict guardrail."}]
    assert answer["usage"]["outputTokens"] == 0
    assert "trace" not in answer  # not asked for


def test_a_blocked_answer_is_replaced_and_the_trace_says_why(client: Any) -> None:
    answer = _converse(client, "Hello", guardrailIdentifier="grstrict", guardrailVersion="1", trace="enabled")
    assert answer["stopReason"] == "guardrail_intervened"
    assert answer["output"]["message"]["content"] == [{"text": "Blocked by the strict guardrail."}]
    trace = answer["trace"]["guardrail"]
    assert trace["inputAssessment"]["grstrict"] == {}  # the input passed
    (output,) = trace["outputAssessments"]["grstrict"]
    assert output["wordPolicy"]["customWords"][0]["action"] == "BLOCKED"


def test_a_masked_answer_is_masked_as_apply_guardrail_masks_it(client: Any) -> None:
    prompt = "Please greet Dr. Alan Turing."
    plain = _converse(client, prompt)["output"]["message"]["content"][0]["text"]
    assert "Alan Turing" in plain  # the emulated answer repeats the question
    guarded = _converse(client, prompt, guardrailIdentifier="grmask", guardrailVersion="DRAFT", trace="enabled")
    assert guarded["stopReason"] == "guardrail_intervened"
    masked = guarded["output"]["message"]["content"][0]["text"]
    # One mechanism: ApplyGuardrail on the same answer gives the same masked text.
    applied = client.apply_guardrail(
        guardrailIdentifier="grmask", guardrailVersion="DRAFT", source="OUTPUT", content=[{"text": {"text": plain}}]
    )
    assert masked == applied["outputs"][0]["text"]
    assert "Alan Turing" not in masked
    assert "{NAME}" in masked
    # The input's name is reported (masked input is not what the emulated model reads).
    entities = guarded["trace"]["guardrail"]["inputAssessment"]["grmask"]["sensitiveInformationPolicy"]["piiEntities"]
    assert [(e["type"], e["action"]) for e in entities] == [("NAME", "ANONYMIZED")]


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"guardrailIdentifier": "grnosuch", "guardrailVersion": "1"}, "does not exist"),
        ({"guardrailIdentifier": "grstrict", "guardrailVersion": "7"}, "does not exist"),  # no such version
    ],
)
def test_a_guardrail_or_version_that_does_not_exist_is_refused(client: Any, config: dict[str, str], words: str) -> None:
    with pytest.raises(ClientError) as refused:
        _converse(client, "Hello", **config)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert words in str(refused.value)
    with pytest.raises(ClientError) as missing:
        client.apply_guardrail(
            guardrailIdentifier=config["guardrailIdentifier"],
            guardrailVersion=config["guardrailVersion"],
            source="INPUT",
            content=[{"text": {"text": "Hello"}}],
        )
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_an_arn_names_the_guardrail_too(client: Any) -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:guardrail/grstrict"
    answer = _converse(client, "Which stocks should I buy?", guardrailIdentifier=arn, guardrailVersion="1")
    assert answer["stopReason"] == "guardrail_intervened"


def test_converse_stream_applies_it_before_the_first_delta(client: Any) -> None:
    text, stop, metadata = _stream(
        client, "Which stocks should I buy?", guardrailIdentifier="grstrict", guardrailVersion="1", trace="enabled"
    )
    assert (text, stop) == ("Blocked by the strict guardrail.", "guardrail_intervened")
    assert metadata["trace"]["guardrail"]["inputAssessment"]["grstrict"]["topicPolicy"]["topics"][0]["action"] == (
        "BLOCKED"
    )
    text, stop, metadata = _stream(
        client, "Please greet Dr. Alan Turing.", guardrailIdentifier="grmask", guardrailVersion="1",
        streamProcessingMode="sync",
    )  # fmt: skip
    assert stop == "guardrail_intervened"
    assert "Alan Turing" not in text
    assert "{NAME}" in text
    assert "trace" not in metadata
    text, stop, _ = _stream(client, "Hello", guardrailIdentifier="grmask", guardrailVersion="1")
    assert stop == "end_turn"  # nothing to mask: the answer streams as the model wrote it
    assert text.startswith("Emulated answer")
