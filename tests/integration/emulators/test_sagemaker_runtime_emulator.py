"""The SageMaker Runtime emulator through a real boto3 client: dialects, variants and error shapes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from llmops.local.emulators import FaultSpec, SageMakerRuntimeEmulator
from llmops.local.wsgi_server import LoopbackServer

Emulator = tuple[SageMakerRuntimeEmulator, LoopbackServer]
LLAMA = "llmops-llama3-8b"
MISTRAL = "llmops-mistral-7b-tgi"


def invoke(client: Any, endpoint: str, body: dict[str, Any], **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    resp = client.invoke_endpoint(
        EndpointName=endpoint,
        Body=json.dumps(body).encode(),
        ContentType="application/json",
        Accept="application/json",
        **kwargs,
    )
    return json.loads(resp["Body"].read()), resp


def test_openai_dialect_with_target_variant(sagemaker_emulator: Emulator, boto_client: Any) -> None:
    app, server = sagemaker_emulator
    client = boto_client("sagemaker-runtime", server.url)
    doc, resp = invoke(
        client,
        LLAMA,
        {"messages": [{"role": "user", "content": "Capital of France?"}]},
        TargetVariant="candidate",
    )
    assert resp["InvokedProductionVariant"] == "candidate"
    assert doc["object"] == "chat.completion"
    choice = doc["choices"][0]
    assert choice["message"]["content"].startswith(f"Emulated answer from {LLAMA}/candidate: Capital of France?")
    assert choice["finish_reason"] == "stop"
    assert doc["usage"]["completion_tokens"] == len(choice["message"]["content"].split())
    assert app.faults.stats()[f"{LLAMA}/candidate"]["ok"] == 1


def test_default_variant_is_the_first_configured(sagemaker_emulator: Emulator, boto_client: Any) -> None:
    _, server = sagemaker_emulator
    _, resp = invoke(
        boto_client("sagemaker-runtime", server.url), LLAMA, {"messages": [{"role": "user", "content": "x"}]}
    )
    assert resp["InvokedProductionVariant"] == "primary"


def test_openai_dialect_truncates_at_max_tokens(sagemaker_emulator: Emulator, boto_client: Any) -> None:
    _, server = sagemaker_emulator
    doc, _ = invoke(
        boto_client("sagemaker-runtime", server.url),
        LLAMA,
        {"messages": [{"role": "user", "content": "x"}], "max_tokens": 2},
    )
    assert doc["choices"][0]["finish_reason"] == "length"
    assert doc["choices"][0]["message"]["content"] == "Emulated answer"


def test_tgi_dialect_echoes_the_last_user_turn_and_keeps_stop_sequences(
    sagemaker_emulator: Emulator, boto_client: Any
) -> None:
    _, server = sagemaker_emulator
    client = boto_client("sagemaker-runtime", server.url)
    prompt = "[INST] Be brief.\n\nHi [/INST]Hello!</s>[INST] Capital of France? [/INST]"
    doc, resp = invoke(client, MISTRAL, {"inputs": prompt, "parameters": {"details": True}})
    assert resp["InvokedProductionVariant"] == "AllTraffic"
    assert isinstance(doc, list)
    assert doc[0]["generated_text"].startswith(f"Emulated answer from {MISTRAL}/AllTraffic: Capital of France?")
    assert doc[0]["details"]["finish_reason"] == "eos_token"
    stopped, _ = invoke(client, MISTRAL, {"inputs": prompt, "parameters": {"details": True, "stop": ["answer"]}})
    assert stopped[0]["generated_text"] == "Emulated answer"
    assert stopped[0]["details"]["finish_reason"] == "stop_sequence"
    short, _ = invoke(client, MISTRAL, {"inputs": prompt, "parameters": {"details": True, "max_new_tokens": 1}})
    assert (short[0]["generated_text"], short[0]["details"]["finish_reason"]) == ("Emulated", "length")


@pytest.mark.parametrize(
    ("parameters", "fragment"),
    [
        ({"temperature": 0}, "temperature"),
        ({"top_p": 1.0}, "top_p"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
    ],
)
def test_tgi_validation_comes_back_as_model_error_with_original_status(
    sagemaker_emulator: Emulator, boto_client: Any, parameters: dict[str, Any], fragment: str
) -> None:
    _, server = sagemaker_emulator
    client = boto_client("sagemaker-runtime", server.url)
    with pytest.raises(client.exceptions.ModelError) as info:
        invoke(client, MISTRAL, {"inputs": "[INST] hi [/INST]", "parameters": parameters})
    response = info.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == 422
    assert fragment in response["OriginalMessage"]
    assert "Received client error (422)" in response["Error"]["Message"]


def test_body_dialect_is_detected_when_not_configured(boto_client: Any) -> None:
    with LoopbackServer(SageMakerRuntimeEmulator()) as server:
        client = boto_client("sagemaker-runtime", server.url)
        chat, _ = invoke(client, "anything", {"messages": [{"role": "user", "content": "x"}]})
        tgi, _ = invoke(client, "anything", {"inputs": "x"})
    assert chat["object"] == "chat.completion"
    assert "generated_text" in tgi[0]
    assert "details" not in tgi[0]


@pytest.mark.parametrize(
    ("endpoint", "variant", "fragment"),
    [("missing", None, "Endpoint missing of account"), (LLAMA, "ghost", "Variant ghost not found")],
)
def test_unknown_endpoint_or_variant_is_a_validation_error(
    sagemaker_emulator: Emulator, boto_client: Any, endpoint: str, variant: str | None, fragment: str
) -> None:
    _, server = sagemaker_emulator
    client = boto_client("sagemaker-runtime", server.url)
    kwargs = {"TargetVariant": variant} if variant else {}
    with pytest.raises(client.exceptions.ValidationError) as info:
        invoke(client, endpoint, {"messages": [{"role": "user", "content": "x"}]}, **kwargs)
    assert fragment in info.value.response["Error"]["Message"]
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    ("spec", "code", "status"),
    [
        (FaultSpec(throttle_rate=1.0), "ThrottlingException", 429),
        (FaultSpec(error_rate=1.0, error_status=503), "ServiceUnavailable", 503),
        (FaultSpec(error_rate=1.0), "ModelError", 424),
    ],
)
def test_faults_per_variant(
    sagemaker_emulator: Emulator, boto_client: Any, spec: FaultSpec, code: str, status: int
) -> None:
    app, server = sagemaker_emulator
    app.faults.set(f"{LLAMA}/candidate", spec)
    client = boto_client("sagemaker-runtime", server.url)
    body = {"messages": [{"role": "user", "content": "x"}]}
    invoke(client, LLAMA, body, TargetVariant="primary")  # the other variant is healthy
    with pytest.raises(ClientError) as info:
        invoke(client, LLAMA, body, TargetVariant="candidate")
    assert info.value.response["Error"]["Code"] == code
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    if code == "ModelError":
        response: Any = info.value.response
        assert response["OriginalStatusCode"] == 500


def test_endpoint_level_fault_covers_every_variant(sagemaker_emulator: Emulator, boto_client: Any) -> None:
    app, server = sagemaker_emulator
    app.faults.set(LLAMA, FaultSpec(throttle_rate=1.0))
    client = boto_client("sagemaker-runtime", server.url)
    for variant in ("primary", "candidate"):
        with pytest.raises(ClientError):
            invoke(client, LLAMA, {"messages": [{"role": "user", "content": "x"}]}, TargetVariant=variant)
    assert {k: v["throttled"] for k, v in app.faults.stats().items()} == {
        f"{LLAMA}/candidate": 1,
        f"{LLAMA}/primary": 1,
    }
