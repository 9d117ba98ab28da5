"""The /_emulator/ admin routes, as the CLI uses them against a running local stack."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from llmops.local.emulators import BedrockRuntimeEmulator, SageMakerRuntimeEmulator
from llmops.local.wsgi_server import LoopbackServer

NOVA = "amazon.nova-lite-v1:0"


def call(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_set_faults_over_http_then_see_stats_then_reset(
    bedrock_emulator: tuple[BedrockRuntimeEmulator, LoopbackServer], boto_client: Any
) -> None:
    _, server = bedrock_emulator
    status, doc = call(f"{server.url}/_emulator/faults", "POST", {"key": NOVA, "throttle_rate": 1.0, "seed": 3})
    assert status == 200
    assert doc["faults"][NOVA]["throttle_rate"] == 1.0
    client = boto_client("bedrock-runtime", server.url)
    with pytest.raises(ClientError):
        client.converse(modelId=NOVA, messages=[{"role": "user", "content": [{"text": "x"}]}])
    status, stats = call(f"{server.url}/_emulator/stats")
    assert stats["calls"][NOVA]["throttled"] == 1
    status, doc = call(f"{server.url}/_emulator/reset", "POST", {})
    assert status == 200
    assert call(f"{server.url}/_emulator/faults")[1] == {"faults": {}}
    assert call(f"{server.url}/_emulator/stats")[1] == {"calls": {}}
    client.converse(modelId=NOVA, messages=[{"role": "user", "content": [{"text": "x"}]}])


def test_bulk_faults_and_clear() -> None:
    app = SageMakerRuntimeEmulator()
    with LoopbackServer(app) as server:
        url = f"{server.url}/_emulator/faults"
        call(url, "POST", {"faults": {"ep/a": {"latency_ms": 5}, "ep": {"error_rate": 0.5}}})
        assert set(app.faults.specs()) == {"ep/a", "ep"}
        _, doc = call(url, "POST", {"key": "ep", "clear": True})
        assert set(doc["faults"]) == {"ep/a"}


@pytest.mark.parametrize(
    ("path", "method", "body", "status"),
    [
        ("/_emulator/faults", "POST", {"key": "m", "throttle_rate": 2}, 400),
        ("/_emulator/faults", "POST", {"key": "m", "nonsense": 1}, 400),
        ("/_emulator/faults", "POST", ["not", "an", "object"], 400),
        ("/_emulator/reset", "POST", {"seed": "x"}, 400),
        ("/_emulator/unknown", "GET", None, 404),
    ],
)
def test_admin_errors(path: str, method: str, body: Any, status: int) -> None:
    with LoopbackServer(BedrockRuntimeEmulator()) as server:
        got, doc = call(server.url + path, method, body)
    assert got == status
    assert doc["message"]


def test_register_endpoint_at_runtime(boto_client: Any) -> None:
    app = SageMakerRuntimeEmulator(endpoints={})
    with LoopbackServer(app) as server:
        client = boto_client("sagemaker-runtime", server.url)
        body = json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode()
        with pytest.raises(client.exceptions.ValidationError):
            client.invoke_endpoint(EndpointName="late", Body=body, ContentType="application/json")
        status, doc = call(
            f"{server.url}/_emulator/endpoints",
            "POST",
            {"name": "late", "payload_format": "openai", "variants": ["v1"]},
        )
        assert (status, doc) == (200, {"endpoints": ["late"]})
        resp = client.invoke_endpoint(EndpointName="late", Body=body, ContentType="application/json")
        assert resp["InvokedProductionVariant"] == "v1"
