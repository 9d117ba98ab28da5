"""`POST /v1/embeddings` through `llmops serve` with the official openai SDK and LangChain's
OpenAIEmbeddings, on Bedrock aliases (Titan v2, Cohere Embed) and a SageMaker alias (a TEI endpoint):
float and base64 (the SDK's default, which it decodes), `dimensions`, the aliases in /v1/models, the
400s that name the parameter, and the audit record (the number of inputs, never the texts)."""

from __future__ import annotations

import json
import math
from typing import Any

import openai
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local_stack")]

CANARY_EMAIL = "canary.embed.7f3a@example.com"


def _norm(vector: list[float]) -> float:
    return math.sqrt(sum(v * v for v in vector))


@pytest.mark.parametrize(
    ("alias", "size"), [("titan-embed-v2", 1024), ("cohere-embed-english", 1024), ("bge-base-embed", 768)]
)
def test_sdk_embeds_float_and_base64_alike(client: openai.OpenAI, alias: str, size: int) -> None:
    texts = ["The quick brown fox.", "Jumps over the lazy dog.", "The quick brown fox."]
    as_float = client.embeddings.create(model=alias, input=texts, encoding_format="float")
    as_base64 = client.embeddings.create(model=alias, input=texts)  # the SDK asks for base64 and decodes it
    assert as_float.model == alias and as_float.object == "list"
    assert [d.index for d in as_float.data] == [0, 1, 2]
    assert all(len(d.embedding) == size for d in as_float.data)
    assert math.isclose(_norm(as_float.data[0].embedding), 1.0, rel_tol=1e-5)
    assert as_float.data[0].embedding == as_float.data[2].embedding  # equal texts, equal vectors
    for f, b in zip(as_float.data, as_base64.data, strict=True):
        assert b.embedding == pytest.approx(f.embedding, abs=1e-6)  # float32 on the wire
    assert as_float.usage.prompt_tokens == as_float.usage.total_tokens > 0


def test_titan_answers_the_asked_dimensions(client: openai.OpenAI) -> None:
    response = client.embeddings.with_raw_response.create(
        model="titan-embed-v2", input="one text", dimensions=256, encoding_format="float"
    )
    assert response.headers["x-llmops-route"] == "titan-embed-v2"
    assert response.headers["x-llmops-target"] == "bedrock:amazon.titan-embed-text-v2:0"
    assert float(response.headers["x-llmops-cost-usd"]) > 0
    assert len(response.parse().data[0].embedding) == 256


def test_cohere_batches_more_texts_than_one_call_takes(client: openai.OpenAI) -> None:
    texts = [f"document number {i}" for i in range(200)]  # three InvokeModel calls of at most 96
    response = client.embeddings.create(model="cohere-embed-english", input=texts, encoding_format="float")
    assert [d.index for d in response.data] == list(range(200))
    assert len({tuple(d.embedding[:4]) for d in response.data}) == 200


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"model": "bge-base-embed", "input": "x", "dimensions": 256}, "dimensions"),
        ({"model": "titan-embed-v2", "input": "x", "dimensions": 300}, "dimensions"),
        ({"model": "titan-embed-v2", "input": [[1, 2, 3]]}, "input"),  # token arrays
        ({"model": "titan-embed-v2", "input": [1, 2, 3]}, "input"),
        ({"model": "titan-embed-v2", "input": []}, "input"),
        ({"model": "titan-embed-v2", "input": ["fine", ""]}, "input"),
        ({"model": "cohere-embed-english", "input": "x" * 2049}, "input"),
        ({"model": "chat-default", "input": "x"}, "model"),  # a chat alias
        ({"model": "titan-embed-v2", "input": "x", "encoding_format": "int8"}, "encoding_format"),
    ],
)
def test_bad_requests_name_the_parameter(client: openai.OpenAI, kwargs: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as error:
        client.embeddings.create(**kwargs)
    body = error.value.body
    assert isinstance(body, dict)
    assert body.get("error", body)["param"] == param


def test_chat_on_an_embedding_alias_names_model(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model="titan-embed-v2", messages=[{"role": "user", "content": "hi"}])
    body = error.value.body
    assert isinstance(body, dict) and body.get("error", body)["param"] == "model"


def test_models_list_embedding_aliases_with_their_kind(client: openai.OpenAI) -> None:
    # The SDK's Model keeps the gateway's extra fields (`kind`, `capabilities`) in model_extra.
    extras = {m.id: m.model_extra or {} for m in client.models.list()}
    for alias in ("titan-embed-v2", "cohere-embed-english", "bge-base-embed"):
        assert extras[alias]["kind"] == "embedding"
    assert extras["chat-default"]["kind"] == "chat"
    assert "tools" in extras["chat-default"]["capabilities"]


def test_pii_is_redacted_before_embedding_and_never_audited(client: openai.OpenAI, llmops_cli: Any) -> None:
    text = f"Contact {CANARY_EMAIL} about the invoice."
    redacted = "Contact [EMAIL_1] about the invoice."
    response = client.embeddings.with_raw_response.create(model="titan-embed-v2", input=[text], encoding_format="float")
    # The emulated vectors are seeded by the text the model saw: that of the redacted text.
    expected = client.embeddings.create(model="titan-embed-v2", input=[redacted], encoding_format="float")
    assert response.parse().data[0].embedding == expected.data[0].embedding
    request_id = response.headers["x-request-id"]
    out = llmops_cli("audit", "show", request_id, "--json").stdout
    record = json.loads(out)
    assert record["embedding_inputs"] == 1 and record["alias"] == "titan-embed-v2"
    assert record["guard"][0] == {"stage": "input", "action": "redact", "findings": {"EMAIL": 1}}
    assert record["prompt"] is None and record["input_tokens"] > 0 and record["cost_usd"] > 0
    assert CANARY_EMAIL not in out


def test_langchain_openai_embeddings(local_stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_openai import OpenAIEmbeddings
    from tiktoken import load

    def no_download(*_args: Any, **_kwargs: Any) -> bytes:
        raise AssertionError("tiktoken tried to fetch an encoding")

    monkeypatch.setattr(load, "read_file_cached", no_download)
    monkeypatch.setattr(load, "read_file", no_download)
    embeddings = OpenAIEmbeddings(
        model="bge-base-embed",
        base_url=local_stack["base_url"],
        api_key=local_stack["api_key"],  # type: ignore[arg-type]
        check_embedding_ctx_length=False,  # strings, not tiktoken token arrays
        max_retries=0,
    )
    documents = embeddings.embed_documents(["Paris is in France.", "Berlin is in Germany."])
    query = embeddings.embed_query("Paris is in France.")
    assert [len(v) for v in documents] == [768, 768]
    assert query == pytest.approx(documents[0], abs=1e-6)
