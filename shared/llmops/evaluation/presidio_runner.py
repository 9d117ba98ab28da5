"""Drives `presidio_worker.py` in the cache virtualenv and reads its JSON back."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llmops.evaluation import presidio_worker
from llmops.evaluation.cache import PINNED, CacheError, EvalCache
from llmops.evaluation.pii_data import PiiSample, Span, load_samples, parse_spans

__all__ = ["PresidioRun", "analyze_with_presidio", "generate_pii_samples"]

_WORKER = Path(presidio_worker.__file__)


def _worker(python: Path, *args: str) -> None:
    completed = subprocess.run(  # noqa: S603 - our own script and the cache venv's interpreter
        [str(python), str(_WORKER), *args], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        tail = " | ".join(completed.stderr.strip().splitlines()[-5:])
        raise CacheError(f"presidio worker {args[0]} failed ({completed.returncode}): {tail}")


def generate_pii_samples(cache: EvalCache, samples: int, seed: int) -> list[PiiSample]:
    """presidio-evaluator's sentences for (samples, seed), generated once and then read from the cache
    (Faker draws some dates relative to the clock, so the cached file is what makes reruns identical)."""
    version = PINNED["presidio-evaluator"]
    path = cache.pii_dir / f"samples-{version}-seed{seed}-n{samples}.json"
    if not path.exists():
        partial = path.with_suffix(".tmp")
        _worker(
            cache.presidio_python(), "generate", "--samples", str(samples), "--seed", str(seed), "--out", str(partial)
        )
        partial.replace(path)
    return load_samples(path)


@dataclass(frozen=True, slots=True)
class PresidioRun:
    version: str
    predictions: list[tuple[Span, ...]]
    timings_ns: list[list[int]]  # per text, one entry per repetition


def analyze_with_presidio(cache: EvalCache, texts: Sequence[str], *, repeat: int, name: str) -> PresidioRun:
    work = cache.pii_dir / "runs"
    work.mkdir(parents=True, exist_ok=True)
    texts_file = work / f"{name}-texts.json"
    out_file = work / f"{name}-presidio.json"
    texts_file.write_text(json.dumps({"texts": list(texts)}), encoding="utf-8")
    _worker(
        cache.presidio_python(), "analyze", "--texts", str(texts_file), "--repeat", str(repeat), "--out", str(out_file)
    )
    doc = json.loads(out_file.read_text(encoding="utf-8"))
    return PresidioRun(
        version=str(doc["presidio_version"]),
        predictions=[parse_spans(found) for found in doc["predictions"]],
        timings_ns=[[int(t) for t in runs] for runs in doc["timings_ns"]],
    )
