"""Contextual grounding without a model: GROUNDING and RELEVANCE in [0, 1], as in Bedrock's check.

* **Grounding**: each answer sentence is scored by the share of its content words (stop words
  dropped, light suffix stemming) found in the context, halved for every number, date or proper
  name in it that the context never mentions (hallucinated specifics are what hurts). The answer's
  score blends the length-weighted mean with the weakest sentence, so one invented sentence in five
  still pulls it under a typical threshold.
* **Relevance**: how much of the query the answer addresses: the share of query content words it
  repeats (square-rooted: partial overlap is normal), or, when it answers in other words, the share
  of its content supported by the context passages that mention the query ("Paris" for "capital
  of France?" is relevant if the context says Paris is the capital).

An answer with no content words (``"Yes."``) scores 1.0 on both: there is nothing to contradict.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice

from llmops.domain.guard import safe_regex

__all__ = ["GroundingAssessment", "assess_grounding", "stem"]

# A run ended by terminators, or the run at the very end. Python's re took O(n^2) on a long line
# ending in "\n" (the run backtracked at every start): 2 s for 8 KB of output with a context.
# RE2 has no "$ before a final newline": `_sentence_spans` stops the scan before it instead.
_SENTENCE = safe_regex.compile(r"[^.!?\n]+(?:[.!?]+|\z)")
_MAX_SENTENCES = 1000
_TOKEN = safe_regex.compile_backtracking(
    r"\d+(?:[.,:/-]\d+)*%?|[^\W\d_]+(?:'[^\W\d_]+)?",
    needs="Unicode letters ([^\\W\\d_]) and throughput: one match per word, ~0.1 us each in re vs ~1 us"
    " through RE2's binding; every repetition is over a class the next item cannot match",
)
_MONTHS = frozenset(
    """january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec""".split()  # noqa: SIM905
)
_STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing done down during each either else ever few for
    from further had has have having he her here hers herself him himself his how however i if in into is
    it its itself just let like made make many may me might more most much must my myself neither no nor
    not now of off on once one only or other our ours ourselves out over own per please rather same shall
    she should so some such than that the their theirs them themselves then there these they this those
    through thus to too under until up upon us use used using very via was we were what when where which
    while who whom whose why will with within without would yes yet you your yours yourself yourselves
    according based given known also said says say here's it's that's there's what's""".split()  # noqa: SIM905
)
_SUFFIXES = ("ational", "ization", "fulness", "ousness", "iveness", "ations", "ation", "ments", "ment",
             "ingly", "ings", "ing", "edly", "ies", "ied", "ers", "er", "ed", "ly", "es", "s")  # fmt: skip


@lru_cache(maxsize=16_384)
def stem(word: str) -> str:
    """A deliberately light suffix stripper: matches 'launched' with 'launch', 'cities' with 'city'."""
    if len(word) <= 3 or word[0].isdigit():
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            if suffix in ("ies", "ied"):
                return base + "y"
            if suffix == "s" and word.endswith("ss"):
                return word
            return base
    return word


@dataclass(frozen=True, slots=True)
class GroundingAssessment:
    grounding: float
    relevance: float | None  # None when no query was given
    weakest_start: int  # span of the least supported sentence, for the finding
    weakest_end: int


@dataclass(frozen=True, slots=True)
class _Sentence:
    start: int
    end: int
    content: tuple[str, ...]  # stems of content words
    specifics: tuple[str, ...]  # numbers, dates and names, lower-cased, that must appear in the context


def _number_key(token: str) -> str:
    return token.replace(",", "")


def _sentence_matches(text: str) -> Iterator[safe_regex.Match[str]]:
    """As ``re.finditer(r"[^.!?\n]+(?:[.!?]+|$)", text)``: "$" also matches before a final newline.

    At most `_MAX_SENTENCES`: each costs ~10 us of Python, and "1.2.3.4 " repeated is three
    sentences per 8 characters. A real answer of 1000 sentences is ~100 KB of prose; grounding is a
    heuristic score (log_only by default), so past that the rest of a text is not scored.
    """
    matches = _SENTENCE.finditer(text, 0, len(text) - 1 if text.endswith("\n") else len(text))
    return islice(matches, _MAX_SENTENCES)


def _sentences(text: str) -> list[_Sentence]:
    out: list[_Sentence] = []
    for sm in _sentence_matches(text):
        content: list[str] = []
        specifics: list[str] = []
        for index, token in enumerate(_TOKEN.findall(sm.group())):
            lowered = token.lower()
            if token[0].isdigit():
                specifics.append(_number_key(token))
                content.append(_number_key(token))
                continue
            if lowered in _STOPWORDS:
                continue
            content.append(stem(lowered))
            if lowered in _MONTHS or (index > 0 and token[0].isupper()):
                specifics.append(lowered)
        if content:
            out.append(_Sentence(sm.start(), sm.end(), tuple(content), tuple(specifics)))
    return out


def _vocabulary(text: str) -> tuple[set[str], set[str]]:
    """(content stems, raw lower-cased tokens and numbers) of a text."""
    stems: set[str] = set()
    raw: set[str] = set()
    for token in _TOKEN.findall(text):
        if token[0].isdigit():
            key = _number_key(token)
            stems.add(key)
            raw.add(key)
            # "3.5%" in the context supports "3.5" in the answer and the other way round
            raw.add(key.rstrip("%"))
            continue
        lowered = token.lower()
        raw.add(lowered)
        if lowered not in _STOPWORDS:
            stems.add(stem(lowered))
    return stems, raw


def _support(sentence: _Sentence, stems: set[str], raw: set[str]) -> float:
    overlap = sum(1 for c in sentence.content if c in stems) / len(sentence.content)
    missing = sum(1 for s in sentence.specifics if s not in raw and s.rstrip("%") not in raw)
    return overlap * 0.5**missing


def assess_grounding(answer: str, context: Sequence[str], query: str = "") -> GroundingAssessment:
    sentences = _sentences(answer)
    ctx_text = "\n".join(context)
    stems, raw = _vocabulary(ctx_text)
    if not sentences:
        return GroundingAssessment(1.0, 1.0 if query else None, 0, 0)

    supports = [_support(s, stems, raw) for s in sentences]
    weights = [len(s.content) for s in sentences]
    mean = sum(w * s for w, s in zip(weights, supports, strict=True)) / sum(weights)
    weakest = min(range(len(sentences)), key=lambda i: (supports[i], i))
    grounding = 0.5 * mean + 0.5 * supports[weakest]

    relevance: float | None = None
    if query:
        relevance = _relevance(sentences, query, context)
    return GroundingAssessment(grounding, relevance, sentences[weakest].start, sentences[weakest].end)


def _relevance(sentences: list[_Sentence], query: str, context: Sequence[str]) -> float:
    query_stems, _ = _vocabulary(query)
    if not query_stems:
        return 1.0
    answer_stems = {c for s in sentences for c in s.content}
    direct = math.sqrt(len(query_stems & answer_stems) / len(query_stems))
    # Context passages (sentences) that talk about the query, and how much of the answer they back.
    relevant_stems: set[str] = set()
    for passage in context:
        for sm in _sentence_matches(passage):
            passage_stems, _ = _vocabulary(sm.group())
            if len(passage_stems & query_stems) * 2 >= min(len(query_stems), 4):
                relevant_stems |= passage_stems
    via_context = len(answer_stems & relevant_stems) / len(answer_stems) if relevant_stems else 0.0
    return min(1.0, max(direct, via_context))
