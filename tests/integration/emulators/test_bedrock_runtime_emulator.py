"""The Bedrock Runtime emulator through a real boto3 client: success shape and botocore error codes."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from llmops.local.emulators import BedrockRuntimeEmulator, FaultSpec
from llmops.local.wsgi_server import LoopbackServer

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"

Emulator = tuple[BedrockRuntimeEmulator, LoopbackServer]


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"text": text}]}


def test_converse_answers_deterministically_with_usage_and_metrics(
    bedrock_emulator: Emulator, boto_client: Any
) -> None:
    _, server = bedrock_emulator
    client = boto_client("bedrock-runtime", server.url)
    first = client.converse(modelId=HAIKU, messages=[user("What is the capital of France?")])
    second = client.converse(modelId=HAIKU, messages=[user("What is the capital of France?")])
    text = first["output"]["message"]["content"][0]["text"]
    assert text.startswith(f"Emulated answer from {HAIKU}: What is the capital of France?")
    assert text == second["output"]["message"]["content"][0]["text"]
    assert first["stopReason"] == "end_turn"
    usage = first["usage"]
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    assert usage["outputTokens"] == len(text.split())
    assert first["metrics"]["latencyMs"] >= 0


def test_max_tokens_truncates_and_stop_sequences_cut(bedrock_emulator: Emulator, boto_client: Any) -> None:
    _, server = bedrock_emulator
    client = boto_client("bedrock-runtime", server.url)
    truncated = client.converse(modelId=HAIKU, messages=[user("hello")], inferenceConfig={"maxTokens": 3})
    assert truncated["stopReason"] == "max_tokens"
    assert truncated["usage"]["outputTokens"] == 3
    assert truncated["output"]["message"]["content"][0]["text"] == "Emulated answer from"
    stopped = client.converse(modelId=HAIKU, messages=[user("hello")], inferenceConfig={"stopSequences": [":"]})
    assert stopped["stopReason"] == "stop_sequence"
    # The model id's own ":0" is the first ":" in the answer.
    expected = "Emulated answer from " + HAIKU.split(":", maxsplit=1)[0]
    assert stopped["output"]["message"]["content"][0]["text"] == expected


def test_model_ids_with_colons_and_arns_survive_url_encoding(boto_client: Any) -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0"
    app = BedrockRuntimeEmulator()  # accepts any model id
    with LoopbackServer(app) as server:
        resp = boto_client("bedrock-runtime", server.url).converse(modelId=arn, messages=[user("hi")])
    assert resp["output"]["message"]["content"][0]["text"].startswith(f"Emulated answer from {arn}:")
    assert app.faults.stats()[arn]["ok"] == 1


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ([{"role": "assistant", "content": [{"text": "hi"}]}], "must start with a user message"),
        ([user("a"), user("b")], "must alternate"),
        ([user(" ")], "is blank"),
    ],
)
def test_converse_validation_mirrors_bedrock(
    bedrock_emulator: Emulator, boto_client: Any, messages: list[dict[str, Any]], fragment: str
) -> None:
    _, server = bedrock_emulator
    with pytest.raises(ClientError) as info:
        boto_client("bedrock-runtime", server.url).converse(modelId=HAIKU, messages=messages)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert fragment in info.value.response["Error"]["Message"]
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_unknown_model_is_a_validation_exception(bedrock_emulator: Emulator, boto_client: Any) -> None:
    _, server = bedrock_emulator
    with pytest.raises(ClientError) as info:
        boto_client("bedrock-runtime", server.url).converse(modelId="nope.model-v1:0", messages=[user("x")])
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert "model identifier is invalid" in info.value.response["Error"]["Message"]


@pytest.mark.parametrize(
    ("spec", "code", "status", "exception_class"),
    [
        (FaultSpec(throttle_rate=1.0), "ThrottlingException", 429, "ThrottlingException"),
        (FaultSpec(error_rate=1.0), "InternalServerException", 500, "InternalServerException"),
        (
            FaultSpec(error_rate=1.0, error_status=503),
            "ServiceUnavailableException",
            503,
            "ServiceUnavailableException",
        ),
        (FaultSpec(error_rate=1.0, error_status=424), "ModelErrorException", 424, "ModelErrorException"),
    ],
)
def test_faults_surface_as_botocore_modeled_exceptions(
    bedrock_emulator: Emulator,
    boto_client: Any,
    spec: FaultSpec,
    code: str,
    status: int,
    exception_class: str,
) -> None:
    app, server = bedrock_emulator
    app.faults.set(HAIKU, spec)
    client = boto_client("bedrock-runtime", server.url)
    with pytest.raises(getattr(client.exceptions, exception_class)) as info:
        client.converse(modelId=HAIKU, messages=[user("x")])
    assert info.value.response["Error"]["Code"] == code
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert info.value.response["Error"]["Message"]


def test_faults_apply_per_model_and_count_calls(bedrock_emulator: Emulator, boto_client: Any) -> None:
    app, server = bedrock_emulator
    app.faults.set(HAIKU, FaultSpec(throttle_rate=1.0))
    client = boto_client("bedrock-runtime", server.url)
    client.converse(modelId="amazon.nova-lite-v1:0", messages=[user("x")])
    with pytest.raises(ClientError):
        client.converse(modelId=HAIKU, messages=[user("x")])
    stats = app.faults.stats()
    assert stats[HAIKU] == {"calls": 1, "ok": 0, "throttled": 1, "error": 0, "timeout": 0}
    assert stats["amazon.nova-lite-v1:0"]["ok"] == 1


def test_standard_retries_see_throttles_as_retryable(bedrock_emulator: Emulator, boto_client: Any) -> None:
    app, server = bedrock_emulator
    app.faults.set(HAIKU, FaultSpec(throttle_rate=1.0))
    with pytest.raises(ClientError):
        boto_client("bedrock-runtime", server.url, max_attempts=2).converse(modelId=HAIKU, messages=[user("x")])
    assert app.faults.stats()[HAIKU]["throttled"] == 2
