"""Fixtures for the registry integration tests: moto in-process, or a moto server for the CLI."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from llmops.adapters.dynamodb.provisioning import create_tables
from llmops.config.tables import TABLES
from llmops.local.aws_emulation import MotoService
from llmops.local.naming import LOCAL_STATE_FILE, local_table_name

REGION = "us-east-1"
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 2})


@pytest.fixture(autouse=True)
def _dummy_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def names() -> dict[str, str]:
    return {spec.logical_name: f"reg-{spec.logical_name}" for spec in TABLES}


@pytest.fixture
def dynamodb(names: dict[str, str]) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION, config=CLIENT_CONFIG)
        create_tables(client, names)
        yield client


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = MotoService().start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def local_stack(moto_endpoint: str, tmp_path: Path) -> Path:
    """The local stack's tables on a moto server and a state dir pointing at it (no gateway)."""
    # moto's backends are process-wide: start each test from empty tables.
    reset = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset).close()
    client = boto3.client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    create_tables(client, {spec.logical_name: local_table_name(spec.logical_name) for spec in TABLES})
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / LOCAL_STATE_FILE).write_text(
        json.dumps({"aws_endpoint_url": moto_endpoint, "base_url": "", "api_key": "", "tenant": "dev"})
    )
    return state_dir
