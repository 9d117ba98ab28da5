"""PNG figures for the report (matplotlib, headless Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display on CI or in a container

import matplotlib.pyplot as plt

__all__ = ["cdf_plot", "grouped_bars", "stacked_bars", "time_series"]

_DPI = 110


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path


def cdf_plot(path: Path, series: Mapping[str, Sequence[float]], *, title: str, xlabel: str, log_x: bool = True) -> Path:
    """Empirical CDF of each series: where the median and the tail sit, at a glance."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, values in series.items():
        ordered = sorted(v for v in values if v > 0 or not log_x)
        if not ordered:
            continue
        ys = [(i + 1) / len(ordered) for i in range(len(ordered))]
        ax.step(ordered, ys, where="post", label=label)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of requests")
    ax.set_ylim(0, 1.01)
    ax.axhline(0.99, color="grey", linewidth=0.6, linestyle=":")
    ax.axhline(0.5, color="grey", linewidth=0.6, linestyle=":")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)


def grouped_bars(
    path: Path,
    categories: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    title: str,
    ylabel: str,
    log_y: bool = False,
    annotate: bool = True,
) -> Path:
    """One group of bars per category (e.g. concurrency level), one bar per series (e.g. gateway)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    count = max(1, len(series))
    width = 0.8 / count
    for index, (label, values) in enumerate(series.items()):
        xs = [c + (index - (count - 1) / 2) * width for c in range(len(categories))]
        heights = [v if v is not None else 0.0 for v in values]
        bars = ax.bar(xs, heights, width=width, label=label)
        if annotate:
            for bar, value in zip(bars, values, strict=True):
                text = "n/a" if value is None else (f"{value:.1f}" if value >= 10 else f"{value:.2f}")
                ax.annotate(
                    text,
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    ax.set_xticks(range(len(categories)), list(categories))
    if log_y:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)


def stacked_bars(
    path: Path, bars: Mapping[str, Mapping[str, float]], *, title: str, ylabel: str, horizontal: bool = True
) -> Path:
    """One bar per key of `bars`, split into its parts (e.g. time per pipeline stage)."""
    parts: list[str] = []
    for segments in bars.values():
        parts.extend(p for p in segments if p not in parts)
    fig, ax = plt.subplots(figsize=(11, 1.6 + 0.7 * max(1, len(bars))))
    labels = list(bars)
    offsets = [0.0] * len(labels)
    for part in parts:
        values = [bars[label].get(part, 0.0) for label in labels]
        if horizontal:
            ax.barh(labels, values, left=offsets, label=part)
        else:
            ax.bar(labels, values, bottom=offsets, label=part)
        offsets = [o + v for o, v in zip(offsets, values, strict=True)]
    if horizontal:
        ax.set_xlabel(ylabel)
        ax.invert_yaxis()
    else:
        ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, axis="x" if horizontal else "y", alpha=0.3)
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, path)


def time_series(
    path: Path,
    xs: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    trend: tuple[float, float] | None = None,  # (slope, intercept) drawn as a dashed line
    secondary: tuple[str, Sequence[float]] | None = None,  # (label, values) on a right-hand axis
) -> Path:
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for label, values in series.items():
        ax.plot(xs, values, label=label, linewidth=1.2)
    if trend is not None and xs:
        slope, intercept = trend
        ax.plot([xs[0], xs[-1]], [intercept + slope * xs[0], intercept + slope * xs[-1]], "k--", label="trend")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if secondary is not None:
        right = ax.twinx()
        (line,) = right.plot(xs, secondary[1], color="tab:gray", linewidth=0.8, alpha=0.7)
        right.set_ylabel(secondary[0])
        handles.append(line)
        labels.append(secondary[0])
    ax.legend(handles, labels, fontsize="small", loc="upper left")
    return _save(fig, path)
