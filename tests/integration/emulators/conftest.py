from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from llmops.adapters import aws_clients
from llmops.domain.routing import PayloadFormat
from llmops.local.emulators import (
    BedrockRuntimeEmulator,
    EndpointConfig,
    SageMakerRuntimeEmulator,
)
from llmops.local.wsgi_server import LoopbackServer

BEDROCK_MODELS = ("anthropic.claude-3-5-haiku-20241022-v1:0", "amazon.nova-lite-v1:0")
SAGEMAKER_ENDPOINTS = {
    "llmops-llama3-8b": EndpointConfig(PayloadFormat.OPENAI, ("primary", "candidate")),
    "llmops-mistral-7b-tgi": EndpointConfig(PayloadFormat.TGI),
}


@pytest.fixture(autouse=True)
def _dummy_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for var in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
        "AWS_SESSION_TOKEN",
    ):
        monkeypatch.delenv(var, raising=False)
    aws_clients.clear_client_cache()
    yield
    aws_clients.clear_client_cache()


@pytest.fixture
def bedrock_emulator() -> Iterator[tuple[BedrockRuntimeEmulator, LoopbackServer]]:
    app = BedrockRuntimeEmulator(known_models=BEDROCK_MODELS)
    with LoopbackServer(app) as server:
        yield app, server


@pytest.fixture
def sagemaker_emulator() -> Iterator[tuple[SageMakerRuntimeEmulator, LoopbackServer]]:
    app = SageMakerRuntimeEmulator(endpoints=SAGEMAKER_ENDPOINTS)
    with LoopbackServer(app) as server:
        yield app, server


BotoFactory = Callable[..., Any]


@pytest.fixture
def boto_client() -> BotoFactory:
    """A real boto3 client at an emulator URL; one attempt unless told, so call counts are exact."""

    def make(service: Any, url: str, *, read_timeout: float = 10.0, max_attempts: int = 1) -> Any:
        return boto3.client(
            service,
            endpoint_url=url,
            region_name="us-east-1",
            config=Config(
                retries={"mode": "standard", "total_max_attempts": max_attempts},
                connect_timeout=2,
                read_timeout=read_timeout,
            ),
        )

    return make
