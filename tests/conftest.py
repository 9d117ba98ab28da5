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

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"


@pytest.fixture
def load_event() -> Any:
    def _load(name: str) -> dict[str, Any]:
        event: dict[str, Any] = json.loads((EVENTS_DIR / f"{name}.json").read_text())
        return event

    return _load
