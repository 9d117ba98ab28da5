"""`llmops eval guardrails`: measure the guard engine on public corpora, next to Presidio."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from llmops.cli.terminal import console, errors
from llmops.evaluation import DEFAULT_CACHE_DIR, EvalCache, EvalOptions, run_guardrails_eval, write_report
from llmops.evaluation.cache import CacheError
from llmops.evaluation.corpora import SPLITS
from llmops.evaluation.guard_corpora import CorpusError
from llmops.evaluation.guard_eval import LearnedEvalOptions, run_learned_eval, write_learned_report

__all__ = ["app"]

app = typer.Typer(help="Evaluate the gateway's capabilities on public data.", no_args_is_help=True)


class _RichPhases:
    """Adapts the run's phases to one rich progress bar each."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._current: tuple[TaskID, int | None] | None = None

    def phase(self, description: str, total: int | None = None) -> Callable[[], None]:
        if self._current is not None:
            previous, previous_total = self._current
            self._progress.update(previous, completed=previous_total or 1, total=previous_total or 1)
        task_id = self._progress.add_task(description, total=total)
        self._current = (task_id, total)
        return lambda: self._progress.advance(task_id)

    def finish(self) -> None:
        self.phase("Writing the report", 1)


@contextmanager
def _progress() -> Iterator[_RichPhases]:
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description:<28}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        yield _RichPhases(progress)


class Split(StrEnum):
    ALL = "all"
    DEV = "dev"
    TEST = "test"


assert {s.value for s in Split} == set(SPLITS)


@app.command("guardrails")
def guardrails(
    benign: Annotated[
        Path,
        typer.Option("--benign", exists=True, help="Benign prompts: a .jsonl/.json/.txt file or a directory of them."),
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Report directory.")] = Path("reports/guardrails"),
    cache_dir: Annotated[Path, typer.Option("--cache-dir", help="Download cache.")] = DEFAULT_CACHE_DIR,
    samples: Annotated[int, typer.Option("--samples", min=1, help="Generated PII sentences.")] = 5000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the PII generator.")] = 42,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Quick run: cap sentences, prompts per corpus and documents."),
    ] = None,
    latency_docs: Annotated[int, typer.Option("--latency-docs", min=1, help="1 KiB documents to time.")] = 200,
    repeat: Annotated[int, typer.Option("--repeat", min=1, help="Timed repetitions per document.")] = 5,
    examples: Annotated[
        bool, typer.Option("--examples", help="Quote missed attacks and blocked benign prompts in the report.")
    ] = False,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write PNG plots.")] = True,
    split: Annotated[
        Split,
        typer.Option(
            "--split",
            help="Which half of the attack and benign prompts (by a hash of the text): tune on dev, report test.",
        ),
    ] = Split.ALL,
    pii_only: Annotated[
        bool,
        typer.Option(
            "--pii-only",
            help="Only the PII part (plain, obfuscated, near misses): no attack corpora, injection or latency.",
        ),
    ] = False,
    near_misses: Annotated[
        int, typer.Option("--near-misses", min=0, help="Generated near-miss sentences (no PII) for precision.")
    ] = 1000,
    attacks_only: Annotated[
        bool,
        typer.Option(
            "--attacks-only",
            help="Only the attack families: heuristics alone vs with the learned layer, per family, with ROC"
            " plots (no PII, no Presidio). Written to <out>/attacks.",
        ),
    ] = False,
) -> None:
    """Download the corpora (cached), run our guard engine and Presidio, write report.md, results.json
    and PNG plots; then the attack families (heuristics vs the learned layer) into <out>/attacks.
    Exit 0 whether or not the targets are met: this is a benchmark, not a test."""
    if attacks_only:
        _attack_families(benign, out_dir / "attacks", cache_dir, limit, plots)
        return
    options = EvalOptions(
        benign=benign,
        cache=EvalCache(cache_dir.expanduser()),
        samples=samples,
        seed=seed,
        limit=limit,
        latency_docs=latency_docs,
        repeat=repeat,
        examples=examples,
        split=split.value,
        pii_only=pii_only,
        near_misses=near_misses,
    )
    try:
        with _progress() as phases:
            results = run_guardrails_eval(options, phases)
            phases.finish()
    except CacheError as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    try:
        written = write_report(results, out_dir, plots=plots)
    except ImportError:
        # matplotlib lives in the `bench` dependency group; the numbers are worth having without it.
        errors.print("[yellow]matplotlib is not installed: writing the report without plots[/yellow]")
        written = write_report(results, out_dir, plots=False)
    table = Table(title="Targets")
    for column in ("target", "wanted", "measured", "met"):
        table.add_column(column)
    for target in results["targets"]:
        measured = target["measured"]
        shown = "n/a" if measured is None else (f"{measured:.3f}" if measured <= 1 else f"{measured:.1f}")
        table.add_row(
            target["name"], target["target"], shown, "[green]yes[/green]" if target["met"] else "[red]no[/red]"
        )
    console.print(table)
    for path in written:
        console.print(f"wrote {path}")
    if not pii_only:
        _attack_families(benign, out_dir / "attacks", cache_dir, limit, plots)


def _attack_families(benign: Path, out_dir: Path, cache_dir: Path, limit: int | None, plots: bool) -> None:
    options = LearnedEvalOptions(benign=benign, cache=EvalCache(cache_dir.expanduser()), limit=limit)
    try:
        with _progress() as phases:
            results = run_learned_eval(options, phases.phase)
            phases.finish()
    except (CacheError, CorpusError) as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    try:
        written = write_learned_report(results, out_dir, plots=plots)
    except ImportError:
        errors.print("[yellow]matplotlib is not installed: writing the report without plots[/yellow]")
        written = write_learned_report(results, out_dir, plots=False)
    table = Table(title="Attack families (combined = heuristics + learned layer)")
    for column in ("family", "provenance", "n", "heuristics", "combined", "90% TPR at", "FPR there"):
        table.add_column(column)
    for row in results["families"]:
        if row["kind"] in ("attack", "harm", "output"):
            met = "[green]" if row["target_met"] else "[red]"
            table.add_row(
                row["family"][:58],
                row["provenance"],
                str(row["texts"]),
                f"{row['tpr_default_heuristic']:.1%}",
                f"{met}{row['tpr_default_combined']:.1%}",
                f"{row['threshold_for_90_tpr_combined']:.3f}",
                f"{(row['fpr_at_that_threshold_combined'] or 0.0):.1%}",
            )
        else:
            table.add_row(
                row["family"][:58],
                row["provenance"],
                str(row["texts"]),
                f"FPR {row['fpr_default_heuristic']:.1%}",
                f"FPR {row['fpr_default_combined']:.1%}",
                "",
                "",
            )
    console.print(table)
    for path in written:
        console.print(f"wrote {path}")
