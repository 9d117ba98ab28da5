from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from llmops.domain.drift import InputSample, dominant_script, drift_score, jensen_shannon

ENGLISH = [
    "How do I reset my account password quickly",
    "Summarize the quarterly revenue report for finance",
    "Write a polite email declining the meeting invitation",
    "Explain the difference between invoices and receipts",
]
RUSSIAN = [
    "Как сбросить пароль от аккаунта",  # Cyrillic on purpose
    "Кратко изложи квартальный отчёт о выручке",  # noqa: RUF001
]


def window(
    texts: list[str], tokens: range, n: int = 200, guard: dict[str, int] | None = None, seed: int = 1
) -> list[InputSample]:
    rng = random.Random(seed)
    return [
        InputSample(input_tokens=rng.choice(tokens), text=rng.choice(texts), guard_findings=guard or {})
        for _ in range(n)
    ]


def test_same_distribution_scores_near_zero() -> None:
    report = drift_score(window(ENGLISH, range(20, 200), seed=1), window(ENGLISH, range(20, 200), seed=2))
    assert report.sufficient
    assert report.score < 0.1
    assert set(report.parts) == {"token_length", "script_mix", "guard_hits", "top_terms"}


def test_language_length_and_guard_shift_scores_high() -> None:
    reference = window(ENGLISH, range(20, 200))
    recent = window(RUSSIAN, range(2000, 6000), guard={"PROMPT_INJECTION": 1})
    report = drift_score(recent, reference)
    assert report.score > 0.8
    assert report.parts["script_mix"] == 1.0
    assert report.parts["guard_hits"] == 1.0
    assert report.parts["top_terms"] == 1.0


def test_each_feature_moves_on_its_own() -> None:
    reference = window(ENGLISH, range(20, 60))
    longer = drift_score(window(ENGLISH, range(3000, 4000), seed=3), reference)
    assert longer.parts["token_length"] > 0.9
    assert longer.parts["script_mix"] == 0.0
    pii = drift_score(window(ENGLISH, range(20, 60), guard={"EMAIL": 2}, seed=3), reference)
    assert pii.parts["guard_hits"] == 1.0
    assert pii.parts["token_length"] < 0.2


def test_without_text_only_length_and_guards_count() -> None:
    hashed = [InputSample(input_tokens=50) for _ in range(100)]
    report = drift_score(hashed, hashed)
    assert set(report.parts) == {"token_length", "guard_hits"}
    assert report.score == 0.0


def test_too_few_samples_is_not_a_drift_signal() -> None:
    report = drift_score(window(RUSSIAN, range(10, 20), n=5), window(ENGLISH, range(10, 20)))
    assert not report.sufficient
    assert report.score == 0.0


def test_redaction_placeholders_are_not_terms() -> None:
    reference = window(["Contact <EMAIL> about the invoice total"], range(20, 30))
    recent = window(["Contact [EMAIL_1] about the invoice total"], range(20, 30))
    assert drift_score(recent, reference).parts["top_terms"] == 0.0


def test_dominant_script() -> None:
    assert dominant_script("Hello world") == "LATIN"
    assert dominant_script("Привет, мир") == "CYRILLIC"
    assert dominant_script("こんにちは") == "HIRAGANA"
    assert dominant_script("1234 !!") == "NONE"


counts = st.dictionaries(st.sampled_from("abcdef"), st.integers(min_value=0, max_value=100), min_size=1)


@given(counts, counts)
def test_jensen_shannon_is_a_bounded_symmetric_distance(p: dict[str, int], q: dict[str, int]) -> None:
    pf = {k: float(v) for k, v in p.items()}
    qf = {k: float(v) for k, v in q.items()}
    d = jensen_shannon(pf, qf)
    assert 0.0 <= d <= 1.0
    assert abs(d - jensen_shannon(qf, pf)) < 1e-9
    if sum(pf.values()) > 0:
        assert jensen_shannon(pf, pf) < 1e-6
