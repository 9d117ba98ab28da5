"""Runs the benchmarks in order and writes the report; one failing benchmark never hides the others."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from llmops.bench import cold_start, guard_speed, handler_overhead, load, robustness, side_by_side, streaming
from llmops.bench.context import BenchContext
from llmops.bench.report import Section, write_report

__all__ = ["BENCHMARKS", "Benchmark", "environment_info", "run_benchmarks"]

REPORT_TITLE = "llmops-gateway benchmarks"


@dataclass(frozen=True, slots=True)
class Benchmark:
    key: str
    title: str
    run: Callable[[BenchContext], Section]


# Cheap and in-process first, so a quick look at the report is possible early.
BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(guard_speed.KEY, guard_speed.TITLE, guard_speed.run),
    Benchmark(handler_overhead.KEY, handler_overhead.TITLE, handler_overhead.run),
    Benchmark(cold_start.KEY, cold_start.TITLE, cold_start.run),
    Benchmark(side_by_side.KEY, side_by_side.TITLE, side_by_side.run),
    Benchmark(streaming.KEY, streaming.TITLE, streaming.run),
    Benchmark(load.KEY, load.TITLE, load.run),
    Benchmark(robustness.KEY, robustness.TITLE, robustness.run),
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GB"
    except (OSError, ValueError):
        pass
    return "unknown"


def _git_commit(repo_root: Path) -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH, like any developer tool
            cwd=repo_root,
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            cwd=repo_root,
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = result.stdout.strip() or "unknown"
    return f"{commit} (with uncommitted changes)" if dirty.stdout.strip() else commit


def _load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def environment_info(ctx: BenchContext) -> dict[str, object]:
    return {
        "date (UTC)": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "commit": _git_commit(ctx.repo_root),
        "profile": ctx.profile.name,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "CPU": f"{_cpu_model()} x {os.cpu_count()}",
        "memory": _memory_gb(),
        "load average at start (1/5/15 min)": _load_average(),
        "fake upstream delay": f"{ctx.upstream_delay_ms:g} ms",
    }


def run_benchmarks(ctx: BenchContext, only: Sequence[str] | None = None) -> tuple[list[Section], Path]:
    """Runs the selected benchmarks (all by default) and writes report.md + JSON into ctx.out_dir."""
    selected = [b for b in BENCHMARKS if not only or b.key in only]
    unknown = set(only or ()) - {b.key for b in BENCHMARKS}
    if unknown:
        raise ValueError(
            f"unknown benchmark(s): {', '.join(sorted(unknown))}; known: {', '.join(b.key for b in BENCHMARKS)}"
        )
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    environment = environment_info(ctx)
    sections: list[Section] = []
    for benchmark in selected:
        ctx.console.rule(f"[bold]{benchmark.title}")
        started = time.perf_counter()
        try:
            section = benchmark.run(ctx)
        except Exception as exc:
            ctx.console.print(f"[red]{benchmark.key} failed:[/] {type(exc).__name__}: {exc}")
            (ctx.work_dir(benchmark.key) / "error.txt").write_text(traceback.format_exc())
            section = Section(
                key=benchmark.key,
                title=benchmark.title,
                error=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                body=f"Traceback: `{ctx.work_dir(benchmark.key) / 'error.txt'}`.",
            )
        section.seconds = time.perf_counter() - started
        sections.append(section)
        # Written after every benchmark, so an interrupted run still leaves a report behind.
        environment["load average at end (1/5/15 min)"] = _load_average()
        write_report(ctx.out_dir, REPORT_TITLE, sections, environment)
    return sections, ctx.out_dir / "report.md"
