"""The fine-tuning pipeline's own code: the dataset split and the candidate's evaluation report."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from llmops.cli.retrain_pipeline import code_archive
from llmops.evaluation.candidate import HeldOut, load_examples, main, score_candidate, split_dataset


def _line(request_id: str, answer: str = "Paris is the capital.", negative: bool = False) -> str:
    return json.dumps(
        {
            "messages": [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": answer}],
            "negative": negative,
            "metadata": {"request_id": request_id},
        }
    )


def test_the_split_is_stable_by_request_and_drops_negative_ratings() -> None:
    lines = [_line(f"r{i}") for i in range(200)] + [_line("bad", negative=True)]
    train, heldout = split_dataset(lines, 0.2)
    assert len(train) + len(heldout) == 200
    assert 20 <= len(heldout) <= 60
    assert split_dataset(list(reversed(lines)), 0.2)[1] == list(reversed(heldout))  # by id, not position
    assert not any('"bad"' in line for line in train + heldout)


def test_quality_is_token_f1_and_exact_match_against_the_rated_answer() -> None:
    examples = load_examples([_line("a"), _line("b", answer="The answer is 42.")])
    report = score_candidate(examples, ["Paris is the capital.", "It is 42"])
    assert report["examples"] == 2
    assert report["quality"]["exact_match"] == 0.5
    # "it is 42" vs "the answer is 42": 2 common tokens, precision 2/3, recall 2/4
    assert report["quality"]["token_f1"] == pytest.approx((1 + 2 * (2 / 3) * 0.5 / (2 / 3 + 0.5)) / 2, abs=1e-6)


def test_guardrail_findings_are_the_gateways_output_guard_on_every_answer() -> None:
    examples = [HeldOut(({"role": "user", "content": "hi"},), "hello")] * 2
    report = score_candidate(examples, ["hello", "mail me at jane.doe@example.com"])
    assert report["guardrails"]["findings"].get("EMAIL") == 1
    assert 0 <= report["guardrails"]["block_rate"] <= 0.5
    with pytest.raises(ValueError, match="1 predictions for 2"):
        score_candidate(examples, ["one"])


def test_the_split_command_writes_train_and_heldout(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    (source / "train.jsonl").write_text("\n".join(_line(f"r{i}") for i in range(50)) + "\n")
    code = main(["split", "--input", str(source), "--train", str(tmp_path / "t"), "--heldout", str(tmp_path / "h")])
    assert code == 0
    counts = [len((tmp_path / d / "data.jsonl").read_text().splitlines()) for d in ("t", "h")]
    assert sum(counts) == 50


def test_the_pipeline_code_archive_holds_the_evaluation_but_not_the_cli_or_local_stack() -> None:
    with tarfile.open(fileobj=io.BytesIO(code_archive()), mode="r:gz") as archive:
        names = set(archive.getnames())
    assert "llmops/evaluation/candidate.py" in names
    assert "llmops/domain/guard/engine.py" in names
    assert not any(n.startswith(("llmops/cli/", "llmops/local/", "llmops/bench/")) for n in names)
