"""Forwarding to an OpenAI-compatible server (a fake one on loopback standing in for vLLM/ollama)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from llmops.local.emulators import (
    BedrockRuntimeEmulator,
    OpenAICompatibleForwarder,
    SageMakerRuntimeEmulator,
)
from llmops.local.wsgi_server import LoopbackServer


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.client_ports: list[int] = []
        self.fail_with: int | None = None
        self.close_after_answer = False

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        body = json.loads(request.get_data())
        self.requests.append((request.path, body))
        self.client_ports.append(int(environ["REMOTE_PORT"]))
        if self.fail_with is not None:
            response = Response(json.dumps({"error": {"message": "nope"}}), status=self.fail_with)
        elif request.path.endswith("/chat/completions"):
            response = Response(
                json.dumps(
                    {
                        "choices": [
                            {
                                "message": {"role": "assistant", "content": "real words"},
                                "finish_reason": "length",
                            }
                        ],
                        "usage": {"prompt_tokens": 9, "completion_tokens": 2},
                    }
                ),
                mimetype="application/json",
            )
        else:
            response = Response(
                json.dumps({"choices": [{"text": "raw completion", "finish_reason": "stop"}]}),
                mimetype="application/json",
            )
        if self.close_after_answer:
            response.headers["Connection"] = "close"
        return response(environ, start_response)


@pytest.fixture
def upstream() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    with LoopbackServer(fake) as server:
        yield fake, f"{server.url}/v1"


def test_bedrock_converse_is_forwarded_as_chat(upstream: tuple[FakeOpenAI, str], boto_client: Any) -> None:
    fake, base = upstream
    app = BedrockRuntimeEmulator(forwarder=OpenAICompatibleForwarder(base, model="llama3.1:8b", timeout_s=5))
    with LoopbackServer(app) as server:
        resp = boto_client("bedrock-runtime", server.url).converse(
            modelId="amazon.nova-lite-v1:0",
            system=[{"text": "be brief"}],
            messages=[{"role": "user", "content": [{"text": "hi"}]}],
            inferenceConfig={"maxTokens": 2, "temperature": 0.5},
        )
    assert resp["output"]["message"]["content"][0]["text"] == "real words"
    assert resp["stopReason"] == "max_tokens"
    assert (resp["usage"]["inputTokens"], resp["usage"]["outputTokens"]) == (9, 2)
    path, body = fake.requests[0]
    assert path == "/v1/chat/completions"
    assert body["model"] == "llama3.1:8b"
    assert body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert (body["max_tokens"], body["temperature"]) == (2, 0.5)


def test_sagemaker_tgi_prompt_is_forwarded_as_completion(upstream: tuple[FakeOpenAI, str], boto_client: Any) -> None:
    fake, base = upstream
    app = SageMakerRuntimeEmulator(forwarder=OpenAICompatibleForwarder(base, timeout_s=5))
    with LoopbackServer(app) as server:
        resp = boto_client("sagemaker-runtime", server.url).invoke_endpoint(
            EndpointName="ep",
            Body=json.dumps({"inputs": "[INST] hi [/INST]", "parameters": {"details": True}}),
            ContentType="application/json",
        )
    doc = json.loads(resp["Body"].read())
    assert doc[0]["generated_text"] == "raw completion"
    assert fake.requests[0][0] == "/v1/completions"
    assert fake.requests[0][1]["prompt"] == "[INST] hi [/INST]"


def test_upstream_failures_map_to_provider_error_shapes(upstream: tuple[FakeOpenAI, str], boto_client: Any) -> None:
    fake, base = upstream
    fake.fail_with = 500
    sagemaker = SageMakerRuntimeEmulator(forwarder=OpenAICompatibleForwarder(base, timeout_s=5))
    bedrock = BedrockRuntimeEmulator(forwarder=OpenAICompatibleForwarder(base, timeout_s=5))
    with LoopbackServer(sagemaker) as sm_server, LoopbackServer(bedrock) as br_server:
        sm = boto_client("sagemaker-runtime", sm_server.url)
        with pytest.raises(sm.exceptions.ModelError) as info:
            sm.invoke_endpoint(
                EndpointName="ep",
                Body=json.dumps({"messages": [{"role": "user", "content": "x"}]}),
                ContentType="application/json",
            )
        assert info.value.response["OriginalStatusCode"] == 500
        fake.fail_with = 429
        br = boto_client("bedrock-runtime", br_server.url)
        with pytest.raises(br.exceptions.ThrottlingException):
            br.converse(modelId="m", messages=[{"role": "user", "content": [{"text": "x"}]}])


def test_unreachable_upstream_is_a_model_error(boto_client: Any) -> None:
    # Port 9 (discard) on loopback: nothing listens, so the connection is refused at once.
    app = SageMakerRuntimeEmulator(forwarder=OpenAICompatibleForwarder("http://127.0.0.1:9/v1", timeout_s=2))
    with LoopbackServer(app) as server:
        client = boto_client("sagemaker-runtime", server.url)
        with pytest.raises(client.exceptions.ModelError) as info:
            client.invoke_endpoint(EndpointName="ep", Body=json.dumps({"inputs": "x"}), ContentType="application/json")
    assert info.value.response["OriginalStatusCode"] == 502


def test_answers_read_whole_reuse_one_keep_alive_connection(upstream: tuple[FakeOpenAI, str]) -> None:
    fake, base = upstream
    forwarder = OpenAICompatibleForwarder(base, timeout_s=5)
    ports = set()
    for _ in range(3):
        forwarder.chat_body(model="m", body={"messages": [{"role": "user", "content": "hi"}]})
        ports.add(fake.client_ports[-1])
    assert len(fake.requests) == 3
    assert len(ports) == 1  # one TCP connection carried all three calls


def test_an_idle_connection_the_upstream_closed_is_replaced(upstream: tuple[FakeOpenAI, str]) -> None:
    fake, base = upstream
    forwarder = OpenAICompatibleForwarder(base, timeout_s=5)
    forwarder.chat_body(model="m", body={"messages": [{"role": "user", "content": "hi"}]})
    fake.close_after_answer = True  # the next answer ends its connection, as a keep-alive timeout does
    forwarder.chat_body(model="m", body={"messages": [{"role": "user", "content": "hi"}]})
    fake.close_after_answer = False
    doc = forwarder.chat_body(model="m", body={"messages": [{"role": "user", "content": "hi"}]})
    assert doc["choices"][0]["message"]["content"] == "real words"
    assert len(fake.requests) == 3
