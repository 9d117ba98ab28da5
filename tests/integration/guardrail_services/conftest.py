from __future__ import annotations

from collections.abc import Iterator

import pytest

from llmops.adapters import aws_clients
from llmops.local.emulators import BedrockRuntimeEmulator
from llmops.local.emulators.guardrail_services import EmulatedGuardrail, GuardrailServicesEmulator
from llmops.local.wsgi_server import LoopbackServer

GUARDRAIL_ID = "gr-test"
# Guard policies take ids as Bedrock spells them (lower-case letters and digits); the same guardrail.
POLICY_GUARDRAIL_ID = "grtest1"


@pytest.fixture(autouse=True)
def _dummy_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    aws_clients.clear_client_cache()
    yield
    aws_clients.clear_client_cache()


@pytest.fixture
def guardrail_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[GuardrailServicesEmulator]:
    """Wraps the Bedrock Runtime emulator the way `llmops serve` would, and points both services at it."""
    guardrail = EmulatedGuardrail(
        denied_topics={"investment advice": ("which stocks", "crypto tips")},
        blocked_words=("project falcon",),
    )
    guardrails = {GUARDRAIL_ID: guardrail, POLICY_GUARDRAIL_ID: guardrail}
    # Converse's guardrailConfig reads the same guardrails as ApplyGuardrail, as in `llmops serve`.
    emulator = GuardrailServicesEmulator(guardrails=guardrails, fallback=BedrockRuntimeEmulator(guardrails=guardrails))
    server = LoopbackServer(emulator).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_COMPREHEND", server.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", server.url)
    try:
        yield emulator
    finally:
        server.stop()
