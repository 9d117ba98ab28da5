"""PII written the way people hide it (issue 11): found in both directions, at the original offsets,
redacted exactly; and the near misses (dates, versions, paths, tables, English) left alone."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from llmops.domain.guard import Direction, FindingType, GuardEngine
from llmops.domain.guard.checksums import IBAN_LENGTHS, card_brand, iban_valid, luhn_valid, ssn_valid
from llmops.domain.guard.obfuscated_pii import obfuscated_pii
from llmops.domain.guard.text_view import TextView

ENGINE = GuardEngine()
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def found(text: str, finding_type: str, direction: Direction = Direction.INPUT) -> list[str]:
    """The spans of `finding_type` the engine reports, cut from the text it was given."""
    result = ENGINE.scan(text, direction)
    return [text[f.start : f.end] for f in result.findings if f.type == finding_type]


CARDS = [
    "4111.1111.1111.1111",
    "4111/1111/1111/1111",
    "4111_1111_1111_1111",
    "4111\n1111\n1111\n1111",
    "4111\r\n1111\r\n1111\r\n1111",
    "4111\t1111\t1111\t1111",
    "4111 - 1111 - 1111 - 1111",
    "4111 . 1111 . 1111 . 1111",
    "3782.822463.10005",  # Amex, 4-6-5
    "5555/5555/5555/4444",
]
SSNS = ["536.22.1234", "536/22/1234", "536-22 1234", "536 22-1234", "536_22_1234", "536 . 22 . 1234"]
EMAILS = [
    "john.doe [at] example [dot] com",
    "john.doe[at]example[dot]com",
    "john.doe (at) example (dot) com",
    "john.doe {at} example {dot} co {dot} uk",
    "john.doe <at> example <dot> org",
    "John.Doe [AT] Example [DOT] Com",
    "john.doe [ at ] example [ dot ] com",
    "john.doe [@] example [.] com",
    "john.doe@example[.]com",
    "john.doe@example(dot)com",
    "john . doe @ example . com",
    "john.doe @ example.com",
    "john [dot] doe [at] example [dot] com",
    "john.doe [at] example dot com",
    "john.doe at example dot com",
    "jdoe42 at gmail dot com",
    "j_doe at example.com",
]
IBANS = [
    "gb82 west 1234 5698 7654 32",
    "gb82west12345698765432",
    "GB82-WEST-1234-5698-7654-32",
    "gb82-west-1234-5698-7654-32",
    "Gb82 West 1234 5698 7654 32",
    "de89-3704-0044-0532-0130-00",
]


@pytest.mark.parametrize("direction", [Direction.INPUT, Direction.OUTPUT])
@pytest.mark.parametrize(
    ("finding_type", "value"),
    [(FindingType.CREDIT_CARD, v) for v in CARDS]
    + [(FindingType.US_SSN, v) for v in SSNS]
    + [(FindingType.EMAIL, v) for v in EMAILS]
    + [(FindingType.IBAN_CODE, v) for v in IBANS],
)
def test_obfuscated_value_found_and_redacted_exactly(finding_type: str, value: str, direction: Direction) -> None:
    text = f"Here it is: {value}. Thanks"
    result = ENGINE.scan(text, direction)
    findings = [f for f in result.findings if f.type == finding_type]
    assert [(f.start, f.end) for f in findings] == [(12, 12 + len(value))]
    assert result.redacted_text == f"Here it is: [{finding_type}_1]. Thanks"


def test_the_issues_output_examples_are_redacted() -> None:
    card = ENGINE.guard_output("The card on file is 4111.1111.1111.1111.")
    ssn = ENGINE.guard_output("SSN 536/22/1234")
    assert card.text == "The card on file is [CREDIT_CARD_1]."
    assert ssn.text == "SSN [US_SSN_1]"


def test_input_verdict_sends_no_obfuscated_value_upstream() -> None:
    verdict = ENGINE.guard_input(["card 4111/1111/1111/1111", "mail me: jane.roe [at] corp [dot] io"])
    assert verdict.texts == ("card [CREDIT_CARD_1]", "mail me: [EMAIL_1]")


def test_offsets_are_into_the_original_text_after_normalization() -> None:
    # Full-width digits and a zero-width space fold away for detection; offsets stay the caller's.
    text = "pay \u200b\uff14111.1111.1111.1111 now"
    result = ENGINE.scan(text, Direction.INPUT)
    (card,) = [f for f in result.findings if f.type == FindingType.CREDIT_CARD]
    assert text[card.start : card.end] == "\uff14111.1111.1111.1111"
    assert result.redacted_text == "pay \u200b[CREDIT_CARD_1] now"


def test_obfuscated_email_with_fullwidth_at_sign() -> None:
    text = "write john.doe\uff20example [dot] com"
    assert found(text, FindingType.EMAIL) == ["john.doe\uff20example [dot] com"]


@pytest.mark.parametrize(
    "text",
    [
        "released 2024.01.15 and 2024/01/15",
        "version 1.2.3.4 and build 10.0.19045.3803",
        "host 192.168.100.200 is up",
        "pi is 3.14159265358979 and e 2.718281828459045",
        "logs under /usr/1234/5678 and /var/4111/1111/1111/1111/app.log",
        "C:\\data\\4111\\1111\\1111\\1111\\x.txt",
        "call 555.123.4567 or 555/123/4567",
        "ticket 4111.1111.1111.1112 is closed",  # Luhn fails
        "ref 1234.5678.9012.3456",  # Luhn passes, no card scheme starts with 1
        "sub.4111.1111.1111.1111",  # a dotted name continues the run
        "4111.1111.1111.1111.2222 is a longer number",
        "totals:\n4111\n1111\n1111\n1111\n2222",  # a column of five numbers, not a card
        "job 000.12.3456 and 666/12/3456 and 912.34.5678 and 536.00.1234",  # SSA rules
        "mixed 536-22.1234 and 536/22.1234",
        "ids 536\n22\n1234 and 536\t22\t1234",  # three short numbers in a column are a table
        "order 1234/56/7890 and 53/622/1234",
        "gb82 west 1234 5698 7654 33 (check digits fail)",
        "gb82-west-1234-5698-7654-32-99 is a longer code",
        "gb82 west-1234 5698-7654 32 mixes separators",
    ],
)
def test_near_misses_are_not_cards_ssns_or_ibans(text: str) -> None:
    for finding_type in (FindingType.CREDIT_CARD, FindingType.US_SSN, FindingType.IBAN_CODE):
        assert found(text, finding_type) == [], finding_type
        assert found(text, finding_type, Direction.OUTPUT) == [], finding_type


@pytest.mark.parametrize(
    "text",
    [
        "look at example dot com for details",  # a bare "at" after an English word
        "we met at noon dot com was down",
        "the state-of-the-art at google dot com",
        "compute the dot product at each step",
        "ping @ team . leads",  # not a top-level domain
        "price @ 5.00 each",
        "e.g. at example dot com",
        "tag [at] the [dot] end",  # no top-level domain after the last dot
        "user@localhost",
        "@handle on twitter",
    ],
)
def test_english_at_and_dot_are_not_emails(text: str) -> None:
    assert found(text, FindingType.EMAIL) == []


def test_plain_forms_are_left_to_the_plain_detectors() -> None:
    # One finding each, from pii_detectors, not a second one from the obfuscation pass.
    text = "4111 1111 1111 1111, 536-22-1234, john@example.com, GB82 WEST 1234 5698 7654 32"
    assert obfuscated_pii(TextView(text)) == []
    assert len(ENGINE.scan(text, Direction.INPUT).findings) == 4


def test_two_obfuscated_emails_in_a_row() -> None:
    text = "a.b [at] x [dot] com, c.d (at) y (dot) org"
    assert found(text, FindingType.EMAIL) == ["a.b [at] x [dot] com", "c.d (at) y (dot) org"]


# -- properties ---------------------------------------------------------------------------------

CARD_SEPARATORS = [".", "/", "_", "\\", "\t", "\n", "\r\n", " . ", " / ", " - ", " _ "]
SSN_SEPARATOR_PAIRS = [(".", "."), ("/", "/"), ("_", "_"), (" . ", " . "), ("-", " "), (" ", "-")]


def _with_check_digit(body: str) -> str:
    return next(body + d for d in string.digits if luhn_valid(body + d))


@st.composite
def visa_numbers(draw: st.DrawFn) -> str:
    body = "4" + draw(st.text(string.digits, min_size=14, max_size=14))
    return _with_check_digit(body)


@given(number=visa_numbers(), separator=st.sampled_from(CARD_SEPARATORS), direction=st.sampled_from(Direction))
@PROPERTY_SETTINGS
def test_property_valid_card_with_any_obfuscation_separator_is_found(
    number: str, separator: str, direction: Direction
) -> None:
    written = separator.join(number[i : i + 4] for i in range(0, 16, 4))
    text = f"my card: {written}, thanks"
    result = ENGINE.scan(text, direction)
    assert [text[f.start : f.end] for f in result.findings if f.type == FindingType.CREDIT_CARD] == [written]
    assert number[-4:] not in result.redacted_text


@st.composite
def valid_ssns(draw: st.DrawFn) -> str:
    area = draw(st.integers(1, 899).filter(lambda a: a != 666))
    ssn = f"{area:03d}{draw(st.integers(1, 99)):02d}{draw(st.integers(1, 9999)):04d}"
    return ssn if ssn_valid(ssn) else "536221234"


@given(ssn=valid_ssns(), pair=st.sampled_from(SSN_SEPARATOR_PAIRS), direction=st.sampled_from(Direction))
@PROPERTY_SETTINGS
def test_property_valid_ssn_with_any_obfuscation_separator_is_found(
    ssn: str, pair: tuple[str, str], direction: Direction
) -> None:
    written = f"{ssn[:3]}{pair[0]}{ssn[3:5]}{pair[1]}{ssn[5:]}"
    text = f"SSN {written} on file"
    assert found(text, FindingType.US_SSN, direction) == [written]


@st.composite
def ibans(draw: st.DrawFn) -> str:
    country = draw(st.sampled_from(["GB", "DE", "FR", "NL", "ES", "IT", "CH"]))
    body = draw(st.text(string.digits, min_size=IBAN_LENGTHS[country] - 4, max_size=IBAN_LENGTHS[country] - 4))
    return next(f"{country}{c:02d}{body}" for c in range(2, 99) if iban_valid(f"{country}{c:02d}{body}"))


@given(iban=ibans(), separator=st.sampled_from([" ", "-", ""]), lower=st.booleans())
@PROPERTY_SETTINGS
def test_property_valid_iban_lower_case_or_dashed_is_found(iban: str, separator: str, lower: bool) -> None:
    written = separator.join(iban[i : i + 4] for i in range(0, len(iban), 4))
    written = written.lower() if lower or separator != "-" else written
    text = f"wire to {written} today"
    assert found(text, FindingType.IBAN_CODE) == [written]


@st.composite
def benign_separated_numbers(draw: st.DrawFn) -> str:
    """Dotted / slashed digit groups whose digits fail every checksum that would make them PII."""
    groups = draw(st.lists(st.text(string.digits, min_size=1, max_size=6), min_size=2, max_size=6))
    digits = "".join(groups)
    assume(not (12 <= len(digits) <= 19 and luhn_valid(digits) and card_brand(digits)))
    assume(not (len(groups) == 3 and [len(g) for g in groups] == [3, 2, 4] and ssn_valid(digits)))
    return draw(st.sampled_from(CARD_SEPARATORS)).join(groups)


@given(number=benign_separated_numbers(), direction=st.sampled_from(Direction))
@PROPERTY_SETTINGS
def test_property_benign_separated_numbers_are_not_cards_or_ssns(number: str, direction: Direction) -> None:
    text = f"value {number} end"
    assert found(text, FindingType.CREDIT_CARD, direction) == []
    assert found(text, FindingType.US_SSN, direction) == []
