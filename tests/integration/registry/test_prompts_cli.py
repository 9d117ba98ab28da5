"""`llmops prompts` against a moto server through the local state dir, and `test` against a fake
OpenAI-compatible gateway on loopback that renders the registered prompt the way the gateway does."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmops.cli.prompts import app
from llmops.local.naming import LOCAL_STATE_FILE
from llmops.local.wsgi_server import LoopbackServer

runner = CliRunner()
EXAMPLE_FILE = Path(__file__).resolve().parents[3] / "docs" / "prompts" / "support-answer.yaml"

PROMPT = {
    "id": "greeter",
    "template": "Say hello to {{ name }}.",
    "variables": ["name"],
    "model": "chat-default",
    "parameters": {"temperature": 0},
    "examples": [
        {"name": "ada", "variables": {"name": "Ada"}, "expect": [{"contains": "Ada"}, {"max_length": 100}]},
        {
            "name": "json",
            "variables": {"name": "json"},
            "expect": [{"json_schema": {"type": "object", "required": ["greeting"]}}],
        },
    ],
}


def _invoke(state_dir: Path, *args: str) -> Any:
    result = runner.invoke(app, [*args, "--state-dir", str(state_dir)])
    return result


def _flat(output: str) -> str:
    """Rich wraps long lines at the terminal width."""
    return " ".join(output.split())


def _write(tmp_path: Path, doc: dict[str, Any], name: str = "greeter.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


class FakeGateway:
    """Answers `Hello <name>!` (or JSON for name=json) and echoes the prompt ref header."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        body = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        self.bodies.append(body)
        prompt = body["prompt"]
        name = prompt["variables"]["name"]
        text = json.dumps({"greeting": "hi"}) if name == "json" else f"Hello {name}!"
        response = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        start_response(
            "200 OK",
            [("content-type", "application/json"), ("x-llmops-prompt", f"{prompt['id']}@{prompt['version']}")],
        )
        return [json.dumps(response).encode()]


@pytest.fixture
def gateway(local_stack: Path) -> Iterator[FakeGateway]:
    fake = FakeGateway()
    server = LoopbackServer(fake).start()
    state_file = local_stack / LOCAL_STATE_FILE
    state = json.loads(state_file.read_text())
    state.update(base_url=f"{server.url}/v1", api_key="llmops-test")
    state_file.write_text(json.dumps(state))
    try:
        yield fake
    finally:
        server.stop()


def test_push_list_show_diff_label_and_rollback(local_stack: Path, tmp_path: Path) -> None:
    first = _write(tmp_path, PROMPT)
    result = _invoke(local_stack, "push", str(first), "--shared", "--label", "production", "--json")
    assert result.exit_code == 0, result.output
    pushed = json.loads(result.output)
    assert (pushed["ref"], pushed["created"], pushed["label"]["version"]) == ("greeter@1", True, 1)

    unchanged = _invoke(local_stack, "push", str(first), "--shared")
    assert unchanged.exit_code == 0 and "Unchanged" in unchanged.output

    second = _write(tmp_path, {**PROMPT, "template": "Greet {{ name }} warmly."}, "v2.json")
    assert _invoke(local_stack, "push", str(second), "--shared", "--note", "warmer").exit_code == 0

    listed = json.loads(_invoke(local_stack, "list", "--json").output)
    assert listed == [
        {
            "id": "greeter",
            "tenant": None,
            "latest_version": 2,
            "latest_created_at": listed[0]["latest_created_at"],
            "labels": {"production": 1},
        }
    ]

    shown = json.loads(_invoke(local_stack, "show", "greeter", "--json").output)
    assert (shown["version"], shown["change_note"]) == (2, "warmer")
    assert json.loads(_invoke(local_stack, "show", "greeter", "--label", "production", "--json").output)["version"] == 1

    diffed = _invoke(local_stack, "diff", "greeter", "production", "2")
    assert diffed.exit_code == 0
    assert "Say hello to {{ name }}." in diffed.output and "Greet {{ name }} warmly." in diffed.output

    moved = _invoke(local_stack, "label", "set", "greeter", "production", "2", "--actor", "ci", "--json")
    assert json.loads(moved.output)["history"] == [1]
    back = _invoke(local_stack, "rollback", "greeter", "production", "--json")
    assert json.loads(back.output)["version"] == 1
    assert _invoke(local_stack, "rollback", "greeter", "production").exit_code == 1

    for args, expected in (
        (("list",), "production=v1"),
        (("show", "greeter", "--version", "1"), "Say hello to {{ name }}."),
        (("label", "list", "greeter"), "production"),
        (("diff", "greeter", "1", "production"), "No differences."),
    ):
        human = _invoke(local_stack, *args)
        assert human.exit_code == 0 and expected in human.output, (args, human.output)


def test_errors_are_reported_with_exit_codes(local_stack: Path, tmp_path: Path) -> None:
    bad = _write(tmp_path, {**PROMPT, "template": "{{ who }}"}, "bad.json")
    result = _invoke(local_stack, "push", str(bad), "--shared")
    assert result.exit_code == 2
    assert "undeclared variables used in the template: who" in _flat(result.output)
    assert _invoke(local_stack, "show", "missing").exit_code == 1
    assert _invoke(local_stack, "label", "set", "missing", "production", "1").exit_code == 1


def test_the_example_prompt_file_is_valid(local_stack: Path) -> None:
    result = _invoke(local_stack, "push", str(EXAMPLE_FILE), "--shared", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["variables"] == ["product", "tone", "question"]


def test_prompt_test_runs_examples_through_the_gateway(gateway: FakeGateway, local_stack: Path, tmp_path: Path) -> None:
    path = _write(tmp_path, PROMPT)
    not_pushed = _invoke(local_stack, "test", str(path))
    assert not_pushed.exit_code == 2 and "push it first" in _flat(not_pushed.output)

    assert _invoke(local_stack, "push", str(path), "--shared").exit_code == 0
    result = _invoke(local_stack, "test", str(path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["passed"] is True and report["prompt"] == "greeter@1"
    assert len(report["results"]) == 3
    assert gateway.bodies[0]["prompt"] == {"id": "greeter", "version": 1, "variables": {"name": "Ada"}}
    assert gateway.bodies[0]["model"] == "chat-default"


def test_prompt_test_exits_1_when_a_property_fails(gateway: FakeGateway, local_stack: Path, tmp_path: Path) -> None:
    failing = {
        **PROMPT,
        "examples": [{"name": "ada", "variables": {"name": "Ada"}, "expect": [{"not_contains": "Ada"}]}],
    }
    path = _write(tmp_path, failing)
    assert _invoke(local_stack, "push", str(path), "--shared").exit_code == 0
    result = _invoke(local_stack, "test", str(path))
    assert result.exit_code == 1
    assert "FAIL" in result.output


def test_tenant_prompts_are_addressed_only_with_their_tenant(local_stack: Path, tmp_path: Path) -> None:
    secret = _write(tmp_path, {**PROMPT, "id": "team-bot", "system": "Confidential: {{ name }} is a VIP."}, "t.json")
    refused = _invoke(local_stack, "push", str(secret))
    assert refused.exit_code == 2 and "--shared" in _flat(refused.output)  # no accidental sharing
    assert _invoke(local_stack, "push", str(secret), "--tenant", "team-a", "--shared").exit_code == 2

    pushed = _invoke(local_stack, "push", str(secret), "--tenant", "team-a", "--label", "production", "--json")
    assert pushed.exit_code == 0, pushed.output
    assert (json.loads(pushed.output)["ref"], json.loads(pushed.output)["tenant"]) == ("team-a/team-bot@1", "team-a")

    def ids(*args: str) -> set[tuple[str, str | None]]:
        return {(p["id"], p["tenant"]) for p in json.loads(_invoke(local_stack, "list", *args, "--json").output)}

    assert ("team-bot", "team-a") in ids() and ("team-bot", "team-a") in ids("--tenant", "team-a")
    assert ("team-bot", "team-a") not in ids("--tenant", "team-b")
    assert all(tenant in (None, "team-b") for _, tenant in ids("--tenant", "team-b"))

    # Another tenant (or the shared scope) has no such prompt: show, label, rollback and diff fail.
    for scope in (("--tenant", "team-b"), ()):
        assert _invoke(local_stack, "show", "team-bot", *scope).exit_code == 1
        assert _invoke(local_stack, "show", "team-bot", "--version", "1", *scope).exit_code == 1
        assert _invoke(local_stack, "label", "set", "team-bot", "production", "1", *scope).exit_code == 1
        assert _invoke(local_stack, "rollback", "team-bot", "production", *scope).exit_code == 1
        assert _invoke(local_stack, "diff", "team-bot", "1", "production", *scope).exit_code == 1
        assert json.loads(_invoke(local_stack, "label", "list", "team-bot", *scope, "--json").output) == []
    shown = json.loads(_invoke(local_stack, "show", "team-bot", "--tenant", "team-a", "--json").output)
    assert (shown["ref"], shown["tenant"], [s["label"] for s in shown["labels"]]) == (
        "team-a/team-bot@1",
        "team-a",
        ["production"],
    )
    assert _invoke(local_stack, "push", str(secret), "--tenant", "not a tenant!").exit_code == 2
