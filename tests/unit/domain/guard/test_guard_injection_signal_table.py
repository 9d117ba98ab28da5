"""The injection signal table as data: the shipped `signals.json` loads into the signals the scorer runs,
and a malformed table is refused with a message that names the entry and the field."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from llmops.domain.guard import safe_regex
from llmops.domain.guard.injection import BIAS, SIGNALS, InjectionScorer
from llmops.domain.guard.injection.signal_table import (
    ENCODED_PAYLOAD,
    TABLE_FILE,
    SignalTableError,
    parse_signal_table,
)

PACKAGE = "llmops.domain.guard.injection"


def _shipped() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(resources.files(PACKAGE).joinpath(TABLE_FILE).read_text("utf-8"))
    return document


def _minimal(**signal: Any) -> dict[str, Any]:
    entry = {"name": "probe", "weight": 3.0, "pattern": r"probe\s+me\b", "starts": "probe"} | signal
    return {"bias": -3.6, "encoded_payload_weight": 2.5, "signals": [entry]}


def _parse(document: dict[str, Any]) -> None:
    parse_signal_table(json.dumps(document))


def test_the_shipped_table_is_what_the_scorer_runs() -> None:
    table = parse_signal_table(json.dumps(_shipped()))
    assert table.bias == BIAS
    assert [s.name for s in table.signals] == [s.name for s in SIGNALS]
    assert [s.pattern.source for s in table.signals] == [s.pattern.source for s in SIGNALS]
    assert InjectionScorer().signals == SIGNALS
    assert len(SIGNALS) >= 30


def test_every_signal_pattern_goes_through_safe_regex() -> None:
    registered = {(e.pattern, e.flags, e.needs) for e in safe_regex.registered_patterns()}
    for signal in SIGNALS:
        assert (signal.pattern.source, signal.pattern.flags, signal.pattern.needs) in registered, signal.name
        assert isinstance(signal.pattern, safe_regex.LazyPattern)


def test_a_fragment_joins_as_the_field_that_names_it_does() -> None:
    document = _minimal(pattern=["(?:", {"fragment": "verbs"}, r")\s+me\b"], starts={"fragment": "words"})
    document["fragments"] = {"verbs": ["probe", "|poke"], "words": ["probe", "poke"]}
    (signal,) = parse_signal_table(json.dumps(document)).signals
    assert signal.pattern.source == r"(?:probe|poke)\s+me\b"
    assert signal.starts == ("probe", "poke")  # joined by spaces, not run together as "probepoke"


def test_notes_document_pieces_without_changing_the_pattern() -> None:
    document = _minimal(pattern=[{"note": "why the first piece"}, "probe", {"note": "and the rest"}, r"\s+me\b"])
    (signal,) = parse_signal_table(json.dumps(document)).signals
    assert signal.pattern.source == r"probe\s+me\b"
    assert InjectionScorer(parse_signal_table(json.dumps(document)).signals).assess("probe me").signals == ("probe",)


def test_multiline_and_needs_reach_the_pattern() -> None:
    document = _minimal(pattern=r"^probe(?=\s)", multiline=True, needs="look-ahead: for this test")
    (signal,) = parse_signal_table(json.dumps(document)).signals
    assert signal.pattern.flags == safe_regex.MULTILINE
    assert signal.pattern.needs == "look-ahead: for this test"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (_minimal(requires_words="probe"), "signals[0] (probe) has unknown keys ['requires_words']"),
        (_minimal(weight=0), "signals[0] (probe).weight must be above 0"),
        (_minimal(weight="3"), "signals[0] (probe).weight must be a finite number"),
        (_minimal(pattern=[]), "signals[0] (probe).pattern must be a string or a non-empty list"),
        (_minimal(pattern=[{"note": "only a note"}]), "signals[0] (probe).pattern has no text"),
        (_minimal(pattern=[{"fragment": "absent"}]), "names fragment 'absent', which `fragments` does not define"),
        (_minimal(pattern=[{"fragment": ["x"]}]), "names fragment ['x'], which `fragments` does not define"),
        (_minimal(pattern=[{"frag": "x"}]), 'must be a string or {"fragment": name} or {"note": text}'),
        (_minimal(starts="Probe"), "'Probe' can never be a word of the text"),
        (_minimal(requires="gate-word"), "'gate-word' can never be a word of the text"),
        (_minimal(weight=2.0, pattern="x", starts="probe", family=""), "signals[0] (probe).family must be a non-empty"),
        ({"bias": -3.6, "encoded_payload_weight": 2.5, "signals": [{"weight": 1}]}, "signals[0] lacks 'name'"),
        (_minimal() | {"signals": [{"name": "probe", "weight": 1.0}]}, "signals[0] (probe) lacks 'pattern'"),
        (_minimal(phrases=["Probe"]), "'Probe' has upper-case letters but the signal is not case_sensitive"),
        (_minimal(phrases="probe"), "signals[0] (probe).phrases must be a list of non-empty strings"),
        (_minimal(case_sensitive="yes"), "signals[0] (probe).case_sensitive must be true or false"),
        (_minimal(needs=""), "signals[0] (probe).needs must be a non-empty string"),
        (_minimal(name=ENCODED_PAYLOAD), "'encoded_payload' is the scorer's own signal"),
        ({"bias": -3.6, "encoded_payload_weight": 2.5, "signals": []}, "signals must be a non-empty list"),
        ({"bias": -3.6, "signals": [{}]}, "the table lacks 'encoded_payload_weight'"),
        (_minimal() | {"bias": float("nan")}, "bias must be a finite number"),
        (_minimal() | {"extra": 1}, "unknown top-level keys ['extra']"),
        (_minimal() | {"fragments": {"unused": "x"}}, "fragments ['unused'] are defined but no signal uses them"),
        (
            _minimal() | {"fragments": {"nested": [{"fragment": "other"}]}},
            'fragments.nested[0] must be a string or {"note": text}',
        ),
    ],
)
def test_a_malformed_table_is_refused_naming_the_field(document: dict[str, Any], message: str) -> None:
    with pytest.raises(SignalTableError) as raised:
        _parse(document)
    assert message in str(raised.value)


def test_two_signals_with_one_name_are_refused() -> None:
    document = _minimal()
    document["signals"] = document["signals"] * 2
    with pytest.raises(SignalTableError, match="two signals are named 'probe'"):
        _parse(document)


def test_a_table_that_is_not_json_is_refused() -> None:
    with pytest.raises(SignalTableError, match="not JSON"):
        parse_signal_table("{bias: -3.6")
