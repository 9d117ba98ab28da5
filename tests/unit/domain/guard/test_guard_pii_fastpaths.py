"""The latency shortcuts in the PII detector give the same answers as the slow paths they replace."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
     "DLN", "license no", "born", "Birthday", "DOB", "d.o.b", "class", "tinned", "boss", " ", "-", ":", "12"]
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(_WORDS, max_size=12).map(" ".join))
def test_context_phrases_equal_finditer(text: str) -> None:
    view = TextView(text)
    for pattern, keys in _CONTEXT_RULES:
        anchored = [m.span() for m in pii._context_phrases(view, pattern, keys)]
        assert anchored == [m.span() for m in pattern.finditer(text)]
