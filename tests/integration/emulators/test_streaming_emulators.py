"""The emulators' streaming operations, read by unchanged boto3 clients: ConverseStream and
InvokeEndpointWithResponseStream, paced token by token, with faults before and during the stream."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError, EventStreamError

from llmops.local.emulators import BedrockRuntimeEmulator, FaultSpec, SageMakerRuntimeEmulator
from llmops.local.wsgi_server import LoopbackServer

BotoFactory = Any  # conftest's boto_client fixture
HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"  # one of conftest's BEDROCK_MODELS
TOKEN_LATENCY_S = 0.1
TOKENS = 10
MESSAGES = [{"role": "user", "content": [{"text": "Where do requests go?"}]}]


def _timed(events: Any) -> list[tuple[float, dict[str, Any]]]:
    started = time.monotonic()
    return [(time.monotonic() - started, event) for event in events]


def _assert_incremental(arrivals: list[float]) -> None:
    """The first token came long before the last: a buffered answer would bring them together."""
    assert arrivals[-1] >= (TOKENS - 1) * TOKEN_LATENCY_S * 0.9
    assert arrivals[0] < arrivals[-1] - (TOKENS / 2) * TOKEN_LATENCY_S
    assert arrivals == sorted(arrivals)


# --- Bedrock ConverseStream ------------------------------------------------------------------------


def test_converse_stream_sends_the_event_sequence_token_by_token(
    bedrock_emulator: tuple[BedrockRuntimeEmulator, LoopbackServer], boto_client: BotoFactory
) -> None:
    app, server = bedrock_emulator
    app.faults.set(HAIKU, FaultSpec(token_latency_ms=TOKEN_LATENCY_S * 1000))
    client = boto_client("bedrock-runtime", server.url)
    response = client.converse_stream(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": TOKENS})
    timed = _timed(response["stream"])
    names = [next(iter(event)) for _, event in timed]
    assert names == ["messageStart", *["contentBlockDelta"] * TOKENS, "contentBlockStop", "messageStop", "metadata"]
    _assert_incremental([t for t, event in timed if "contentBlockDelta" in event])
    events = [event for _, event in timed]
    assert events[-2]["messageStop"]["stopReason"] == "max_tokens"
    usage = events[-1]["metadata"]["usage"]
    assert (usage["outputTokens"], usage["totalTokens"]) == (TOKENS, usage["inputTokens"] + TOKENS)
    assert events[-1]["metadata"]["metrics"]["latencyMs"] >= 900

    # The same answer as the buffered call, which pays the same pace before answering.
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    started = time.monotonic()
    buffered = client.converse(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": TOKENS})
    assert time.monotonic() - started >= TOKENS * TOKEN_LATENCY_S * 0.9
    assert buffered["output"]["message"]["content"][0]["text"] == text


def test_first_token_latency_delays_only_the_first_token(
    bedrock_emulator: tuple[BedrockRuntimeEmulator, LoopbackServer], boto_client: BotoFactory
) -> None:
    app, server = bedrock_emulator
    app.faults.set(HAIKU, FaultSpec(first_token_latency_ms=300))
    response = boto_client("bedrock-runtime", server.url).converse_stream(
        modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 3}
    )
    timed = _timed(response["stream"])
    deltas = [t for t, event in timed if "contentBlockDelta" in event]
    assert deltas[0] >= 0.25
    assert deltas[-1] - deltas[0] < 0.2


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        (FaultSpec(throttle_rate=1.0, fault_after_tokens=2), "throttlingException"),
        (FaultSpec(error_rate=1.0, error_status=424, fault_after_tokens=2), "modelStreamErrorException"),
        (FaultSpec(error_rate=1.0, error_status=503, fault_after_tokens=2), "serviceUnavailableException"),
        (FaultSpec(error_rate=1.0, fault_after_tokens=2), "internalServerException"),
    ],
)
def test_a_mid_stream_fault_is_a_modeled_exception_event_after_n_tokens(
    bedrock_emulator: tuple[BedrockRuntimeEmulator, LoopbackServer],
    boto_client: BotoFactory,
    spec: FaultSpec,
    code: str,
) -> None:
    app, server = bedrock_emulator
    app.faults.set(HAIKU, spec)
    response = boto_client("bedrock-runtime", server.url).converse_stream(modelId=HAIKU, messages=MESSAGES)
    received = []
    with pytest.raises(EventStreamError) as info:
        for event in response["stream"]:
            received.append(event)
    assert info.value.response["Error"]["Code"] == code
    assert [next(iter(e)) for e in received] == ["messageStart", "contentBlockDelta", "contentBlockDelta"]


def test_a_fault_without_fault_after_tokens_fails_the_stream_before_it_starts(
    bedrock_emulator: tuple[BedrockRuntimeEmulator, LoopbackServer], boto_client: BotoFactory
) -> None:
    app, server = bedrock_emulator
    app.faults.set(HAIKU, FaultSpec(throttle_rate=1.0))
    with pytest.raises(ClientError) as info:
        boto_client("bedrock-runtime", server.url).converse_stream(modelId=HAIKU, messages=MESSAGES)
    assert info.value.response["Error"]["Code"] == "ThrottlingException"


def test_a_stream_that_hangs_mid_way_times_the_client_out(
    bedrock_emulator: tuple[BedrockRuntimeEmulator, LoopbackServer], boto_client: BotoFactory
) -> None:
    app, server = bedrock_emulator
    app.faults.set(HAIKU, FaultSpec(timeout_rate=1.0, timeout_s=30, fault_after_tokens=1))
    response = boto_client("bedrock-runtime", server.url, read_timeout=0.5).converse_stream(
        modelId=HAIKU, messages=MESSAGES
    )
    received = []
    started = time.monotonic()
    with pytest.raises(Exception, match=r"(?i)timed out"):
        for event in response["stream"]:
            received.append(event)
    assert time.monotonic() - started < 5
    assert len(received) == 2  # messageStart and the first token
    app.release_waiters()


# --- SageMaker InvokeEndpointWithResponseStream ------------------------------------------------------


def _sse_docs(parts: list[bytes]) -> list[Any]:
    events = b"".join(parts).decode().split("\n\n")
    return [e.removeprefix("data:").strip() for e in events if e.strip()]


def test_openai_container_streams_sse_chunks_in_payload_parts_through_the_target_variant(
    sagemaker_emulator: tuple[SageMakerRuntimeEmulator, LoopbackServer], boto_client: BotoFactory
) -> None:
    app, server = sagemaker_emulator
    app.faults.set("llmops-llama3-8b/candidate", FaultSpec(token_latency_ms=TOKEN_LATENCY_S * 1000))
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": TOKENS,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = boto_client("sagemaker-runtime", server.url).invoke_endpoint_with_response_stream(
        EndpointName="llmops-llama3-8b",
        TargetVariant="candidate",
        Body=json.dumps(body),
        ContentType="application/json",
    )
    assert response["InvokedProductionVariant"] == "candidate"
    assert response["ContentType"] == "text/event-stream"
    timed = _timed(response["Body"])
    data = _sse_docs([event["PayloadPart"]["Bytes"] for _, event in timed])
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    contents = [c["choices"][0]["delta"]["content"] for c in chunks[1:-2]]
    assert len(contents) == TOKENS
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == TOKENS
    _assert_incremental([t for t, _ in timed][1 : 1 + TOKENS])


def test_openai_stream_has_no_usage_chunk_unless_asked(
    sagemaker_emulator: tuple[SageMakerRuntimeEmulator, LoopbackServer], boto_client: BotoFactory
) -> None:
    _, server = sagemaker_emulator
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "stream": True}
    response = boto_client("sagemaker-runtime", server.url).invoke_endpoint_with_response_stream(
        EndpointName="llmops-llama3-8b", Body=json.dumps(body), ContentType="application/json"
    )
    chunks = [json.loads(d) for d in _sse_docs([e["PayloadPart"]["Bytes"] for e in response["Body"]])[:-1]]
    assert all(c["choices"] for c in chunks)
    assert "usage" not in chunks[-1]


@pytest.mark.parametrize(
    ("parameters", "finish_reason", "last_token"),
    [
        ({"max_new_tokens": 4, "details": True}, "length", None),
        ({"details": True}, "eos_token", "</s>"),
        ({"details": True, "stop": ["|"]}, "stop_sequence", "|"),
    ],
)
def test_tgi_container_streams_tokens_and_ends_with_generated_text_and_details(
    sagemaker_emulator: tuple[SageMakerRuntimeEmulator, LoopbackServer],
    boto_client: BotoFactory,
    parameters: dict[str, Any],
    finish_reason: str,
    last_token: str | None,
) -> None:
    _, server = sagemaker_emulator
    body = {"inputs": "[INST] hello there [/INST]", "parameters": parameters, "stream": True}
    response = boto_client("sagemaker-runtime", server.url).invoke_endpoint_with_response_stream(
        EndpointName="llmops-mistral-7b-tgi", Body=json.dumps(body), ContentType="application/json"
    )
    parts = [e["PayloadPart"]["Bytes"] for e in response["Body"]]
    assert all(p.startswith(b"data:{") for p in parts)  # TGI's server writes no space after "data:"
    events = [json.loads(d) for d in _sse_docs(parts)]
    assert all(e["generated_text"] is None and e["details"] is None for e in events[:-1])
    final = events[-1]
    assert final["details"]["finish_reason"] == finish_reason
    if last_token is not None:
        assert final["token"]["text"] == last_token
    texts = [e["token"]["text"] for e in events if not e["token"]["special"]]
    assert "".join(texts) == final["generated_text"]
    if finish_reason == "length":
        assert final["details"]["generated_tokens"] == len(texts) == 4


def test_a_body_that_asks_for_no_stream_gets_one_document_in_one_part(
    sagemaker_emulator: tuple[SageMakerRuntimeEmulator, LoopbackServer], boto_client: BotoFactory
) -> None:
    _, server = sagemaker_emulator
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
    response = boto_client("sagemaker-runtime", server.url).invoke_endpoint_with_response_stream(
        EndpointName="llmops-llama3-8b", Body=json.dumps(body), ContentType="application/json"
    )
    (event,) = list(response["Body"])
    assert json.loads(event["PayloadPart"]["Bytes"])["object"] == "chat.completion"


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        (FaultSpec(error_rate=1.0, fault_after_tokens=1), "ModelStreamError"),
        (FaultSpec(error_rate=1.0, error_status=503, fault_after_tokens=1), "InternalStreamFailure"),
    ],
)
def test_a_mid_stream_fault_ends_the_sagemaker_stream_with_its_exception(
    sagemaker_emulator: tuple[SageMakerRuntimeEmulator, LoopbackServer],
    boto_client: BotoFactory,
    spec: FaultSpec,
    code: str,
) -> None:
    app, server = sagemaker_emulator
    app.faults.set("llmops-llama3-8b", spec)
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    response = boto_client("sagemaker-runtime", server.url).invoke_endpoint_with_response_stream(
        EndpointName="llmops-llama3-8b", Body=json.dumps(body), ContentType="application/json"
    )
    received = []
    with pytest.raises(EventStreamError) as info:
        for event in response["Body"]:
            received.append(event)
    assert info.value.response["Error"]["Code"] == code
    assert len(received) == 2  # the role chunk and one token


def test_unknown_variant_is_rejected_before_the_stream(
    sagemaker_emulator: tuple[SageMakerRuntimeEmulator, LoopbackServer], boto_client: BotoFactory
) -> None:
    _, server = sagemaker_emulator
    with pytest.raises(ClientError) as info:
        boto_client("sagemaker-runtime", server.url).invoke_endpoint_with_response_stream(
            EndpointName="llmops-llama3-8b", TargetVariant="nope", Body=b"{}", ContentType="application/json"
        )
    assert info.value.response["Error"]["Code"] == "ValidationError"
