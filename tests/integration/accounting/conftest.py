"""Fixtures for the accounting integration tests: moto in-process, or a serialized moto server."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from llmops.adapters.dynamodb.provisioning import create_tables
from llmops.config.tables import TABLES
from llmops.local.aws_emulation import MotoService

REGION = "us-east-1"
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 2}, max_pool_connections=32)


def table_names(prefix: str) -> dict[str, str]:
    return {spec.logical_name: f"{prefix}-{spec.logical_name}" for spec in TABLES}


@pytest.fixture(autouse=True)
def _dummy_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def names() -> dict[str, str]:
    return table_names("acct")


@pytest.fixture
def dynamodb(names: dict[str, str]) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION, config=CLIENT_CONFIG)
        create_tables(client, names)
        yield client


@pytest.fixture
def sqs(dynamodb: Any) -> Any:  # inside the same mock_aws context
    return boto3.client("sqs", region_name=REGION)


@pytest.fixture
def dlq_url(sqs: Any) -> str:
    return str(sqs.create_queue(QueueName="acct-dlq")["QueueUrl"])


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """The local stack's moto server: every request handled under one lock, because moto's
    DynamoDB backend checks a condition and applies the write in separate unlocked steps (it races
    conditional writes). Real DynamoDB evaluates conditions atomically; serializing gives the
    emulator that property, so a concurrency test measures our logic, not moto's race."""
    server = MotoService(serialized=True).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def server_client(moto_endpoint: str) -> Callable[[str], Any]:
    def make(service: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            region_name=REGION,
            endpoint_url=moto_endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=CLIENT_CONFIG,
        )

    return make


@pytest.fixture
def server_tables(server_client: Callable[[str], Any]) -> dict[str, str]:
    names = table_names(f"acct-{uuid.uuid4().hex[:8]}")
    create_tables(server_client("dynamodb"), names)
    return names
