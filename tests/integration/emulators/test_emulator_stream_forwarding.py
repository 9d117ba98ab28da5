"""Streaming calls forwarded to an OpenAI-compatible server that streams (a fake one on loopback)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, EventStreamError
from werkzeug.wrappers import Request, Response

from llmops.local.emulators import BedrockRuntimeEmulator, OpenAICompatibleForwarder, SageMakerRuntimeEmulator
from llmops.local.wsgi_server import LoopbackServer

WORDS = ["real", " words", " arrive", " one", " by", " one"]
GAP_S = 0.15


class StreamingOpenAI:
    """Streams WORDS GAP_S apart as chat.completion.chunk (or completion) SSE, then usage and [DONE]."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.fail_with: int | None = None
        self.break_after: int | None = None  # drop the connection after this many words
        self.finished = threading.Event()
        self.words_sent = 0

    def _events(self, chat: bool) -> Iterator[bytes]:
        try:
            for index, word in enumerate(WORDS):
                if self.break_after is not None and index == self.break_after:
                    yield b"data: {not json\n\n"
                    return
                time.sleep(GAP_S)
                self.words_sent = index + 1
                choice = {"index": 0, "delta": {"content": word}} if chat else {"index": 0, "text": word}
                yield f"data: {json.dumps({'choices': [{**choice, 'finish_reason': None}]})}\n\n".encode()
            last = {"index": 0, "delta": {}} if chat else {"index": 0, "text": ""}
            yield f"data: {json.dumps({'choices': [{**last, 'finish_reason': 'stop'}]})}\n\n".encode()
            usage = {"prompt_tokens": 7, "completion_tokens": len(WORDS), "total_tokens": 7 + len(WORDS)}
            yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode()
            yield b"data: [DONE]\n\n"
        finally:
            self.finished.set()

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        self.requests.append((request.path, json.loads(request.get_data())))
        if self.fail_with is not None:
            response = Response(json.dumps({"error": {"message": "nope"}}), status=self.fail_with)
        else:
            chat = request.path.endswith("/chat/completions")
            response = Response(self._events(chat), mimetype="text/event-stream", direct_passthrough=True)
        return response(environ, start_response)


@pytest.fixture
def upstream() -> Iterator[tuple[StreamingOpenAI, str]]:
    fake = StreamingOpenAI()
    with LoopbackServer(fake) as server:
        yield fake, f"{server.url}/v1"


def test_converse_stream_relays_the_upstreams_tokens_as_they_arrive(
    upstream: tuple[StreamingOpenAI, str], boto_client: Any
) -> None:
    fake, base = upstream
    app = BedrockRuntimeEmulator(forwarder=OpenAICompatibleForwarder(base, model="llama3.1:8b", timeout_s=5))
    with LoopbackServer(app) as server:
        response = boto_client("bedrock-runtime", server.url).converse_stream(
            modelId="amazon.nova-lite-v1:0",
            system=[{"text": "be brief"}],
            messages=[{"role": "user", "content": [{"text": "hi"}]}],
            inferenceConfig={"maxTokens": 20},
        )
        started = time.monotonic()
        arrivals, events = [], []
        for event in response["stream"]:
            arrivals.append(time.monotonic() - started)
            events.append(event)
    deltas = [
        (t, e["contentBlockDelta"]["delta"]["text"])
        for t, e in zip(arrivals, events, strict=True)
        if "contentBlockDelta" in e
    ]
    assert [text for _, text in deltas] == WORDS
    assert deltas[0][0] < deltas[-1][0] - (len(WORDS) - 2) * GAP_S  # relayed, not buffered
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"
    assert events[-1]["metadata"]["usage"]["inputTokens"] == 7
    path, body = fake.requests[0]
    assert path == "/v1/chat/completions"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"][0] == {"role": "system", "content": "be brief"}


def test_an_upstream_refusal_fails_the_stream_before_it_starts(
    upstream: tuple[StreamingOpenAI, str], boto_client: Any
) -> None:
    fake, base = upstream
    fake.fail_with = 429
    app = BedrockRuntimeEmulator(forwarder=OpenAICompatibleForwarder(base, timeout_s=5))
    with LoopbackServer(app) as server, pytest.raises(ClientError) as info:
        boto_client("bedrock-runtime", server.url).converse_stream(
            modelId="amazon.nova-lite-v1:0", messages=[{"role": "user", "content": [{"text": "hi"}]}]
        )
    assert info.value.response["Error"]["Code"] == "ThrottlingException"


def test_an_upstream_that_breaks_mid_stream_ends_the_stream_with_a_model_stream_error(
    upstream: tuple[StreamingOpenAI, str], boto_client: Any
) -> None:
    fake, base = upstream
    fake.break_after = 2
    app = BedrockRuntimeEmulator(forwarder=OpenAICompatibleForwarder(base, timeout_s=5))
    with LoopbackServer(app) as server:
        response = boto_client("bedrock-runtime", server.url).converse_stream(
            modelId="amazon.nova-lite-v1:0", messages=[{"role": "user", "content": [{"text": "hi"}]}]
        )
        received = []
        with pytest.raises(EventStreamError) as info:
            for event in response["stream"]:
                received.append(event)
    assert info.value.response["Error"]["Code"] == "modelStreamErrorException"
    assert sum("contentBlockDelta" in e for e in received) == 2


def test_sagemaker_tgi_stream_forwards_the_raw_prompt_and_relays_tokens(
    upstream: tuple[StreamingOpenAI, str], boto_client: Any
) -> None:
    fake, base = upstream
    app = SageMakerRuntimeEmulator(forwarder=OpenAICompatibleForwarder(base, timeout_s=5))
    body = {"inputs": "<s>[INST] hi [/INST]", "parameters": {"details": True}, "stream": True}
    with LoopbackServer(app) as server:
        response = boto_client("sagemaker-runtime", server.url).invoke_endpoint_with_response_stream(
            EndpointName="tgi-endpoint", Body=json.dumps(body), ContentType="application/json"
        )
        parts = [e["PayloadPart"]["Bytes"] for e in response["Body"]]
    events = [json.loads(p.decode().removeprefix("data:")) for p in parts]
    assert "".join(e["token"]["text"] for e in events if not e["token"]["special"]) == "".join(WORDS)
    assert events[-1]["generated_text"] == "".join(WORDS)
    assert events[-1]["details"]["finish_reason"] == "eos_token"
    path, sent = fake.requests[0]
    assert path == "/v1/completions" and sent["prompt"] == body["inputs"] and sent["stream"] is True


def test_sagemaker_openai_stream_relays_chunks_and_closing_the_client_stops_the_upstream(
    upstream: tuple[StreamingOpenAI, str], boto_client: Any
) -> None:
    fake, base = upstream
    app = SageMakerRuntimeEmulator(forwarder=OpenAICompatibleForwarder(base, timeout_s=5))
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    with LoopbackServer(app) as server:
        response = boto_client("sagemaker-runtime", server.url).invoke_endpoint_with_response_stream(
            EndpointName="chat-endpoint", Body=json.dumps(body), ContentType="application/json"
        )
        stream = iter(response["Body"])
        next(stream)  # the role chunk
        first = json.loads(next(stream)["PayloadPart"]["Bytes"].decode().removeprefix("data: "))
        assert first["choices"][0]["delta"]["content"] == WORDS[0]
        response["Body"].close()
        # The emulator notices the client is gone at its next write and closes the upstream read.
        assert fake.finished.wait(timeout=len(WORDS) * GAP_S + 2)
    assert fake.words_sent < len(WORDS)
