"""The provider classes against botocore's Stubber: error translation without any network."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import NoCredentialsError, ReadTimeoutError
from botocore.response import StreamingBody
from botocore.stub import Stubber

from llmops.adapters.bedrock.client import BedrockConverseProvider
from llmops.adapters.sagemaker.client import SageMakerEndpointProvider
from llmops.domain.chat import ChatRequest, FinishReason, Message, Role
from llmops.domain.errors import ProviderError, ProviderFailureKind
from llmops.domain.routing import Provider, Target

SECRET_PROMPT = "my card is 4111 1111 1111 1111"
REQUEST = ChatRequest(model="m", messages=(Message(Role.USER, SECRET_PROMPT),), max_tokens=16)
BEDROCK = Target(
    id="br",
    provider=Provider.BEDROCK,
    model_id="amazon.nova-lite-v1:0",
    price_per_1k_input_usd=0,
    price_per_1k_output_usd=0,
    context_window=1000,
)
SAGEMAKER = Target(
    id="sm",
    provider=Provider.SAGEMAKER,
    endpoint_name="ep",
    variant="primary",
    price_per_1k_input_usd=0,
    price_per_1k_output_usd=0,
    context_window=1000,
)


@pytest.fixture
def bedrock_client() -> Iterator[Any]:
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    yield client


@pytest.fixture
def sagemaker_client() -> Iterator[Any]:
    client = boto3.client(
        "sagemaker-runtime",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    yield client


def test_bedrock_success(bedrock_client: Any) -> None:
    with Stubber(bedrock_client) as stub:
        stub.add_response(
            "converse",
            {
                "output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}},
                "stopReason": "max_tokens",
                "usage": {"inputTokens": 3, "outputTokens": 16, "totalTokens": 19},
                "metrics": {"latencyMs": 5},
            },
            {
                "modelId": "amazon.nova-lite-v1:0",
                "messages": [{"role": "user", "content": [{"text": SECRET_PROMPT}]}],
                "inferenceConfig": {"maxTokens": 16},
            },
        )
        completion = BedrockConverseProvider(lambda _timeout_s: bedrock_client).complete(BEDROCK, REQUEST)
    assert completion.text == "ok"
    assert completion.finish_reason is FinishReason.LENGTH


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("ThrottlingException", 429, ProviderFailureKind.THROTTLED),
        ("ValidationException", 400, ProviderFailureKind.INVALID_REQUEST),
        ("AccessDeniedException", 403, ProviderFailureKind.UNAVAILABLE),
        ("ModelTimeoutException", 408, ProviderFailureKind.TIMEOUT),
        ("InternalServerException", 500, ProviderFailureKind.UNAVAILABLE),
    ],
)
def test_bedrock_client_errors_become_provider_errors_without_prompt_text(
    bedrock_client: Any, code: str, status: int, kind: ProviderFailureKind
) -> None:
    with Stubber(bedrock_client) as stub:
        stub.add_client_error(
            "converse",
            service_error_code=code,
            service_message=f"echo: {SECRET_PROMPT}",
            http_status_code=status,
        )
        with pytest.raises(ProviderError) as info:
            BedrockConverseProvider(lambda _timeout_s: bedrock_client).complete(BEDROCK, REQUEST)
    assert info.value.kind is kind
    assert info.value.target_id == "br"
    assert SECRET_PROMPT not in info.value.message
    assert code in info.value.message
    assert info.value.error_code == code  # what a rejected request's answer may name


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ReadTimeoutError(endpoint_url="http://x"), ProviderFailureKind.TIMEOUT),
        (NoCredentialsError(), ProviderFailureKind.UNAVAILABLE),
    ],
)
def test_bedrock_transport_errors(exc: Exception, kind: ProviderFailureKind) -> None:
    class Failing:
        def converse(self, **_: Any) -> Any:
            raise exc

    with pytest.raises(ProviderError) as info:
        BedrockConverseProvider(lambda _timeout_s: Failing()).complete(BEDROCK, REQUEST)  # type: ignore[arg-type,return-value]
    assert info.value.kind is kind


def body(doc: object) -> StreamingBody:
    raw = json.dumps(doc).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def test_sagemaker_success_passes_variant(sagemaker_client: Any) -> None:
    with Stubber(sagemaker_client) as stub:
        stub.add_response(
            "invoke_endpoint",
            {
                "Body": body(
                    {
                        "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 4, "completion_tokens": 1},
                    }
                ),
                "ContentType": "application/json",
            },
            {
                "EndpointName": "ep",
                "TargetVariant": "primary",
                "ContentType": "application/json",
                "Accept": "application/json",
                "Body": json.dumps(
                    {"messages": [{"role": "user", "content": SECRET_PROMPT}], "max_tokens": 16}
                ).encode(),
            },
        )
        completion = SageMakerEndpointProvider(lambda _timeout_s: sagemaker_client).complete(SAGEMAKER, REQUEST)
    assert (completion.text, completion.usage.input_tokens) == ("hi", 4)


def test_sagemaker_model_error_uses_the_container_status(sagemaker_client: Any) -> None:
    with Stubber(sagemaker_client) as stub:
        stub.add_client_error(
            "invoke_endpoint",
            service_error_code="ModelError",
            service_message=f'Received client error (429) with message "{SECRET_PROMPT}"',
            http_status_code=424,
            response_meta={},
            modeled_fields={"OriginalStatusCode": 429, "OriginalMessage": SECRET_PROMPT},
        )
        with pytest.raises(ProviderError) as info:
            SageMakerEndpointProvider(lambda _timeout_s: sagemaker_client).complete(SAGEMAKER, REQUEST)
    assert info.value.kind is ProviderFailureKind.THROTTLED
    assert SECRET_PROMPT not in info.value.message
    assert "429" in info.value.message
