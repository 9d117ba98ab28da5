"""`llmops guard-policies push` refuses a policy naming a detector the gateway does not run yet.

The refusal comes from the policy validation the registry calls (`GuardPolicyDraft.problems`), so
nothing is stored and no stack is needed: the push fails before it opens the registry.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmops.cli.main import app
from llmops.domain.guard.policy import PLUGGABLE_DETECTORS

runner = CliRunner()


@pytest.mark.parametrize("detector", sorted(PLUGGABLE_DETECTORS))
def test_push_refuses_a_pluggable_detector_naming_it(detector: str, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"name: strict\npolicy:\n  detectors: [secrets, pii, {detector}]\n")

    result = runner.invoke(app, ["guard-policies", "push", str(policy), "--state-dir", str(tmp_path / "none")])

    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert f"'{detector}' detector is not available in the gateway yet" in output


def test_push_of_builtin_detectors_passes_validation_and_goes_on_to_the_store(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("name: strict\npolicy:\n  detectors: [secrets, pii, injection]\n")
    result = runner.invoke(app, ["guard-policies", "push", str(policy), "--state-dir", str(tmp_path / "none")])
    # No local stack in the state dir: the push got past validation to looking for the store.
    assert "No local stack state" in " ".join(result.output.split())
    assert "not available in the gateway" not in result.output
