"""Comprehend DetectPiiEntities mapping and chunking, with no network."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmops.adapters.comprehend.transformation import (
    MAX_TEXT_BYTES,
    TextChunk,
    chunk_text,
    finding_type,
    findings_from_response,
    to_request,
)
from llmops.domain.guard import Finding


def test_entity_types_map_to_our_names_and_unknown_ones_pass_through() -> None:
    assert finding_type("EMAIL") == "EMAIL"
    assert finding_type("PHONE") == "PHONE_NUMBER"
    assert finding_type("NAME") == "PERSON"
    assert finding_type("ADDRESS") == "ADDRESS"
    assert finding_type("SSN") == "US_SSN"
    assert finding_type("CREDIT_DEBIT_NUMBER") == "CREDIT_CARD"
    assert finding_type("INTERNATIONAL_BANK_ACCOUNT_NUMBER") == "IBAN_CODE"
    assert finding_type("LICENSE_PLATE") == "LICENSE_PLATE"


def test_response_becomes_findings_shifted_by_the_chunk_offset() -> None:
    response = {
        "Entities": [
            {"Score": 0.99, "Type": "NAME", "BeginOffset": 11, "EndOffset": 19},
            {"Score": 0.97, "Type": "ADDRESS", "BeginOffset": 31, "EndOffset": 45},
        ]
    }
    findings = findings_from_response(response, offset=100)
    assert findings == [
        Finding("PERSON", 111, 119, 0.99, "comprehend"),
        Finding("ADDRESS", 131, 145, 0.97, "comprehend"),
    ]


def test_low_scores_missing_or_out_of_range_offsets_are_dropped() -> None:
    response = {
        "Entities": [
            {"Score": 0.2, "Type": "NAME", "BeginOffset": 0, "EndOffset": 4},
            {"Score": 0.9, "Type": "NAME"},
            {"Score": 0.9, "Type": "NAME", "BeginOffset": 5, "EndOffset": 5},
            {"Score": 0.9, "Type": "EMAIL", "BeginOffset": 3, "EndOffset": 40},
            {"Score": 0.9, "Type": "EMAIL", "BeginOffset": 0, "EndOffset": 4},
        ]
    }
    findings = findings_from_response(response, min_score=0.5, text_length=10)
    assert findings == [Finding("EMAIL", 0, 4, 0.9, "comprehend")]
    assert findings_from_response({}) == []


def test_request_shape() -> None:
    assert to_request(TextChunk(0, "hello"), "en") == {"Text": "hello", "LanguageCode": "en"}


def test_short_text_is_one_chunk_and_blank_text_none() -> None:
    assert chunk_text("call Jane on 555") == [TextChunk(0, "call Jane on 555")]
    assert chunk_text("") == []
    assert chunk_text("   \n ") == []


def test_chunks_respect_the_byte_limit_counting_multibyte_characters() -> None:
    text = ("é" * 30 + " ") * 20  # 61 bytes per 31 characters
    chunks = chunk_text(text, max_bytes=100)
    assert all(len(c.text.encode("utf-8")) <= 100 for c in chunks)
    assert "".join(c.text for c in chunks) == text
    for chunk in chunks:
        assert text[chunk.offset : chunk.offset + len(chunk.text)] == chunk.text


def test_chunks_prefer_line_breaks_then_spaces_over_cutting_words() -> None:
    text = "alpha beta gamma\ndelta epsilon zeta eta theta"
    chunks = chunk_text(text, max_bytes=24)
    assert chunks[0].text == "alpha beta gamma\n"
    assert "".join(c.text for c in chunks) == text
    for chunk in chunks[1:]:
        assert chunk.text.split()[0] in text.split()  # never starts mid-word


def test_default_limit_is_comprehends_100_kb() -> None:
    text = ("Jane Doe lives at 42 Elm Street. " * 4000)[:130_000]
    chunks = chunk_text(text)
    assert MAX_TEXT_BYTES == 100_000
    assert len(chunks) == 2
    assert all(len(c.text.encode()) <= MAX_TEXT_BYTES for c in chunks)
    assert chunks[1].offset == len(chunks[0].text)


def test_lone_surrogates_are_replaced_one_for_one() -> None:
    chunks = chunk_text("ab\ud800cd")
    assert chunks == [TextChunk(0, "ab\ufffdcd")]
    chunks[0].text.encode("utf-8")


def test_limit_must_hold_a_character() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        chunk_text("abc", max_bytes=3)


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=0, max_size=400), st.integers(min_value=4, max_value=64))
def test_chunks_tile_the_text_exactly_within_the_limit(text: str, limit: int) -> None:
    clean = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    chunks = chunk_text(text, max_bytes=limit)
    covered = 0
    for chunk in chunks:
        assert len(chunk.text.encode("utf-8")) <= limit
        assert clean[chunk.offset : chunk.offset + len(chunk.text)] == chunk.text
        assert chunk.offset >= covered
        assert clean[covered : chunk.offset].strip() == ""  # only whitespace is ever skipped
        covered = chunk.offset + len(chunk.text)
    assert clean[covered:].strip() == ""


def test_entity_types_keep_only_the_listed_types_under_the_policys_names() -> None:
    response = {
        "Entities": [
            {"Type": "NAME", "Score": 0.99, "BeginOffset": 0, "EndOffset": 4},
            {"Type": "ADDRESS", "Score": 0.99, "BeginOffset": 5, "EndOffset": 9},
        ]
    }
    findings = findings_from_response(response, entity_types={"NAME": "CUSTOMER_NAME"})
    assert [(f.type, f.start, f.end) for f in findings] == [("CUSTOMER_NAME", 0, 4)]
