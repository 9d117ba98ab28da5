"""`llmops guard-policies` against a moto server through the local state dir."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from llmops.cli.guard_policies import app

runner = CliRunner()


def _invoke(state_dir: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--state-dir", str(state_dir)])
    return result.exit_code, result.output


def test_push_label_show_list_and_rollback(local_stack: Path, tmp_path: Path) -> None:
    strict = tmp_path / "strict.yaml"
    strict.write_text("name: strict\nchange_note: first\npolicy:\n  actions:\n    EMAIL: block\n")
    relaxed = tmp_path / "relaxed.json"
    relaxed.write_text(json.dumps({"name": "strict", "policy": {"actions": {"EMAIL": "redact"}}}))

    assert _invoke(local_stack, "push", str(strict), "--actor", "ana")[0] == 0
    code, out = _invoke(local_stack, "push", str(relaxed), "--json")
    assert code == 0 and json.loads(out)["version"] == 2
    assert _invoke(local_stack, "label", "set", "strict", "production", "1")[0] == 0
    assert _invoke(local_stack, "label", "set", "strict", "production", "2")[0] == 0

    code, out = _invoke(local_stack, "show", "strict", "--label", "production", "--json")
    shown = json.loads(out)
    assert (code, shown["version"], shown["policy"]) == (0, 2, {"actions": {"EMAIL": "redact"}})
    code, out = _invoke(local_stack, "list", "--json")
    assert json.loads(out) == [
        {
            "name": "strict",
            "latest_version": 2,
            "created_at": json.loads(out)[0]["created_at"],
            "labels": {"production": 2},
        }
    ]
    code, out = _invoke(local_stack, "rollback", "strict", "production", "--json")
    assert (code, json.loads(out)["version"]) == (0, 1)


def test_an_invalid_policy_is_refused(local_stack: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: strict\npolicy:\n  nonsense: 1\n")
    code, out = _invoke(local_stack, "push", str(bad))
    assert code == 2
    assert "unknown field" in " ".join(out.split())
    assert _invoke(local_stack, "label", "set", "strict", "production", "1")[0] == 1
