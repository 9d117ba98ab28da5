"""Evaluating a retrained candidate: the fine-tuning pipeline's prepare and evaluate steps.

The SageMaker pipeline (`llmops.workflows.fine_tuning_pipeline`) runs this module in its
processing containers, with this package as the step's code input:

- `python3 -m llmops.evaluation.candidate split --input DIR --train DIR --heldout DIR` splits the
  exported, redacted dataset (`llmops.domain.finetune_export` lines) into a training set and a
  held-out set, by a hash of each example's request id (stable across runs, no leakage when the
  same request is exported twice). Negatively rated examples go to neither: they are what the
  model should not learn, and scoring against them would reward the bad answer.
- `python3 -m llmops.evaluation.candidate evaluate --model DIR --heldout DIR --output DIR`
  generates the candidate's answer to each held-out conversation (with the `transformers`
  text-generation pipeline the training image provides) and writes `evaluation.json`: quality
  (token F1 and exact match against the rated answer) and guardrail findings (the gateway's own
  output guard over every answer: the share it would block, and findings by type). The pipeline's
  condition reads `quality.token_f1` and `guardrails.block_rate` from it, and the model package is
  registered with it as its model statistics.

Scoring is pure (`score_candidate`) and runs anywhere; only generation needs the model runtime.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmops.domain.guard import safe_regex
from llmops.domain.guard.engine import GuardEngine

__all__ = ["HeldOut", "load_examples", "main", "score_candidate", "split_dataset"]

_WORD = safe_regex.compile(r"\w+")
EVALUATION_FILE = "evaluation.json"


@dataclass(frozen=True, slots=True)
class HeldOut:
    """One held-out conversation: the messages before the answer, and the answer users rated well."""

    prompt: tuple[dict[str, str], ...]
    reference: str


def _bucket(example: dict[str, Any]) -> float:
    key = str((example.get("metadata") or {}).get("request_id") or json.dumps(example, sort_keys=True))
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def split_dataset(lines: Iterable[str], heldout_fraction: float) -> tuple[list[str], list[str]]:
    """(training lines, held-out lines); negatively rated examples are dropped."""
    train: list[str] = []
    heldout: list[str] = []
    for line in lines:
        if not line.strip():
            continue
        example = json.loads(line)
        if example.get("negative"):
            continue
        (heldout if _bucket(example) < heldout_fraction else train).append(line.rstrip("\n"))
    return train, heldout


def load_examples(lines: Iterable[str]) -> list[HeldOut]:
    examples: list[HeldOut] = []
    for line in lines:
        if not line.strip():
            continue
        messages = json.loads(line)["messages"]
        if not messages or messages[-1].get("role") != "assistant":
            continue
        examples.append(HeldOut(tuple(messages[:-1]), str(messages[-1].get("content", ""))))
    return examples


def _tokens(text: str) -> list[str]:
    return [t.lower() for t in _WORD.findall(text)]


def _f1(prediction: str, reference: str) -> float:
    predicted, expected = Counter(_tokens(prediction)), Counter(_tokens(reference))
    common = sum((predicted & expected).values())
    if not predicted or not expected:
        return float(predicted == expected)
    if common == 0:
        return 0.0
    precision, recall = common / sum(predicted.values()), common / sum(expected.values())
    return 2 * precision * recall / (precision + recall)


def score_candidate(
    examples: Sequence[HeldOut], predictions: Sequence[str], guard: GuardEngine | None = None
) -> dict[str, Any]:
    """The evaluation report: quality against the references, and what the output guard finds."""
    if len(examples) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(examples)} held-out examples")
    engine = guard or GuardEngine()
    findings: Counter[str] = Counter()
    blocked = 0
    for answer in predictions:
        result = engine.scan(answer, "output")
        blocked += result.action.value == "block"
        findings.update(str(f.type) for f in result.findings)
    n = len(examples)
    f1 = [_f1(p, e.reference) for p, e in zip(predictions, examples, strict=True)]
    exact = [_tokens(p) == _tokens(e.reference) for p, e in zip(predictions, examples, strict=True)]
    return {
        "examples": n,
        "quality": {
            "token_f1": round(sum(f1) / n, 6) if n else 0.0,
            "exact_match": round(sum(exact) / n, 6) if n else 0.0,
        },
        "guardrails": {
            "block_rate": round(blocked / n, 6) if n else 0.0,
            "findings": dict(sorted(findings.items())),
        },
    }


def _jsonl(directory: Path) -> list[str]:
    return [line for path in sorted(directory.glob("*.jsonl")) for line in path.read_text().splitlines()]


def _generator(model_dir: Path) -> Callable[[Sequence[dict[str, str]]], str]:
    """The candidate's text generation, from the training image's `transformers` (not a dependency
    of this package: the evaluate step runs where the model's framework is installed)."""
    try:
        from transformers import pipeline  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
    except ImportError as exc:
        raise SystemExit(
            "the evaluation image needs the `transformers` package to generate with the candidate"
        ) from exc
    generate = pipeline("text-generation", model=str(model_dir))

    def answer(messages: Sequence[dict[str, str]]) -> str:
        out = generate(list(messages), max_new_tokens=512, return_full_text=False)
        return str(out[0]["generated_text"])

    return answer


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmops.evaluation.candidate")
    commands = parser.add_subparsers(dest="command", required=True)
    split = commands.add_parser("split")
    split.add_argument("--input", type=Path, required=True)
    split.add_argument("--train", type=Path, required=True)
    split.add_argument("--heldout", type=Path, required=True)
    split.add_argument("--heldout-fraction", type=float, default=0.1)
    evaluate = commands.add_parser("evaluate")
    evaluate.add_argument("--model", type=Path, required=True)
    evaluate.add_argument("--heldout", type=Path, required=True)
    evaluate.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "split":
        train, heldout = split_dataset(_jsonl(args.input), args.heldout_fraction)
        for directory, lines in ((args.train, train), (args.heldout, heldout)):
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "data.jsonl").write_text("".join(f"{line}\n" for line in lines))
        print(json.dumps({"train": len(train), "heldout": len(heldout)}))
        return 0
    examples = load_examples(_jsonl(args.heldout))
    answer = _generator(args.model)
    report = score_candidate(examples, [answer(e.prompt) for e in examples])
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / EVALUATION_FILE).write_text(json.dumps(report, indent=2))
    print(json.dumps(report["quality"] | {"block_rate": report["guardrails"]["block_rate"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
