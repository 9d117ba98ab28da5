"""PNG plots for the report (matplotlib with the Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["write_plots"]


def _pyplot() -> Any:
    import matplotlib  # noqa: PLC0415 - imported only when a report is written

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def _pii_f1(plt: Any, results: Mapping[str, Any], path: Path) -> None:
    rows = {e: r for e, r in results["pii"]["entities"].items() if r["ours"]["support"] or r["ours"]["fp"]}
    names = list(rows)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), sharey=True)
    width = 0.38
    positions = range(len(names))
    for axis, metric in zip(axes, ("precision", "recall", "f1"), strict=True):
        ours = [rows[n]["ours"][metric] or 0.0 for n in names]
        presidio = [rows[n]["presidio"][metric] or 0.0 for n in names]
        axis.bar([p - width / 2 for p in positions], ours, width, label="llmops guard", color="#2b6cb0")
        axis.bar([p + width / 2 for p in positions], presidio, width, label="Presidio (patterns)", color="#dd6b20")
        if metric == "f1":
            axis.axhline(0.95, color="#2f855a", linestyle="--", linewidth=1, label="target 0.95")
        axis.set_title(metric.upper() if metric == "f1" else metric.capitalize())
        axis.set_xticks(list(positions))
        axis.set_xticklabels(names, rotation=40, ha="right", fontsize=8)
        axis.set_ylim(0, 1.05)
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle(f"PII per entity on {results['pii']['samples']} presidio-evaluator sentences")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _injection(plt: Any, results: Mapping[str, Any], path: Path) -> None:
    injection = results["injection"]
    corpora = injection["corpora"]
    names = [*corpora, "benign (FPR)"]
    values = [corpora[n]["tpr"] or 0.0 for n in corpora] + [injection["benign"]["fpr"] or 0.0]
    colors = ["#2b6cb0"] * len(corpora) + ["#c53030"]
    fig, (bars, sweep) = plt.subplots(1, 2, figsize=(14, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    bars.bar(range(len(names)), values, color=colors)
    bars.axhline(0.90, color="#2f855a", linestyle="--", linewidth=1, label="TPR target 90%")
    bars.axhline(0.02, color="#c53030", linestyle=":", linewidth=1, label="FPR limit 2%")
    for index, value in enumerate(values):
        bars.text(index, value + 0.01, f"{value:.0%}", ha="center", fontsize=8)
    bars.set_xticks(range(len(names)))
    bars.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
    bars.set_ylim(0, 1.1)
    bars.set_title(f"At the block threshold {injection['block_threshold']}")
    bars.legend(fontsize=8)
    # Rates against the threshold show the calibration directly: where the block threshold sits
    # relative to the point where attacks are caught and benign prompts are not.
    curve = [p for p in injection["curve"] if p["threshold"] is not None]
    thresholds = [p["threshold"] for p in curve]
    sweep.step(thresholds, [p["tpr"] for p in curve], where="post", color="#2b6cb0", label="TPR, all attacks")
    sweep.step(thresholds, [p["fpr"] for p in curve], where="post", color="#c53030", label="FPR, benign")
    sweep.axvline(injection["block_threshold"], color="black", linestyle="--", linewidth=1, label="block threshold")
    operating = injection.get("operating_point")
    if operating and operating["threshold"] is not None:
        sweep.axvline(operating["threshold"], color="#2f855a", linestyle=":", linewidth=1, label="best at FPR <= 2%")
    sweep.set_xlim(0, 1)
    sweep.set_ylim(0, 1.02)
    sweep.set_xlabel("injection score threshold")
    sweep.set_ylabel("share flagged at or above")
    sweep.set_title("Threshold sweep")
    sweep.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _latency(plt: Any, results: Mapping[str, Any], path: Path) -> None:
    latency = results["latency"]
    labels = ["ours: input scan", "ours: input+output", "Presidio: one pass"]
    stats = [latency["ours"]["input_scan"], latency["ours"]["input_output_scan"], latency["presidio"]["scan"]]
    fig, axis = plt.subplots(figsize=(9, 4.5))
    for index, key in enumerate(("p50_us", "p90_us", "p99_us")):
        axis.bar(
            [i + (index - 1) * 0.27 for i in range(len(labels))],
            [s[key] for s in stats],
            0.27,
            label=key.replace("_us", ""),
        )
    axis.axhline(200, color="#2f855a", linestyle="--", linewidth=1, label="target p50 200 µs (input+output)")
    axis.set_yscale("log")
    axis.set_xticks(range(len(labels)))
    axis.set_xticklabels(labels)
    axis.set_ylabel("µs per 1 KiB document (log)")
    ratio = latency["throughput_ratio"]
    axis.set_title(f"Scan latency on {latency['documents']} x 1 KiB documents; throughput x{ratio:.1f} vs Presidio")
    axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(results: Mapping[str, Any], out_dir: Path) -> list[Path]:
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "pii_per_entity.png"]
    _pii_f1(plt, results, paths[0])
    if results.get("injection") is not None:  # absent from a PII-only run
        paths.append(out_dir / "injection.png")
        _injection(plt, results, paths[-1])
    if results.get("latency") is not None:
        paths.append(out_dir / "latency.png")
        _latency(plt, results, paths[-1])
    return paths
