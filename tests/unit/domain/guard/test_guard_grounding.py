"""Heuristic contextual grounding: obvious supported and unsupported answers land on the right side."""

from __future__ import annotations

from llmops.domain.guard.grounding import assess_grounding, stem

CONTEXT = [
    "Acme Corp was founded in 1998 by Maria Lopez in Austin, Texas. "
    "The company makes industrial sensors and employs 420 people. "
    "Its revenue in 2023 was 85 million dollars."
]


def test_supported_answer_scores_high() -> None:
    answer = "Acme Corp was founded by Maria Lopez in 1998. It employs 420 people and makes industrial sensors."
    result = assess_grounding(answer, CONTEXT, "Who founded Acme and when?")
    assert result.grounding >= 0.8
    assert result.relevance is not None and result.relevance >= 0.7


def test_invented_numbers_and_names_score_low() -> None:
    answer = "Acme Corp was founded in 2005 by John Smith in Denver. It employs 9000 people."
    result = assess_grounding(answer, CONTEXT, "Who founded Acme?")
    assert result.grounding < 0.4


def test_one_hallucinated_sentence_pulls_the_score_down() -> None:
    good = "Acme Corp makes industrial sensors. It employs 420 people. Its revenue in 2023 was 85 million dollars."
    bad = good + " It was acquired by Globex in 2021 for 3 billion dollars."
    assert assess_grounding(bad, CONTEXT).grounding < assess_grounding(good, CONTEXT).grounding - 0.25
    weakest = assess_grounding(bad, CONTEXT)
    assert bad[weakest.weakest_start : weakest.weakest_end].strip().startswith("It was acquired by Globex")


def test_relevance_direct_and_through_the_context() -> None:
    off_topic = assess_grounding("Bananas are rich in potassium.", CONTEXT, "How many people does Acme employ?")
    assert off_topic.relevance is not None and off_topic.relevance < 0.3
    terse = assess_grounding("Maria Lopez.", CONTEXT, "Who founded Acme Corp?")
    assert terse.relevance is not None and terse.relevance >= 0.5


def test_no_query_means_no_relevance_and_empty_answers_are_grounded() -> None:
    assert assess_grounding("Acme makes sensors.", CONTEXT).relevance is None
    empty = assess_grounding("Yes.", CONTEXT, "Is it?")
    assert (empty.grounding, empty.relevance) == (1.0, 1.0)


def test_stem() -> None:
    assert stem("launched") == stem("launch")
    assert stem("cities") == stem("city")
    assert stem("sensors") == stem("sensor")
    assert stem("glass") == "glass"
