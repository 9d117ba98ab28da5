"""The official openai SDK against the local stack: completions, streaming, models, errors, fallback."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import openai
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local_stack")]

MESSAGES: list[Any] = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "Name three colours of the rainbow."},
]


@pytest.mark.parametrize(
    ("alias", "target_prefix"),
    [
        ("chat-default", "bedrock:"),
        ("llama3-8b", "sagemaker:llmops-llama3-8b/primary"),
        ("mistral-7b", "sagemaker:llmops-mistral-7b-tgi"),
    ],
)
def test_completion_through_each_provider(client: openai.OpenAI, alias: str, target_prefix: str) -> None:
    raw = client.chat.completions.with_raw_response.create(model=alias, messages=MESSAGES, max_tokens=64)
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.model == alias
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason in {"stop", "length"}
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert raw.headers["x-llmops-route"] == alias
    assert raw.headers["x-llmops-target"].startswith(target_prefix)
    assert float(raw.headers["x-llmops-cost-usd"]) > 0
    assert raw.headers["x-request-id"]


def test_answers_are_deterministic(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model="chat-default", messages=MESSAGES, temperature=0)
    second = client.chat.completions.create(model="chat-default", messages=MESSAGES, temperature=0)
    assert first.choices[0].message.content == second.choices[0].message.content


def test_streaming_yields_chunks_that_join_to_the_answer(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(model="llama3-8b", messages=MESSAGES)
    stream = client.chat.completions.create(
        model="llama3-8b", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert any(c.choices and c.choices[0].finish_reason for c in chunks)
    assert chunks[-1].usage is not None


def test_models_lists_the_aliases(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"chat-default", "llama3-8b", "mistral-7b", "nova-lite"} <= ids


def test_bad_key_is_401(local_stack: dict[str, Any]) -> None:
    bad = openai.OpenAI(base_url=local_stack["base_url"], api_key="llmops-nope-nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        bad.chat.completions.create(model="chat-default", messages=MESSAGES)
    assert err.value.code == "invalid_api_key"


def test_unknown_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gpt-nope", messages=MESSAGES)
    assert err.value.code == "model_not_found"


def test_invalid_request_is_400_naming_the_param(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="chat-default", messages=MESSAGES, n=3)
    assert err.value.param == "n"


def test_health_needs_no_key(local_stack: dict[str, Any]) -> None:
    url = local_stack["base_url"].removesuffix("/v1") + "/health"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert json.loads(response.read()) == {"status": "ok"}


def test_openapi_document_needs_no_key(local_stack: dict[str, Any]) -> None:
    with urllib.request.urlopen(local_stack["base_url"] + "/openapi.json", timeout=5) as response:
        document = json.loads(response.read())
    assert document["openapi"].startswith("3.")
    assert {"/v1/chat/completions", "/v1/openapi.json", "/health"} <= set(document["paths"])


def _set_faults(emulator_url: str, key: str, **plan: float) -> None:
    request = urllib.request.Request(
        f"{emulator_url}/_emulator/faults",
        data=json.dumps({"key": key, **plan}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


def test_throttled_primary_falls_back_to_secondary(client: openai.OpenAI, local_stack: dict[str, Any]) -> None:
    bedrock = local_stack["bedrock_runtime_url"]
    _set_faults(bedrock, "anthropic.claude-3-5-haiku-20241022-v1:0", throttle_rate=1.0)
    try:
        raw = client.chat.completions.with_raw_response.create(model="chat-default", messages=MESSAGES)
        assert raw.headers["x-llmops-target"] == "bedrock:amazon.nova-lite-v1:0"
        assert raw.parse().choices[0].message.content
    finally:
        _set_faults(bedrock, "anthropic.claude-3-5-haiku-20241022-v1:0", throttle_rate=0.0)


def test_every_target_down_is_a_documented_5xx(client: openai.OpenAI, local_stack: dict[str, Any]) -> None:
    bedrock = local_stack["bedrock_runtime_url"]
    keys = ["anthropic.claude-3-5-haiku-20241022-v1:0", "amazon.nova-lite-v1:0"]
    for key in keys:
        _set_faults(bedrock, key, error_rate=1.0)
    try:
        with pytest.raises(openai.APIStatusError) as err:
            client.chat.completions.create(model="chat-default", messages=MESSAGES)
        assert err.value.status_code == 502
        assert "chat-default" in err.value.message
    finally:
        for key in keys:
            _set_faults(bedrock, key, error_rate=0.0)


def test_concurrent_requests_across_workers_keep_their_own_identity(client: openai.OpenAI) -> None:
    """`llmops serve` runs several front-door processes on one port; each request keeps its id."""
    from concurrent.futures import ThreadPoolExecutor

    def ask(i: int) -> str:
        raw = client.chat.completions.with_raw_response.create(
            model="nova-lite", messages=[{"role": "user", "content": f"question {i}"}], temperature=0.5
        )
        assert raw.parse().choices[0].message.content
        return str(raw.headers["x-request-id"])

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(ask, range(32)))
    assert len(set(ids)) == len(ids)
