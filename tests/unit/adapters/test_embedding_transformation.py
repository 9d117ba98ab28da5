"""Embedding batches to Bedrock InvokeModel bodies (Titan v2, Cohere Embed) and SageMaker embedding
container bodies, and their answers back, with no network."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmops.adapters.bedrock import embedding_transformation as bedrock
from llmops.adapters.dynamodb.route_source import FileRouteSource
from llmops.adapters.sagemaker import embedding_transformation as sagemaker
from llmops.domain.embeddings import EmbeddingInputType, estimate_input_tokens
from llmops.domain.errors import ProviderError, ProviderFailureKind
from llmops.domain.routing import Target

TARGETS = FileRouteSource().current().targets
TITAN: Target = TARGETS["bedrock-titan-embed-v2"]
COHERE: Target = TARGETS["bedrock-cohere-embed-english-v3"]
BGE: Target = TARGETS["sm-bge-base-embed"]
DOC = EmbeddingInputType.SEARCH_DOCUMENT


def _body(kwargs: dict[str, Any], key: str = "body") -> Any:
    return json.loads(kwargs[key])


def test_titan_request_asks_for_a_normalized_float_vector_of_the_size() -> None:
    kwargs = bedrock.to_invoke_model_request(TITAN, ["héllo"], dimensions=512, input_type=DOC)
    assert kwargs["modelId"] == "amazon.titan-embed-text-v2:0"
    assert (kwargs["contentType"], kwargs["accept"]) == ("application/json", "application/json")
    assert _body(kwargs) == {"inputText": "héllo", "dimensions": 512, "normalize": True, "embeddingTypes": ["float"]}
    with pytest.raises(ValueError, match="one text per call"):
        bedrock.to_invoke_model_request(TITAN, ["a", "b"], dimensions=512, input_type=DOC)


def test_cohere_request_carries_the_input_type_and_never_truncates() -> None:
    kwargs = bedrock.to_invoke_model_request(
        COHERE, ["a", "b"], dimensions=1024, input_type=EmbeddingInputType.SEARCH_QUERY
    )
    assert kwargs["modelId"] == "cohere.embed-english-v3"
    assert _body(kwargs) == {
        "texts": ["a", "b"],
        "input_type": "search_query",
        "embedding_types": ["float"],
        "truncate": "NONE",
    }


def test_titan_response_prefers_embeddings_by_type_and_its_own_count() -> None:
    body = json.dumps({"embedding": [0.0, 1.0], "embeddingsByType": {"float": [0.6, 0.8]}, "inputTextTokenCount": 5})
    answer = bedrock.from_invoke_model_response(TITAN, ["x"], body.encode(), {bedrock.INPUT_TOKEN_HEADER: "9"})
    assert answer.vectors == ((0.6, 0.8),) and answer.input_tokens == 5
    bare = bedrock.from_invoke_model_response(TITAN, ["x"], json.dumps({"embedding": [1, 0]}).encode())
    assert bare.vectors == ((1.0, 0.0),) and bare.input_tokens == estimate_input_tokens(["x"])


@pytest.mark.parametrize(
    "doc",
    [
        {"id": "1", "embeddings": {"float": [[0.1, 0.2], [0.3, 0.4]]}, "response_type": "embeddings_by_type"},
        {"id": "1", "embeddings": [[0.1, 0.2], [0.3, 0.4]], "response_type": "embeddings_floats"},
    ],
)
def test_cohere_response_in_either_shape_counts_tokens_from_bedrocks_header(doc: dict[str, Any]) -> None:
    answer = bedrock.from_invoke_model_response(
        COHERE, ["a", "b"], json.dumps(doc).encode(), {"x-amzn-bedrock-input-token-count": "4"}
    )
    assert answer.vectors == ((0.1, 0.2), (0.3, 0.4)) and answer.input_tokens == 4
    estimated = bedrock.from_invoke_model_response(COHERE, ["a", "b"], json.dumps(doc).encode())
    assert estimated.input_tokens == estimate_input_tokens(["a", "b"])  # no count anywhere: the estimate


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"embeddings": "nope"}', b'{"embeddings": [[]]}', b'{"embeddings": [["x"]]}', b"[1, 2]"],
)
def test_an_unexpected_bedrock_body_is_the_target_failing(body: bytes) -> None:
    with pytest.raises(ProviderError) as error:
        bedrock.from_invoke_model_response(COHERE, ["a"], body)
    assert error.value.kind is ProviderFailureKind.UNAVAILABLE and error.value.target_id == COHERE.id


def test_sagemaker_request_and_both_response_shapes() -> None:
    kwargs = sagemaker.to_invoke_endpoint_request(BGE, ["a", "b"])
    assert kwargs["EndpointName"] == "llmops-bge-base-embed" and "TargetVariant" not in kwargs
    assert _body(kwargs, "Body") == {"inputs": ["a", "b"]}
    for doc in ([[0.1], [0.2]], {"embeddings": [[0.1], [0.2]]}):
        answer = sagemaker.from_invoke_endpoint_response(BGE, ["a", "b"], json.dumps(doc).encode())
        assert answer.vectors == ((0.1,), (0.2,)) and answer.input_tokens == estimate_input_tokens(["a", "b"])
    with pytest.raises(ProviderError) as error:
        sagemaker.from_invoke_endpoint_response(BGE, ["a"], b'{"generated_text": "hi"}')
    assert error.value.kind is ProviderFailureKind.UNAVAILABLE
    with pytest.raises(ValueError, match="not a SageMaker embedding target"):
        sagemaker.to_invoke_endpoint_request(TITAN, ["a"])
