"""The latency shortcuts in the PII detector give the same answers as the slow paths they replace."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmops.domain.guard import obfuscated_pii as obfuscated
from llmops.domain.guard import pii_detectors as pii
from llmops.domain.guard.text_view import TextView

_REGIONS = ("US", *pii._TRUNK_REGIONS, *pii._NO_TRUNK_REGIONS)


def _library_verdict(digits: str, region: str) -> bool:
    plan = pii._region_plan(region)
    assert plan is not None
    national = digits[len(plan.trunk) :] if plan.trunk and digits.startswith(plan.trunk) else digits
    if len(national) not in plan.lengths or plan.pattern.fullmatch(national) is None:
        return False
    number = phonenumbers.PhoneNumber(country_code=plan.country_code, national_number=int(national))
    if national[0] == "0":
        number.italian_leading_zero = True
        number.number_of_leading_zeros = len(national) - len(national.lstrip("0"))
    return bool(phonenumbers.is_valid_number_for_region(number, region))


@pytest.mark.parametrize("region", _REGIONS)
def test_valid_national_matches_phonenumbers(region: str) -> None:
    rng = random.Random(region)
    samples = ["".join(rng.choice("0123456789") for _ in range(rng.randint(7, 13))) for _ in range(1500)]
    for number_type in range(12):
        example = phonenumbers.example_number_for_type(region, number_type)
        if example is not None:
            samples += [str(example.national_number), "0" + str(example.national_number)]
    assert [pii._valid_national(d, region) for d in samples] == [_library_verdict(d, region) for d in samples]


_CONTEXT_RULES = (
    (pii._SSN_CONTEXT, pii._SSN_CONTEXT_KEYS),
    (pii._PASSPORT_CONTEXT, pii._PASSPORT_CONTEXT_KEYS),
    (pii._DRIVER_LICENSE_CONTEXT, pii._DRIVER_LICENSE_CONTEXT_KEYS),
    (pii._DOB_CONTEXT, pii._DOB_CONTEXT_KEYS),
)
_WORDS = st.sampled_from(
    ["SSN", "ss#", "SS no", "social  security", "TIN", "passport", "Driver's license", "driving licence", "DL",
     "DLN", "license no", "born", "Birthday", "DOB", "d.o.b", "class", "tinned", "boss", " ", "-", ":", "12",
     "xss", "_DOB", "9born", "\u00e9birth", "ADL", "-tin"]
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(_WORDS, max_size=12).map(" ".join))
def test_context_phrases_equal_finditer(text: str) -> None:
    view = TextView(text)
    for pattern, keys in _CONTEXT_RULES:
        anchored = [m.span() for m in pii._context_phrases(view, pattern, keys)]
        assert anchored == [m.span() for m in pattern.finditer(text)]


def _library_international(number: str) -> bool:
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(number, None)))
    except phonenumbers.NumberParseException:
        return False


def test_valid_international_matches_phonenumbers() -> None:
    """Wherever the shortcut answers, it answers as parse + is_valid_number: every region's example
    numbers, written with spaces, dashes or dots, their one-digit neighbours and random numbers."""
    rng = random.Random(15)
    samples: list[str] = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for number_type in range(12):
            example = phonenumbers.example_number_for_type(region, number_type)
            if example is None:
                continue
            written = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            digits = list(e164[1:])
            digits[rng.randrange(len(digits))] = rng.choice("0123456789")
            samples += [written, written.replace(" ", "-"), written.replace(" ", "."), e164, "+" + "".join(digits)]
            samples += [written + ")", e164 + ". "]
    codes = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
    for _ in range(3000):
        tail = "".join(rng.choice("0123456789 -.") for _ in range(rng.randint(2, 14)))
        samples.append(f"+{rng.choice(codes)}{tail}0" + rng.choice(("", ")", " -", ").")))
    answered = [(s, pii._valid_international(s)) for s in samples]
    assert sum(verdict is True for _, verdict in answered) > 500  # the shortcut does answer
    assert [(s, v) for s, v in answered if v is not None] == [
        (s, _library_international(s)) for s, v in answered if v is not None
    ]


_AFTER_PARTS = st.sampled_from(
    [" ", ",", ";", "(", "-", "office", "Mobile", "FAX", "home", "work", "cell", "Tel", "phone", "desk", "x", "5"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_AFTER_PARTS, max_size=8).map("".join))
def test_context_word_gate_never_hides_a_match(text: str) -> None:
    view = TextView(text)
    for index in range(len(text) + 1):
        if pii._PHONE_CONTEXT_AFTER.match(text, index) is not None:
            assert pii._context_word_may_follow(view, index), (text, index)


_NUMBER_PARTS = st.sampled_from(["4111", "22", "1234", " ", "-", "  ", ".", "/", "\t", " - "])


@settings(max_examples=300, deadline=None)
@given(st.lists(_NUMBER_PARTS, max_size=10).map("".join))
def test_plain_number_test_equals_the_separator_rule(text: str) -> None:
    shape = text.encode("ascii").translate(obfuscated._SEPARATED_SHAPE)
    for m in obfuscated._SEPARATED_NUMBER.finditer(shape):
        start, end = m.span()
        _, separators = obfuscated._groups(text, shape, start, end)
        rule = len(set(separators)) == 1 and separators[0] in (" ", "-")
        assert obfuscated._plain(text[start:end]) == rule, text[start:end]
