"""`llmops guard-policies push` validates the service guard detectors a policy names.

The gateway runs them (application/guard_detectors.py), so a policy configuring Bedrock Guardrails
or Comprehend passes validation and goes on to the store; one naming the guardrail without its id
is refused before the push opens the registry (`GuardPolicyDraft.problems`), naming the field.
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from llmops.cli.main import app

runner = CliRunner()


def _push(tmp_path: Path, policy_yaml: str) -> tuple[int, str]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_yaml)
    result = runner.invoke(app, ["guard-policies", "push", str(policy), "--state-dir", str(tmp_path / "none")])
    return result.exit_code, " ".join(result.output.split())


def test_push_of_service_detectors_passes_validation_and_goes_on_to_the_store(tmp_path: Path) -> None:
    _, output = _push(
        tmp_path,
        "name: strict\npolicy:\n  bedrock_guardrail: {guardrail_id: gr1abc, version: '2', fail_mode: open}\n"
        "  comprehend: {entity_types: {NAME: PERSON}}\n",
    )
    # No local stack in the state dir: the push got past validation to looking for the store.
    assert "No local stack state" in output, output


def test_push_refuses_a_guardrail_without_its_id(tmp_path: Path) -> None:
    code, output = _push(tmp_path, "name: strict\npolicy:\n  detectors: [secrets, pii, bedrock_guardrail]\n")
    assert code == 2
    assert "'bedrock_guardrail' needs a 'bedrock_guardrail' object" in output


def test_push_of_builtin_detectors_passes_validation_and_goes_on_to_the_store(tmp_path: Path) -> None:
    _, output = _push(tmp_path, "name: strict\npolicy:\n  detectors: [secrets, pii, injection]\n")
    assert "No local stack state" in output
