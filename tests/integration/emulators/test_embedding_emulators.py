"""The embedding models behind the local emulators, through unchanged boto3 clients and the gateway's
own embedding adapters: Titan v2 and Cohere Embed InvokeModel bodies, a SageMaker TEI endpoint, Bedrock's
validation, injected faults, and forwarding to an OpenAI-compatible upstream's /v1/embeddings."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from werkzeug.wrappers import Request, Response

from llmops.adapters.bedrock.embeddings import BedrockEmbeddingProvider
from llmops.adapters.dynamodb.route_source import FileRouteSource
from llmops.adapters.sagemaker.embeddings import SageMakerEmbeddingProvider
from llmops.domain.embeddings import EmbeddingInputType
from llmops.domain.errors import ProviderError, ProviderFailureKind
from llmops.domain.routing import RouteTable, Target
from llmops.local.emulators import (
    BedrockRuntimeEmulator,
    FaultSpec,
    OpenAICompatibleForwarder,
    SageMakerRuntimeEmulator,
)
from llmops.local.emulators.embedding_models import INPUT_TOKEN_HEADER
from llmops.local.wsgi_server import LoopbackServer

TITAN = "amazon.titan-embed-text-v2:0"
COHERE = "cohere.embed-english-v3"
TEI_ENDPOINT = "llmops-bge-base-embed"


@pytest.fixture(scope="module")
def table() -> RouteTable:
    return FileRouteSource().current()


@pytest.fixture
def bedrock(table: RouteTable) -> Iterator[tuple[BedrockRuntimeEmulator, str]]:
    app = BedrockRuntimeEmulator.from_route_table(table)
    with LoopbackServer(app) as server:
        yield app, server.url


@pytest.fixture
def sagemaker(table: RouteTable) -> Iterator[tuple[SageMakerRuntimeEmulator, str]]:
    app = SageMakerRuntimeEmulator.from_route_table(table)
    with LoopbackServer(app) as server:
        yield app, server.url


def _invoke(client: Any, model_id: str, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    response = client.invoke_model(
        modelId=model_id, body=json.dumps(body), contentType="application/json", accept="application/json"
    )
    return json.loads(response["body"].read()), response["ResponseMetadata"]["HTTPHeaders"]


def _norm(vector: list[float]) -> float:
    return math.sqrt(sum(v * v for v in vector))


def test_titan_answers_its_body_at_the_asked_size(bedrock: tuple[Any, str], boto_client: Any) -> None:
    client = boto_client("bedrock-runtime", bedrock[1])
    doc, headers = _invoke(client, TITAN, {"inputText": "hello world", "dimensions": 256, "normalize": True})
    assert set(doc) == {"embedding", "embeddingsByType", "inputTextTokenCount"}
    assert len(doc["embedding"]) == 256
    assert doc["embeddingsByType"]["float"] == doc["embedding"]
    assert math.isclose(_norm(doc["embedding"]), 1.0, rel_tol=1e-6)
    assert int(headers[INPUT_TOKEN_HEADER.lower()]) == doc["inputTextTokenCount"] > 0
    again, _ = _invoke(client, TITAN, {"inputText": "hello world", "dimensions": 256})
    other, _ = _invoke(client, TITAN, {"inputText": "hello there", "dimensions": 256})
    assert again["embedding"] == doc["embedding"]  # deterministic per text
    assert other["embedding"] != doc["embedding"]
    default, _ = _invoke(client, TITAN, {"inputText": "hello world"})
    assert len(default["embedding"]) == 1024


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"inputText": "x", "dimensions": 300}, "#/dimensions: 300 is not a valid enum value"),
        ({"dimensions": 256}, "required key [inputText] not found"),
        ({"inputText": "x" * 50_001}, "expected maxLength: 50000, actual: 50001"),
        ({"inputText": "word " * 8000}, "Too many input tokens. Max input tokens: 8192"),
        ({"inputText": "x", "texts": ["y"]}, "extraneous key [texts] is not permitted"),
    ],
)
def test_titan_validates_like_bedrock(
    bedrock: tuple[Any, str], boto_client: Any, body: dict[str, Any], detail: str
) -> None:
    with pytest.raises(ClientError) as error:
        _invoke(boto_client("bedrock-runtime", bedrock[1]), TITAN, body)
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert detail in error.value.response["Error"]["Message"]


def test_cohere_answers_by_type_or_bare_floats(bedrock: tuple[Any, str], boto_client: Any) -> None:
    client = boto_client("bedrock-runtime", bedrock[1])
    body = {"texts": ["a", "b"], "input_type": "search_document", "embedding_types": ["float"]}
    doc, headers = _invoke(client, COHERE, body)
    assert doc["response_type"] == "embeddings_by_type"
    assert [len(v) for v in doc["embeddings"]["float"]] == [1024, 1024]
    assert doc["texts"] == ["a", "b"]
    assert "inputTextTokenCount" not in doc and int(headers[INPUT_TOKEN_HEADER.lower()]) > 0
    bare, _ = _invoke(client, COHERE, {"texts": ["a"], "input_type": "search_query"})
    assert bare["response_type"] == "embeddings_floats"
    assert bare["embeddings"][0] == doc["embeddings"]["float"][0]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"texts": ["a"] * 97, "input_type": "search_document"}, "expected maximum item count: 96, found: 97"),
        ({"texts": ["a"]}, "required key [input_type] not found"),
        ({"texts": ["a" * 2049], "input_type": "search_document"}, "#/texts/0: expected maxLength: 2048"),
        ({"texts": ["a"], "input_type": "rerank"}, "#/input_type: rerank is not a valid enum value"),
    ],
)
def test_cohere_validates_like_bedrock(
    bedrock: tuple[Any, str], boto_client: Any, body: dict[str, Any], detail: str
) -> None:
    with pytest.raises(ClientError) as error:
        _invoke(boto_client("bedrock-runtime", bedrock[1]), COHERE, body)
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert detail in error.value.response["Error"]["Message"]


def test_tei_endpoint_answers_a_vector_per_input(sagemaker: tuple[Any, str], boto_client: Any) -> None:
    client = boto_client("sagemaker-runtime", sagemaker[1])
    response = client.invoke_endpoint(
        EndpointName=TEI_ENDPOINT, Body=json.dumps({"inputs": ["a", "b", "c"]}), ContentType="application/json"
    )
    vectors = json.loads(response["Body"].read())
    assert [len(v) for v in vectors] == [768, 768, 768]
    with pytest.raises(ClientError) as error:
        client.invoke_endpoint(
            EndpointName=TEI_ENDPOINT, Body=json.dumps({"inputs": ["a"] * 33}), ContentType="application/json"
        )
    assert error.value.response["Error"]["Code"] == "ModelError"
    assert error.value.response["OriginalStatusCode"] == 413  # type: ignore[typeddict-item]


def _factory(client: Any) -> Any:
    return lambda _timeout_s: client


def test_bedrock_adapter_embeds_through_the_emulator(
    bedrock: tuple[BedrockRuntimeEmulator, str], boto_client: Any, table: RouteTable
) -> None:
    provider = BedrockEmbeddingProvider(_factory(boto_client("bedrock-runtime", bedrock[1])))
    titan: Target = table.targets["bedrock-titan-embed-v2"]
    answer = provider.embed(titan, ["one text"], dimensions=512, input_type=EmbeddingInputType.SEARCH_DOCUMENT)
    assert len(answer.vectors) == 1 and len(answer.vectors[0]) == 512 and answer.input_tokens > 0
    cohere = table.targets["bedrock-cohere-embed-english-v3"]
    answer = provider.embed(cohere, ["x", "y", "z"], dimensions=1024, input_type=EmbeddingInputType.SEARCH_QUERY)
    assert [len(v) for v in answer.vectors] == [1024] * 3
    assert answer.input_tokens == 3  # Bedrock's header (the emulator counts a token per 4 characters)


def test_bedrock_adapter_maps_validation_and_throttling(
    bedrock: tuple[BedrockRuntimeEmulator, str], boto_client: Any, table: RouteTable
) -> None:
    app, url = bedrock
    provider = BedrockEmbeddingProvider(_factory(boto_client("bedrock-runtime", url)))
    titan = table.targets["bedrock-titan-embed-v2"]
    with pytest.raises(ProviderError) as error:
        provider.embed(titan, ["x"], dimensions=300, input_type=EmbeddingInputType.SEARCH_DOCUMENT)
    assert error.value.kind is ProviderFailureKind.INVALID_REQUEST
    assert error.value.error_code == "ValidationException"
    app.faults.set(TITAN, FaultSpec(throttle_rate=1.0))
    with pytest.raises(ProviderError) as error:
        provider.embed(titan, ["x"], dimensions=256, input_type=EmbeddingInputType.SEARCH_DOCUMENT)
    assert error.value.kind is ProviderFailureKind.THROTTLED


def test_sagemaker_adapter_embeds_through_the_emulator(
    sagemaker: tuple[SageMakerRuntimeEmulator, str], boto_client: Any, table: RouteTable
) -> None:
    provider = SageMakerEmbeddingProvider(_factory(boto_client("sagemaker-runtime", sagemaker[1])))
    target = table.targets["sm-bge-base-embed"]
    answer = provider.embed(target, ["a", "bb"], dimensions=768, input_type=EmbeddingInputType.SEARCH_DOCUMENT)
    assert [len(v) for v in answer.vectors] == [768, 768]
    assert answer.input_tokens > 0  # estimated: the container reports none


class _FakeEmbeddingsUpstream:
    """An OpenAI-compatible /v1/embeddings standing in for ollama or vLLM."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.requests: list[dict[str, Any]] = []

    def __call__(self, environ: Any, start_response: Any) -> Any:
        body = json.loads(Request(environ).get_data())
        self.requests.append(body)
        data = [
            {"object": "embedding", "index": i, "embedding": [3.0] + [0.0] * (self.size - 1)}
            for i in range(len(body["input"]))
        ]
        doc = {"object": "list", "data": list(reversed(data)), "model": body["model"], "usage": {"prompt_tokens": 7}}
        return Response(json.dumps(doc), mimetype="application/json")(environ, start_response)


def test_forwarded_embeddings_come_back_in_the_models_body(table: RouteTable, boto_client: Any) -> None:
    upstream = _FakeEmbeddingsUpstream(256)
    with LoopbackServer(upstream) as up:
        forwarder = OpenAICompatibleForwarder(f"{up.url}/v1", model="nomic-embed-text", timeout_s=5)
        app = BedrockRuntimeEmulator.from_route_table(table, forwarder=forwarder)
        with LoopbackServer(app) as server:
            client = boto_client("bedrock-runtime", server.url)
            doc, headers = _invoke(client, TITAN, {"inputText": "hello", "dimensions": 256})
            assert doc["embedding"][0] == 1.0  # normalized, as Titan's `normalize` asks
            assert doc["inputTextTokenCount"] == 7 and headers[INPUT_TOKEN_HEADER.lower()] == "7"
            assert upstream.requests[-1] == {
                "model": "nomic-embed-text",
                "input": ["hello"],
                "encoding_format": "float",
                "dimensions": 256,
            }
            with pytest.raises(ClientError) as error:  # the upstream's 256 is not Cohere's 1024
                _invoke(client, COHERE, {"texts": ["a"], "input_type": "search_document"})
            assert error.value.response["Error"]["Code"] == "ModelErrorException"


def test_forwarded_tei_endpoint(table: RouteTable, boto_client: Any) -> None:
    upstream = _FakeEmbeddingsUpstream(768)
    with LoopbackServer(upstream) as up:
        app = SageMakerRuntimeEmulator.from_route_table(table, forwarder=OpenAICompatibleForwarder(f"{up.url}/v1"))
        with LoopbackServer(app) as server:
            response = boto_client("sagemaker-runtime", server.url).invoke_endpoint(
                EndpointName=TEI_ENDPOINT, Body=json.dumps({"inputs": ["a", "b"]}), ContentType="application/json"
            )
    vectors = json.loads(response["Body"].read())
    assert [v[0] for v in vectors] == [1.0, 1.0]
    assert upstream.requests[-1]["input"] == ["a", "b"]
    assert upstream.requests[-1]["model"] == f"{TEI_ENDPOINT}/AllTraffic"
    assert "dimensions" not in upstream.requests[-1]  # a fixed-size model is not asked for a size
