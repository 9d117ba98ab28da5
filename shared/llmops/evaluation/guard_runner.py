"""Runs our guard engine over evaluation texts: PII spans, injection scores and scan timings."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from llmops.domain.guard import Direction, GuardEngine
from llmops.evaluation.pii_data import Span

__all__ = ["ScanTimings", "injection_scores", "pii_predictions", "time_scans"]

Tick = Callable[[], None]


def _noop() -> None:
    return None


def pii_predictions(engine: GuardEngine, texts: Sequence[str], tick: Tick = _noop) -> list[tuple[Span, ...]]:
    """Every finding of an input scan as a span (filtering to evaluated types happens in scoring)."""
    predictions: list[tuple[Span, ...]] = []
    for text in texts:
        result = engine.scan(text, Direction.INPUT)
        predictions.append(tuple(sorted(Span(f.start, f.end, f.type) for f in result.findings)))
        tick()
    return predictions


def injection_scores(engine: GuardEngine, prompts: Sequence[str], tick: Tick = _noop) -> list[float]:
    scores: list[float] = []
    for prompt in prompts:
        scores.append(engine.scan(prompt, Direction.INPUT).scores.get("prompt_injection", 0.0))
        tick()
    return scores


@dataclass(frozen=True, slots=True)
class ScanTimings:
    """Nanoseconds per document and repetition."""

    input_scan: list[list[int]]
    input_output_scan: list[list[int]]


def time_scans(engine: GuardEngine, documents: Sequence[str], repeat: int, tick: Tick = _noop) -> ScanTimings:
    """One input scan, and one input scan followed by one output scan (the chat path's full work
    for a text), timed separately with `perf_counter_ns` after a warm-up pass."""
    for document in documents[:20]:
        engine.scan(document, Direction.INPUT)
        engine.scan(document, Direction.OUTPUT)
    clock = time.perf_counter_ns
    input_only: list[list[int]] = []
    both: list[list[int]] = []
    for document in documents:
        singles: list[int] = []
        pairs: list[int] = []
        for _ in range(max(1, repeat)):
            started = clock()
            engine.scan(document, Direction.INPUT)
            middle = clock()
            engine.scan(document, Direction.OUTPUT)
            ended = clock()
            singles.append(middle - started)
            pairs.append(ended - started)
        input_only.append(singles)
        both.append(pairs)
        tick()
    return ScanTimings(input_only, both)
