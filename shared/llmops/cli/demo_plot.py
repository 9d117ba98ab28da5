"""The canary demo's figure (matplotlib, headless): traffic share and error rate over time, per step."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import matplotlib

matplotlib.use("Agg")  # headless: no display needed

import matplotlib.pyplot as plt

__all__ = ["canary_figure"]


class _Sample(Protocol):
    t: float
    step: int | None
    weight: float
    call_share: float | None
    error_rate: float | None
    gates: dict[str, str]


def _breach_times(samples: Sequence[_Sample]) -> list[float]:
    times: list[float] = []
    was = False
    for sample in samples:
        now = any(state == "ALARM" for state in sample.gates.values())
        if now and not was:
            times.append(sample.t)
        was = now
    return times


def canary_figure(path: Path, samples: Sequence[_Sample], *, title: str) -> Path:
    """Top: the candidate's route weight (the step) and its observed share of model calls.
    Bottom: its error rate (failed calls / calls, 2 s windows). A red line where a gate went to ALARM."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    ts = [s.t for s in samples]
    top.step(ts, [s.weight for s in samples], where="post", label="route weight (step) %", color="tab:blue")
    top.plot(
        ts,
        [None if s.call_share is None else 100 * s.call_share for s in samples],
        ".",
        label="observed share of model calls %",
        color="tab:cyan",
    )
    top.set_ylabel("candidate traffic %")
    top.set_ylim(-5, 105)
    bottom.plot(
        ts, [None if s.error_rate is None else 100 * s.error_rate for s in samples], "-o", ms=3, color="tab:red"
    )
    bottom.set_ylabel("candidate error rate %")
    bottom.set_ylim(-5, 105)
    bottom.set_xlabel("seconds since the canary started")
    axes: list[Any] = [top, bottom]
    for t in _breach_times(samples):
        for ax in axes:
            ax.axvline(t, color="red", linestyle="--", linewidth=1)
        top.annotate("gate ALARM", (t, 95), color="red", fontsize=8, xytext=(3, 0), textcoords="offset points")
    previous: int | None = None
    for sample in samples:
        if sample.step is not None and sample.step != previous:
            top.annotate(f"{sample.step}%", (sample.t, 50), fontsize=8, color="tab:blue")
            previous = sample.step
    top.legend(loc="upper left", fontsize=8)
    top.set_title(title, fontsize=10)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
