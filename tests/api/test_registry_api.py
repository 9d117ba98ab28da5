"""Prompt templates by label without a redeploy, and the response cache, through the openai SDK."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local_stack")]

ROOT = Path(__file__).resolve().parents[2]
LOCAL_CONFIG_TTL_S = 2.0  # LocalStackOptions.config_ttl_s


def _push(llmops_cli: Any, tmp_path: Path, prompt_id: str, template: str, *scope: str) -> int:
    """Pushes a copy of the example prompt; `scope` is `--tenant T` (default: `--shared`)."""
    doc = yaml.safe_load((ROOT / "docs/prompts/support-answer.yaml").read_text())
    doc["id"], doc["template"] = prompt_id, template
    path = tmp_path / f"{prompt_id}-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = llmops_cli("prompts", "push", str(path), *(scope or ("--shared",)), "--json").stdout
    return int(json.loads(out)["version"])


VARIABLES = {"product": "Acme Cloud", "tone": "friendly", "question": "How do refunds work?"}


def _render(client: openai.OpenAI, reference: dict[str, Any]) -> Any:
    return client.chat.completions.with_raw_response.create(
        model="@prompt", messages=[], extra_body={"prompt": {**reference, "variables": VARIABLES}}
    )


def _refusal(client: openai.OpenAI, reference: dict[str, Any]) -> tuple[Any, ...]:
    with pytest.raises(openai.NotFoundError) as caught:
        _render(client, reference)
    error = caught.value
    return error.status_code, error.code, error.message, error.param, error.type


def test_a_tenants_template_is_invisible_to_other_tenants_and_a_shared_one_serves_all(
    new_key: Any, llmops_cli: Any, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    owner, other = f"tpl-a-{suffix}", f"tpl-b-{suffix}"
    _, alice = new_key(owner)
    _, bob = new_key(other)
    prompt_id = f"confidential-{suffix}"
    version = _push(llmops_cli, tmp_path, prompt_id, "Internal only: {{ question }}", "--tenant", owner)
    llmops_cli("prompts", "label", "set", prompt_id, "production", str(version), "--tenant", owner)

    assert _render(alice, {"id": prompt_id, "version": version}).headers["x-llmops-prompt"] == (
        f"{owner}/{prompt_id}@{version}"
    )
    # To the other tenant the template is exactly as absent as one that was never pushed.
    missing = f"never-pushed-{suffix}"
    for selector in ({"version": version}, {"label": "production"}, {}):
        assert _refusal(bob, {"id": prompt_id, **selector}) == _refusal(bob, {"id": missing, **selector})
    assert _refusal(bob, {"id": prompt_id})[:2] == (404, "prompt_not_found")

    # Nor can the other tenant's operator view list, show or move it.
    listed = json.loads(llmops_cli("prompts", "list", "--tenant", other, "--json").stdout)
    assert prompt_id not in {p["id"] for p in listed}
    assert llmops_cli("prompts", "show", prompt_id, "--tenant", other, check=False).returncode == 1
    moved = llmops_cli("prompts", "label", "set", prompt_id, "staging", str(version), "--tenant", other, check=False)
    assert moved.returncode == 1

    shared_id = f"shared-{suffix}"
    shared = _push(llmops_cli, tmp_path, shared_id, "For everyone: {{ question }}")
    llmops_cli("prompts", "label", "set", shared_id, "production", str(shared))
    for client in (alice, bob):
        assert _render(client, {"id": shared_id}).headers["x-llmops-prompt"] == f"{shared_id}@{shared}"


def test_label_move_changes_the_version_used_without_redeploy(
    client: openai.OpenAI, llmops_cli: Any, tmp_path: Path
) -> None:
    prompt_id = f"support-{uuid.uuid4().hex[:6]}"
    v1 = _push(llmops_cli, tmp_path, prompt_id, "Question: {{ question }}")
    v2 = _push(llmops_cli, tmp_path, prompt_id, "Please answer briefly: {{ question }}")
    variables = {"product": "Acme Cloud", "tone": "friendly", "question": "How do refunds work?"}

    def ask() -> Any:
        return client.chat.completions.with_raw_response.create(
            model="@prompt",
            messages=[],
            extra_body={"prompt": {"id": prompt_id, "label": "production", "variables": variables}},
        )

    llmops_cli("prompts", "label", "set", prompt_id, "production", str(v1))
    assert ask().headers["x-llmops-prompt"] == f"{prompt_id}@{v1}"
    llmops_cli("prompts", "label", "set", prompt_id, "production", str(v2))
    time.sleep(LOCAL_CONFIG_TTL_S + 0.5)
    assert ask().headers["x-llmops-prompt"] == f"{prompt_id}@{v2}"
    llmops_cli("prompts", "rollback", prompt_id, "production")
    time.sleep(LOCAL_CONFIG_TTL_S + 0.5)
    assert ask().headers["x-llmops-prompt"] == f"{prompt_id}@{v1}"


def test_missing_template_variable_is_a_400_naming_it(client: openai.OpenAI, llmops_cli: Any, tmp_path: Path) -> None:
    prompt_id = f"strict-{uuid.uuid4().hex[:6]}"
    version = _push(llmops_cli, tmp_path, prompt_id, "Q: {{ question }}")
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model="chat-default",
            messages=[],
            extra_body={"prompt": {"id": prompt_id, "version": version, "variables": {"product": "x"}}},
        )
    assert err.value.param == "prompt.variables"
    assert "question" in err.value.message


def _emulator_calls(local_stack: dict[str, Any]) -> int:
    with urllib.request.urlopen(f"{local_stack['bedrock_runtime_url']}/_emulator/stats", timeout=5) as response:
        stats = json.loads(response.read())["calls"]
    return sum(int(per_key["calls"]) for per_key in stats.values())


def test_second_identical_deterministic_request_is_a_cache_hit(
    client: openai.OpenAI, local_stack: dict[str, Any]
) -> None:
    messages: Any = [{"role": "user", "content": f"Cache me {uuid.uuid4().hex}"}]
    first = client.chat.completions.with_raw_response.create(model="nova-lite", messages=messages, temperature=0)
    assert first.headers["x-llmops-cache"] == "miss"
    calls = _emulator_calls(local_stack)
    second = client.chat.completions.with_raw_response.create(model="nova-lite", messages=messages, temperature=0)
    assert second.headers["x-llmops-cache"] == "hit"
    assert _emulator_calls(local_stack) == calls, "a cache hit must not call the model"
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert float(second.headers["x-llmops-cost-usd"]) == 0.0
    bypass = client.chat.completions.with_raw_response.create(
        model="nova-lite", messages=messages, temperature=0, extra_headers={"x-llmops-cache": "bypass"}
    )
    assert bypass.headers["x-llmops-cache"] == "bypass"


def test_non_deterministic_requests_are_not_cached(client: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": f"Be creative {uuid.uuid4().hex}"}]
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(model="nova-lite", messages=messages, temperature=0.9)
        assert raw.headers["x-llmops-cache"] == "bypass"
