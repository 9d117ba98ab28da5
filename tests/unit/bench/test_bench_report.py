"""Report rendering: targets, tables, sections and the JSON written next to the Markdown."""

from __future__ import annotations

import json
import math
from pathlib import Path

from llmops.bench.report import (
    Comparison,
    Figure,
    Section,
    TargetCheck,
    format_number,
    markdown_table,
    render_report,
    write_report,
)


def test_target_verdicts() -> None:
    assert TargetCheck("p50", 0.4, 0.5, "ms").verdict == "met"
    assert TargetCheck("p50", 0.6, 0.5, "ms").verdict == "missed"
    assert TargetCheck("bundle", 10.0, 10.0, "MB", Comparison.BELOW).passed is False
    assert TargetCheck("count", 3.0, 1.0, "x", Comparison.AT_LEAST).passed is True
    assert TargetCheck("skipped", None, 1.0, "ms").verdict == "not measured"
    assert TargetCheck("nan", math.nan, 1.0, "ms").passed is None


def test_format_number() -> None:
    assert format_number(1234.567, 1, "ms") == "1,234.6 ms"
    assert format_number(0.1234, 2, "x") == "0.12x"
    assert format_number(None) == "n/a"
    assert format_number(math.nan) == "n/a"
    assert format_number(3.0, 0) == "3"


def test_markdown_table_escapes_pipes_and_newlines() -> None:
    table = markdown_table(("a", "b"), [("x|y", "line\nbreak")])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| x\\|y | line break |"]


def test_render_report_lists_targets_sections_figures_and_failures() -> None:
    ok = Section(
        key="handler",
        title="Handler overhead",
        body="Some **text**.",
        figures=[Figure("figures/handler-cdf.png", "CDF")],
        targets=[TargetCheck("handler p50", 0.42, 0.5, "ms")],
        seconds=1.5,
    )
    failed = Section(key="load", title="Load", error="RuntimeError: boom")
    text = render_report("Benchmarks", [ok, failed], {"python": "3.11"})
    assert text.startswith("# Benchmarks\n")
    assert "| python | 3.11 |" in text
    assert "| handler p50 | 0.42 ms | <= 0.50 ms | met |" in text
    assert "## Handler overhead" in text
    assert "![CDF](figures/handler-cdf.png)" in text
    assert "**This benchmark failed:** `RuntimeError: boom`" in text


def test_render_report_without_targets_says_so() -> None:
    assert "_No targets were measured in this run._" in render_report("T", [Section("k", "K")], {})


def test_write_report_writes_markdown_and_json_with_nan_as_null(tmp_path: Path) -> None:
    section = Section(key="guards", title="Guards", results={"p50": math.nan, "values": (1, 2)})
    report, results = write_report(tmp_path, "T", [section], {"profile": "quick"})
    assert report.read_text().startswith("# T")
    data = json.loads(results.read_text())
    assert data["environment"] == {"profile": "quick"}
    assert data["sections"]["guards"]["results"] == {"p50": None, "values": [1, 2]}
    assert json.loads((tmp_path / "guards.json").read_text())["title"] == "Guards"
