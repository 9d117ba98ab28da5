"""Black-box: `llmops serve` emulates Bedrock ApplyGuardrail and Comprehend DetectPiiEntities, so a
guard policy pushed with the CLI that names them changes what the gateway decides, end to end.

The local stack answers every guardrail id with its default emulated guardrail (names, addresses,
e-mails and phones masked; SSNs and card numbers blocked; prompt attacks blocked on input)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

TEXT = "Please ship to Dr. Alan Turing at 221 Baker Street, London today."


def _scan(client: openai.OpenAI, text: str) -> dict[str, Any]:
    response = httpx.post(
        f"{client.base_url}guardrails/scan",
        json={"text": text, "direction": "input"},
        headers={"Authorization": f"Bearer {client.api_key}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _tenant_with_policy(llmops_cli: Any, new_key: Any, tmp_path: Path, name: str, policy: dict[str, Any]) -> Any:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"name": name, "policy": policy}))
    llmops_cli("guard-policies", "push", str(path))
    llmops_cli("guard-policies", "label", "set", name, "production", "1")
    llmops_cli("keys", "tenant", "--tenant", f"tenant-{name}", "--guard-policy", name)
    _, client = new_key(f"tenant-{name}")
    return client


@pytest.mark.parametrize(
    ("name", "policy"),
    [
        ("bedrock-guarded", {"bedrock_guardrail": {"guardrail_id": "abcd1234efgh", "version": "1"}}),
        ("comprehend-guarded", {"comprehend": {"entity_types": {"NAME": "PERSON", "ADDRESS": "ADDRESS"}}}),
    ],
)
def test_a_pushed_policy_naming_a_service_detector_changes_the_verdict(
    llmops_cli: Any, new_key: Any, tmp_path: Path, name: str, policy: dict[str, Any]
) -> None:
    _, plain = new_key("tenant-plain")
    assert _scan(plain, TEXT)["action"] == "allow"  # the default policy has no service detector
    guarded = _tenant_with_policy(llmops_cli, new_key, tmp_path, name, policy)
    result = _scan(guarded, TEXT)
    assert result["action"] == "redact"
    assert result["redacted_text"] == "Please ship to Dr. [PERSON_1] at [ADDRESS_1] today."
    assert {f["detector"] for f in result["findings"]} == {next(iter(policy))}


def test_the_emulated_guardrails_block_refuses_a_chat_request(llmops_cli: Any, new_key: Any, tmp_path: Path) -> None:
    policy = {"bedrock_guardrail": {"guardrail_id": "abcd1234efgh", "version": "1"}, "detectors": ["secrets"]}
    client = _tenant_with_policy(llmops_cli, new_key, tmp_path, "bedrock-blocking", policy)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="chat-default", messages=[{"role": "user", "content": "My SSN is 536-22-1234, file my taxes."}]
        )
    assert refused.value.code == "content_blocked"
    assert "bedrock_guardrail" in str(refused.value)
    assert "536-22-1234" not in str(refused.value)
    answer = client.chat.completions.create(model="chat-default", messages=[{"role": "user", "content": "Hello"}])
    assert answer.choices[0].message.content  # a clean prompt is answered, guardrailConfig and all
