from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from llmops.adapters import aws_clients
from llmops.domain.errors import ProviderFailureKind

SETTINGS = {"connect_timeout_s": 1.5, "read_timeout_s": 7.0, "max_attempts": 3, "region": "us-east-1"}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws_clients.clear_client_cache()
    yield
    aws_clients.clear_client_cache()


def test_client_config_carries_timeouts_retries_and_keepalive() -> None:
    client = aws_clients.client("bedrock-runtime", **SETTINGS)  # type: ignore[arg-type]
    config: Any = client.meta.config
    assert (config.connect_timeout, config.read_timeout, config.tcp_keepalive) == (1.5, 7.0, True)
    # Total attempts including the first call, not botocore's legacy "max_attempts" (= retries).
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert client.meta.region_name == "us-east-1"


def test_clients_are_cached_per_service_and_settings() -> None:
    first = aws_clients.client("bedrock-runtime", **SETTINGS)  # type: ignore[arg-type]
    assert aws_clients.client("bedrock-runtime", **SETTINGS) is first  # type: ignore[arg-type]
    other = aws_clients.client("bedrock-runtime", **{**SETTINGS, "read_timeout_s": 8.0})  # type: ignore[arg-type]
    assert other is not first
    assert aws_clients.client("sagemaker-runtime", **SETTINGS) is not first  # type: ignore[arg-type]


def test_service_endpoint_env_var_is_honoured_by_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "http://127.0.0.1:4599")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "http://127.0.0.1:4600")
    bedrock = aws_clients.bedrock_runtime(connect_timeout_s=1, read_timeout_s=1, max_attempts=1, region="us-east-1")
    sagemaker = aws_clients.sagemaker_runtime(connect_timeout_s=1, read_timeout_s=1, max_attempts=1, region="us-east-1")
    assert bedrock.meta.endpoint_url == "http://127.0.0.1:4599"
    assert sagemaker.meta.endpoint_url == "http://127.0.0.1:4600"


def test_changing_the_endpoint_env_var_gives_a_new_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "http://127.0.0.1:4599")
    first = aws_clients.client("bedrock-runtime", **SETTINGS)  # type: ignore[arg-type]
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "http://127.0.0.1:4601")
    second = aws_clients.client("bedrock-runtime", **SETTINGS)  # type: ignore[arg-type]
    assert second is not first
    assert second.meta.endpoint_url == "http://127.0.0.1:4601"


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ConnectTimeoutError(endpoint_url="http://x"), ProviderFailureKind.TIMEOUT),
        (ReadTimeoutError(endpoint_url="http://x"), ProviderFailureKind.TIMEOUT),
        (EndpointConnectionError(endpoint_url="http://x"), ProviderFailureKind.UNAVAILABLE),
        (ConnectionClosedError(endpoint_url="http://x"), ProviderFailureKind.UNAVAILABLE),
        (ParamValidationError(report="bad"), ProviderFailureKind.INVALID_REQUEST),
        (NoCredentialsError(), None),
        (ValueError("x"), None),
    ],
)
def test_transport_failure_kinds(exc: BaseException, expected: ProviderFailureKind | None) -> None:
    assert aws_clients.transport_failure_kind(exc) is expected
