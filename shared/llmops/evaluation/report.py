"""Markdown report and results.json from a results document (see `run.run_guardrails_eval`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["render_markdown", "write_report"]


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _measured(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if value <= 1 else f"{value:.1f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def _pii_section(results: Mapping[str, Any]) -> list[str]:
    pii = results["pii"]
    rows = []
    for entity, row in pii["entities"].items():
        ours, presidio = row["ours"], row["presidio"]
        if not (ours["support"] or ours["fp"] or presidio["fp"]):
            continue
        rows.append(
            [
                entity,
                str(ours["support"]),
                _num(ours["precision"]),
                _num(ours["recall"]),
                f"**{_num(ours['f1'])}**",
                _num(presidio["precision"]),
                _num(presidio["recall"]),
                _num(presidio["f1"]),
                f"{ours['fp']} / {presidio['fp']}",
            ]
        )
    lines = [
        "## PII: per-entity precision, recall, F1",
        "",
        f"{pii['samples']} sentences from presidio-evaluator's generator (seed {results['config']['seed']}); "
        "the same texts go to both tools. A prediction counts when its type matches and the overlap covers "
        f"≥ {results['config']['span_min_overlap']:.0%} of both spans (one-to-one). Entity types with no gold "
        "span and no prediction are omitted; `n/a` means undefined (nothing predicted, or no gold).",
        "",
        *_table(
            [
                "entity",
                "gold",
                "ours P",
                "ours R",
                "ours F1",
                "Presidio P",
                "Presidio R",
                "Presidio F1",
                "FP ours / Presidio",
            ],
            rows,
        ),
        "",
        "![PII per entity](pii_per_entity.png)",
        "",
    ]
    errors = pii["errors"]["ours"]
    if errors:
        lines += ["### Our errors, by entity (synthetic data; ⟦…⟧ marks the span)", ""]
        for entity, kinds in sorted(errors.items()):
            for kind in ("missed", "spurious"):
                for example in kinds.get(kind, []):
                    lines.append(f"- {entity} {kind}: `{example}`")
        lines.append("")
    return lines


def _obfuscated_section(results: Mapping[str, Any]) -> list[str]:
    obfuscated = results["pii"].get("obfuscated")
    if not obfuscated:
        return []
    near = obfuscated["near_misses"]
    benign = obfuscated["benign"]
    rows = []
    for entity, row in obfuscated["entities"].items():
        ours, presidio = row["ours"], row["presidio"]
        rows.append(
            [
                entity,
                str(ours["support"]),
                _num(ours["precision"]),
                f"**{_num(ours['recall'])}**",
                _num(ours["f1"]),
                f"**{_num(ours['precision_with_negatives'])}**",
                str(near["false_positives"]["ours"][entity]),
                str(benign["false_positives"]["ours"][entity]),
                _num(presidio["recall"]),
                _num(presidio["precision_with_negatives"]),
                str(near["false_positives"]["presidio"][entity]),
            ]
        )
    families = []
    for entity, by_family in obfuscated["families"]["ours"].items():
        theirs = obfuscated["families"]["presidio"].get(entity, {})
        for family, row in sorted(by_family.items()):
            presidio_recall = theirs.get(family, {}).get("recall")
            families.append([entity, family, str(row["support"]), _num(row["recall"]), _num(presidio_recall)])
    lines = [
        "## PII written the way people hide it",
        "",
        f"The same sentences with every card number, SSN, e-mail address and IBAN rewritten in one "
        f"obfuscation family each ({obfuscated['samples']} sentences), plus {near['sentences']} generated "
        f"near misses (dates, versions, IPs, decimals, paths, phone numbers, checksum failures, English "
        f'"at"/"dot") and {benign["prompts"]} benign prompts. Every card, SSN, e-mail or IBAN found in '
        "a near miss or a benign prompt is a false positive; *P with negatives* counts them.",
        "",
        *_table(
            [
                "entity",
                "gold",
                "ours P",
                "ours R",
                "ours F1",
                "ours P with negatives",
                "FP near misses",
                "FP benign",
                "Presidio R",
                "Presidio P with negatives",
                "Presidio FP near misses",
            ],
            rows,
        ),
        "",
        "Recall per obfuscation family:",
        "",
        *_table(["entity", "family", "gold", "ours R", "Presidio R"], families),
        "",
    ]
    errors = obfuscated.get("errors", {}).get("ours", {})
    if errors:
        lines += ["### Our errors on obfuscated values (synthetic data; ⟦…⟧ marks the span)", ""]
        for entity, kinds in sorted(errors.items()):
            for kind in ("missed", "spurious"):
                for example in kinds.get(kind, []):
                    lines.append(f"- {entity} {kind}: `{example}`")
        lines.append("")
    return lines


def _injection_section(results: Mapping[str, Any]) -> list[str]:
    injection = results["injection"]
    rows = [
        [name, corpus["source"], str(corpus["prompts"]), f"**{_pct(corpus['tpr'])}**", _pct(corpus["tpr_at_flag"])]
        for name, corpus in injection["corpora"].items()
    ]
    pooled = injection["all_attacks"]
    rows.append(
        ["**all attacks**", "", str(pooled["prompts"]), f"**{_pct(pooled['tpr'])}**", _pct(pooled["tpr_at_flag"])]
    )
    benign = injection["benign"]
    lines = [
        "## Prompt injection and jailbreaks",
        "",
        f"Default policy: blocked at score ≥ {injection['block_threshold']}, flagged (log only) at "
        f"≥ {injection['flag_threshold']}.",
        "",
        *_table(["corpus", "source", "prompts", "TPR (block)", "TPR (flag)"], rows),
        "",
        f"Benign prompts: {benign['prompts']}; **FPR {_pct(benign['fpr'])}** at the block threshold, "
        f"{_pct(benign['fpr_at_flag'])} at the flag threshold.",
    ]
    non_attacks = injection.get("non_attacks")
    if non_attacks and non_attacks["prompts"]:
        lines.append(
            f"Plain requests that are not injections ({non_attacks['source']}): {non_attacks['prompts']}; "
            f"**FPR {_pct(non_attacks['fpr'])}** at the block threshold, "
            f"{_pct(non_attacks['fpr_at_flag'])} at the flag threshold."
        )
    split = results["config"].get("split", "all")
    if split != "all":
        lines.append(f"Split: **{split}** half of every corpus (by a hash of the prompt text).")
    operating = injection.get("operating_point")
    if operating:
        lines.append(
            f"Best operating point with FPR ≤ {operating['max_fpr']:.0%}: threshold {_num(operating['threshold'])}, "
            f"TPR {_pct(operating['tpr'])}, FPR {_pct(operating['fpr'])}."
        )
    lines += ["", "![Injection](injection.png)", ""]
    examples = [
        (name, example)
        for name, corpus in injection["corpora"].items()
        for example in corpus.get("missed_examples", [])
    ]
    if examples:
        lines += ["### Missed attacks (lowest scores first)", ""]
        lines += [f"- {name} ({e['score']}): `{e['text']}`" for name, e in examples]
        lines.append("")
    false_positives = benign.get("false_positive_examples", [])
    if false_positives:
        lines += ["### Benign prompts blocked", ""]
        lines += [f"- ({e['score']}): `{e['text']}`" for e in false_positives]
        lines.append("")
    return lines


def _latency_section(results: Mapping[str, Any]) -> list[str]:
    latency = results["latency"]
    ours = latency["ours"]
    presidio = latency["presidio"]["scan"]
    rows = [
        ["ours: input scan", *(_measured(ours["input_scan"][k]) for k in ("p50_us", "p90_us", "p99_us"))],
        [
            "ours: input + output scan",
            *(_measured(ours["input_output_scan"][k]) for k in ("p50_us", "p90_us", "p99_us")),
        ],
        [
            "Presidio: one pass of its pattern recognizers",
            *(_measured(presidio[k]) for k in ("p50_us", "p90_us", "p99_us")),
        ],
    ]
    sentences = latency["per_kib_sentences"]
    ratio = latency["throughput_ratio"]
    return [
        "## Latency",
        "",
        f"{latency['documents']} documents of exactly {latency['document_bytes']} UTF-8 bytes built from the "
        f"generated sentences; each timed {latency['repeat']}x after a warm-up, per-document median, "
        "then percentiles across documents (µs).",
        "",
        *_table(["scan", "p50 µs", "p90 µs", "p99 µs"], rows),
        "",
        f"Throughput vs Presidio: **x{_measured(ratio)}** (our input scan, which also scores injection and "
        "secrets, against one Presidio pass); input+output against two Presidio passes: "
        f"x{_measured(latency['throughput_ratio_input_output'])}.",
        "",
        f"Per KiB on the short sentences (fixed per-call costs dominate): ours p50 "
        f"{_measured(sentences['ours_input_scan']['p50_us'])} µs/KiB, Presidio p50 "
        f"{_measured(sentences['presidio_scan']['p50_us'])} µs/KiB.",
        "",
        "![Latency](latency.png)",
        "",
    ]


def render_markdown(results: Mapping[str, Any]) -> str:
    targets = results["targets"]
    target_rows = [[t["name"], t["target"], _measured(t["measured"]), "✅" if t["met"] else "❌"] for t in targets]
    versions = ", ".join(f"{k} {v}" for k, v in results["versions"].items())
    lines = [
        "# Guardrails evaluation",
        "",
        f"Generated {results['generated_at']} by `llmops eval guardrails`. Versions: {versions}.",
        "",
        "## Targets",
        "",
        f"{sum(1 for t in targets if t['met'])} of {len(targets)} met.",
        "",
        *_table(["target", "wanted", "measured", "met"], target_rows),
        "",
        *_pii_section(results),
        *_obfuscated_section(results),
        *(_injection_section(results) if results.get("injection") is not None else []),
        *(_latency_section(results) if results.get("latency") is not None else []),
    ]
    return "\n".join(lines).rstrip() + "\n"


def write_report(results: Mapping[str, Any], out_dir: Path, *, plots: bool = True) -> list[Path]:
    """Writes report.md, results.json and (unless `plots` is False) the PNG plots; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if plots:
        from llmops.evaluation.plots import write_plots  # noqa: PLC0415 - matplotlib only when needed

        written.extend(write_plots(results, out_dir))
    results_path = out_dir / "results.json"
    results_path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    report_path = out_dir / "report.md"
    report_path.write_text(render_markdown(results), encoding="utf-8")
    return [report_path, results_path, *written]
