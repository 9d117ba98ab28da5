"""The issue's targets, checked against a results document (a benchmark, not a test)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_FPR",
    "MAX_SCAN_P50_US",
    "MIN_ENTITY_F1",
    "MIN_THROUGHPUT_RATIO",
    "MIN_TPR",
    "evaluate_targets",
]

MIN_ENTITY_F1 = 0.95
MIN_TPR = 0.90
MAX_FPR = 0.02
MAX_SCAN_P50_US = 200.0
MIN_THROUGHPUT_RATIO = 20.0


def _target(name: str, target: str, measured: float | None, met: bool) -> dict[str, Any]:
    return {"name": name, "target": target, "measured": measured, "met": met}


def evaluate_targets(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []
    for entity, row in results["pii"]["entities"].items():
        ours = row["ours"]
        if not ours["support"]:
            continue  # no gold spans of this type in the generated data: nothing to claim
        f1 = ours["f1"] or 0.0
        presidio_f1 = row["presidio"]["f1"] or 0.0
        targets.append(_target(f"PII F1 {entity}", f">= {MIN_ENTITY_F1}", f1, f1 >= MIN_ENTITY_F1))
        targets.append(_target(f"PII F1 {entity} vs Presidio", f">= {presidio_f1:.3f}", f1, f1 >= presidio_f1))
    injection = results.get("injection")
    if injection is None:
        return targets  # a PII-only run (`--pii-only`) claims nothing about injection or latency
    fpr = injection["benign"]["fpr"]
    fpr_ok = fpr is not None and fpr <= MAX_FPR
    targets.append(_target("Injection FPR on benign prompts", f"<= {MAX_FPR:.0%}", fpr, fpr_ok))
    for name, corpus in injection["corpora"].items():
        tpr = corpus["tpr"]
        targets.append(_target(f"Injection TPR {name}", f">= {MIN_TPR:.0%}", tpr, tpr is not None and tpr >= MIN_TPR))
    pooled = injection["all_attacks"]["tpr"]
    targets.append(
        _target(
            "Injection TPR, all attacks",
            f">= {MIN_TPR:.0%} at <= {MAX_FPR:.0%} FPR",
            pooled,
            (pooled or 0) >= MIN_TPR and fpr_ok,
        )
    )
    latency = results.get("latency")
    if latency is None:
        return targets
    p50 = latency["ours"]["input_output_scan"]["p50_us"]
    targets.append(
        _target("1 KiB input+output scan p50 (µs)", f"<= {MAX_SCAN_P50_US:.0f}", p50, p50 <= MAX_SCAN_P50_US)
    )
    ratio = latency["throughput_ratio"]
    targets.append(
        _target(
            "Throughput vs Presidio (x)", f">= {MIN_THROUGHPUT_RATIO:.0f}", ratio, (ratio or 0) >= MIN_THROUGHPUT_RATIO
        )
    )
    return targets
