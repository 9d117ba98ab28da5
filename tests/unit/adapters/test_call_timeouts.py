"""Per-call timeouts from the deadline's budget: bucketed so the client cache stays small."""

from __future__ import annotations

from typing import Any

import pytest

from llmops.adapters import aws_clients
from llmops.adapters.aws_clients import call_timeouts, provider_client


@pytest.mark.parametrize(
    ("budget_s", "expected"),
    [
        (None, (2.0, 25.0)),  # no deadline: the configured timeouts
        (40.0, (2.0, 25.0)),  # a budget above connect + read changes nothing
        (13.5, (2.0, 11.0)),  # read = what connecting leaves, down to whole seconds
        (3.2, (2.0, 1.0)),
        (2.5, (2.0, 1.0)),  # never below one second
    ],
)
def test_call_timeouts_fit_the_budget(budget_s: float | None, expected: tuple[float, float]) -> None:
    assert call_timeouts(budget_s, connect_timeout_s=2.0, read_timeout_s=25.0) == expected


def test_provider_clients_make_one_attempt_and_are_shared_per_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    aws_clients.clear_client_cache()
    first = provider_client("bedrock-runtime", budget_s=13.2, connect_timeout_s=2.0, read_timeout_s=25.0)
    same_bucket = provider_client("bedrock-runtime", budget_s=13.9, connect_timeout_s=2.0, read_timeout_s=25.0)
    assert first is same_bucket
    config: Any = first.meta.config
    assert config.read_timeout == 11.0
    assert config.retries["total_max_attempts"] == 1  # the domain retries, within the deadline
    aws_clients.clear_client_cache()
