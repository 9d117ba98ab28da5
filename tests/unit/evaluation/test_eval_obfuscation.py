"""The evaluation's obfuscated PII: rewrites keep gold spans on the new text, near misses hold no PII,
a PII-only results document renders and is judged without injection or latency."""

from __future__ import annotations

import random
from typing import Any

import pytest

from llmops.domain.guard.checksums import card_brand, iban_valid, luhn_valid, ssn_valid
from llmops.evaluation.metrics import EntityScore
from llmops.evaluation.obfuscation import near_miss_sentences, obfuscate_samples, obfuscate_value
from llmops.evaluation.pii_data import PiiSample, Span
from llmops.evaluation.report import render_markdown
from llmops.evaluation.run import _family_recall
from llmops.evaluation.targets import evaluate_targets


def _sample() -> PiiSample:
    text = "Ann pays 4111111111111111 from GB82WEST12345698765432, SSN 536-22-1234, mail ann.lee@example.com ok"
    values = [
        ("Ann", "PERSON"),
        ("4111111111111111", "CREDIT_CARD"),
        ("GB82WEST12345698765432", "IBAN_CODE"),
        ("536-22-1234", "US_SSN"),
        ("ann.lee@example.com", "EMAIL"),
    ]
    return PiiSample(text, tuple(Span(text.index(v), text.index(v) + len(v), t) for v, t in values))


@pytest.mark.parametrize("seed", range(12))
def test_rewritten_sentences_keep_gold_spans_on_the_rewritten_values(seed: int) -> None:
    (rewritten,) = obfuscate_samples([_sample()], seed)
    text = rewritten.sample.text
    by_type = {s.type: text[s.start : s.end] for s in rewritten.sample.spans}
    assert by_type["PERSON"] == "Ann"
    assert text.endswith(" ok")
    assert "".join(c for c in by_type["CREDIT_CARD"] if c.isdigit()) == "4111111111111111"
    assert "".join(c for c in by_type["US_SSN"] if c.isdigit()) == "536221234"
    assert "".join(c for c in by_type["IBAN_CODE"] if c.isalnum()).upper() == "GB82WEST12345698765432"
    assert by_type["EMAIL"] != "ann.lee@example.com" and "example" in by_type["EMAIL"]
    assert {s.type for s, _ in rewritten.families} == {"CREDIT_CARD", "US_SSN", "EMAIL", "IBAN_CODE"}
    assert all(text[s.start : s.end] == by_type[s.type] for s, _ in rewritten.families)


def test_sentences_without_rewritable_values_are_left_out() -> None:
    plain = PiiSample("Ann lives in Oslo", (Span(0, 3, "PERSON"), Span(13, 17, "GPE")))
    assert obfuscate_samples([plain], 1) == []


def test_every_card_family_is_drawn() -> None:
    rng = random.Random(3)
    families = {obfuscate_value("CREDIT_CARD", "378282246310005", rng)[1] for _ in range(200)}  # type: ignore[index]
    assert families == {"dots", "slashes", "underscores", "newlines", "tabs", "spaced dashes"}
    assert obfuscate_value("CREDIT_CARD", "1234", rng) is None
    assert obfuscate_value("PERSON", "Ann", rng) is None


def test_near_misses_are_deterministic_and_hold_no_valid_card_ssn_or_iban() -> None:
    sentences = near_miss_sentences(400, 42)
    assert sentences == near_miss_sentences(400, 42)
    for sentence in sentences:
        for token in sentence.replace("\n", " ").replace("\t", " ").split():
            digits = "".join(c for c in token if c.isdigit())
            if "Reference" in sentence and 12 <= len(digits) <= 19:
                assert not luhn_valid(digits)
            if "Ticket" in sentence and len(digits) == 9:
                assert not ssn_valid(digits)
        if "Wire ref" in sentence:
            compact = "".join(sentence.split("Wire ref ")[1].split(" (")[0].split()).upper()
            assert not iban_valid(compact)
        if "Reference" in sentence:
            digits = "".join(c for c in sentence if c.isdigit())
            assert card_brand(digits) == "visa" and not luhn_valid(digits)


def test_family_recall_counts_matched_gold_per_family() -> None:
    (rewritten,) = obfuscate_samples([_sample()], 0)
    card = next(s for s, _ in rewritten.families if s.type == "CREDIT_CARD")
    table = _family_recall([rewritten], [(card,)])
    (card_row,) = table["CREDIT_CARD"].values()
    assert card_row == {"support": 1, "tp": 1, "recall": 1.0}
    (ssn_row,) = table["US_SSN"].values()
    assert ssn_row["recall"] == 0.0


def _pii_only_results() -> dict[str, Any]:
    score = EntityScore("CREDIT_CARD", 9, 0, 1).to_dict()
    doc: dict[str, Any] = {
        "schema": "llmops.guardrails-eval/1",
        "generated_at": "2026-01-01T00:00:00+00:00",
        "config": {"seed": 42, "span_min_overlap": 0.5, "pii_only": True},
        "versions": {"presidio-analyzer": "2.2.366"},
        "pii": {
            "samples": 10,
            "entities": {"CREDIT_CARD": {"ours": score, "presidio": score}},
            "errors": {"ours": {}},
            "obfuscated": {
                "samples": 10,
                "entities": {
                    "CREDIT_CARD": {
                        "ours": {**score, "precision_with_negatives": 0.9},
                        "presidio": {
                            **EntityScore("CREDIT_CARD", 0, 0, 10).to_dict(),
                            "precision_with_negatives": None,
                        },
                    }
                },
                "families": {
                    "ours": {"CREDIT_CARD": {"dots": {"support": 10, "tp": 9, "recall": 0.9}}},
                    "presidio": {},
                },
                "near_misses": {
                    "sentences": 100,
                    "false_positives": {"ours": {"CREDIT_CARD": 1}, "presidio": {"CREDIT_CARD": 0}},
                },
                "benign": {"prompts": 5, "false_positives": {"ours": {"CREDIT_CARD": 0}}},
                "errors": {"ours": {"CREDIT_CARD": {"missed": ["card ⟦4111.1111⟧"], "spurious": []}}},
            },
        },
        "injection": None,
        "latency": None,
    }
    doc["targets"] = evaluate_targets(doc)
    return doc


def test_a_pii_only_run_renders_without_injection_or_latency() -> None:
    doc = _pii_only_results()
    assert [t["name"] for t in doc["targets"]] == ["PII F1 CREDIT_CARD", "PII F1 CREDIT_CARD vs Presidio"]
    markdown = render_markdown(doc)
    assert "## PII written the way people hide it" in markdown
    assert "| CREDIT_CARD | 10 | 1.000 | **0.900** | 0.947 | **0.900** | 1 | 0 | 0.000 | n/a | 0 |" in markdown
    assert "| CREDIT_CARD | dots | 10 | 0.900 | n/a |" in markdown
    assert "CREDIT_CARD missed: `card ⟦4111.1111⟧`" in markdown
    assert "## Prompt injection" not in markdown
    assert "## Latency" not in markdown
