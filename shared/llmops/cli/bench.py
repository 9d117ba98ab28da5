"""`llmops bench`: every benchmark in one go, report and plots under --out (default reports/)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

__all__ = ["bench"]

_KNOWN = "guards, handler, cold_start, side_by_side, streaming, load, robustness"


def bench(
    out: Annotated[Path, typer.Option("--out", help="Directory for report.md, JSON and PNG figures.")] = Path(
        "reports"
    ),
    quick: Annotated[
        bool, typer.Option("--quick", help="Smoke run of about a minute instead of the full run.")
    ] = False,
    only: Annotated[str | None, typer.Option("--only", help=f"Comma-separated subset of benchmarks: {_KNOWN}.")] = None,
    litellm: Annotated[
        bool, typer.Option("--litellm/--no-litellm", help="Compare with LiteLLM (installed into a cache venv).")
    ] = True,
    litellm_venv: Annotated[
        Path | None, typer.Option("--litellm-venv", help="Where LiteLLM's venv lives (created if missing).")
    ] = None,
    upstream_delay_ms: Annotated[
        float, typer.Option("--upstream-delay-ms", min=0, help="The fake model's fixed answer time.")
    ] = 20.0,
) -> None:
    """Benchmarks: guard speed, handler overhead, cold start and bundle size, llmops vs LiteLLM, load."""
    # Imported here: matplotlib and the benchmark modules are tooling, not needed by other commands.
    from llmops.bench.context import BenchContext, BenchProfile  # noqa: PLC0415
    from llmops.bench.litellm_env import DEFAULT_LITELLM_VENV  # noqa: PLC0415
    from llmops.bench.report import format_number  # noqa: PLC0415
    from llmops.bench.runner import run_benchmarks  # noqa: PLC0415

    console = Console(stderr=True)
    ctx = BenchContext(
        out_dir=out.resolve(),
        profile=BenchProfile.quick() if quick else BenchProfile.full(),
        console=console,
        litellm_venv=litellm_venv or DEFAULT_LITELLM_VENV,
        use_litellm=litellm,
        upstream_delay_ms=upstream_delay_ms,
    )
    selected = [name.strip() for name in only.split(",") if name.strip()] if only else None
    try:
        sections, report = run_benchmarks(ctx, selected)
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    console.rule("[bold]Summary")
    for section in sections:
        for target in section.targets:
            colour = {True: "green", False: "red", None: "yellow"}[target.passed]
            measured = format_number(target.measured, 3, target.unit)
            goal = f"{target.comparison.value} {format_number(target.target, 3, target.unit)}"
            console.print(f"  [{colour}]{target.verdict:>12}[/]  {target.name}: {measured} (goal {goal})")
    console.print(f"Report: [cyan]{report}[/]")
    failed = [s.key for s in sections if s.error]
    if failed:
        console.print(f"[red]Failed benchmarks:[/] {', '.join(failed)}")
        raise typer.Exit(1)
