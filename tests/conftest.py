"""Test-wide environment: no real AWS, no X-Ray daemon, deterministic Powertools settings."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "llmops-gateway",
        "POWERTOOLS_METRICS_NAMESPACE": "LLMOps",
        "POWERTOOLS_DEV": "false",
    }
)

# moto adds its request stubber to botocore's built-in handlers when it is first imported, and a
# botocore session copies those handlers when it is made. The adapters keep one session per process,
# so a session made before moto's import (by a test that builds a client outside `mock_aws`) would
# make clients that bypass every later `mock_aws()`; importing it here, first, rules that out.
import moto  # noqa: F401

# The shared fake model provider and gateway fixtures (`fake_provider`, `gateway_settings`, `gateway`).
pytest_plugins = ("tests.fakes",)

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"


@pytest.fixture(autouse=True)
def deferred_work_runs_where_it_is_deferred() -> None:
    """Each test starts with after-response work run at once (`after_response.run_now`), as for any
    caller that is not the runtime loop. A handler called with the loop's context collects deferred
    work in a context variable that stays set for the stream it returned (in Lambda the next
    invocation sets it again); without this, a later test in the same worker would defer into that
    stale list and never see its audit record or metrics."""
    from llmops.application import after_response

    after_response.run_now()


@pytest.fixture
def load_event() -> Any:
    def _load(name: str) -> dict[str, Any]:
        event: dict[str, Any] = json.loads((EVENTS_DIR / f"{name}.json").read_text())
        return event

    return _load


@pytest.fixture
def aws_settings() -> Any:
    """moto in-process with every table and the audit DLQ; yields the Settings naming them."""
    from moto import mock_aws

    from llmops.adapters import aws_clients
    from llmops.adapters.dynamodb.provisioning import create_tables
    from llmops.config.env import Settings
    from llmops.config.tables import TABLES
    from llmops.local.naming import local_resource_name, local_table_name

    with mock_aws():
        aws_clients.clear_client_cache()
        dynamodb = aws_clients.client("dynamodb", connect_timeout_s=1, read_timeout_s=5, max_attempts=2)
        create_tables(dynamodb, {spec.logical_name: local_table_name(spec.logical_name) for spec in TABLES})
        sqs: Any = aws_clients.client("sqs", connect_timeout_s=1, read_timeout_s=5, max_attempts=2)
        queue_url = sqs.create_queue(QueueName=local_resource_name("audit-dlq"))["QueueUrl"]
        names = {spec.env_var.removeprefix("LLMOPS_").lower(): local_table_name(spec.logical_name) for spec in TABLES}
        yield Settings.model_validate({**names, "key_pepper": "test-pepper", "audit_dlq_url": queue_url})
        aws_clients.clear_client_cache()
