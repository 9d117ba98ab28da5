"""PII detectors: positives, and the near-misses that checksums and context must reject."""

from __future__ import annotations

import pytest

from llmops.domain.guard import FindingType
from llmops.domain.guard.checksums import iban_valid, luhn_valid, nhs_valid, ssn_valid
from llmops.domain.guard.pii_detectors import PiiDetector
from llmops.domain.guard.redaction import resolve_overlaps

DETECTOR = PiiDetector()


def spans(text: str, finding_type: str) -> list[str]:
    """What the pipeline keeps of one type: detections after overlap resolution."""
    return [text[f.start : f.end] for f in resolve_overlaps(DETECTOR.detect(text)) if f.type == finding_type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to john.doe+tag@mail.example.co.uk today", "john.doe+tag@mail.example.co.uk"),
        ("contact: a_b@sub-domain.io.", "a_b@sub-domain.io"),
    ],
)
def test_email_found(text: str, expected: str) -> None:
    assert spans(text, FindingType.EMAIL) == [expected]


@pytest.mark.parametrize("text", ["no at sign here", "user@localhost", "@handle on twitter", "a@b"])
def test_email_not_found(text: str) -> None:
    assert spans(text, FindingType.EMAIL) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call (415) 555-2671 now", "(415) 555-2671"),
        ("intl +44 20 7946 0958.", "+44 20 7946 0958"),
        ("paris +33 1 42 68 53 00", "+33 1 42 68 53 00"),
        ("office 212-555-0123", "212-555-0123"),
    ],
)
def test_phone_found(text: str, expected: str) -> None:
    assert spans(text, FindingType.PHONE_NUMBER) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # numbers other countries dial with a trunk "0", valid there though not in the US
        ("ring 07700 316 475 after six", "07700 316 475"),
        ("Phone: 06-82237745", "06-82237745"),
        ("my number is (07700)553419", "(07700)553419"),
        # no trunk prefix and not valid in the US: a phone only next to a phone word
        ("Mobile: 730 064 218", "730 064 218"),
        ("call me at 96 466712", "96 466712"),
        ("9380 6377 office", "9380 6377"),
        # US-shaped with an unassigned area code: a phone when the text says so (was UK_NHS)
        ("call me at 196-655-3307", "196-655-3307"),
        ("fax 042 507 6350", "042 507 6350"),
        ("call (123) 456-7890", "(123) 456-7890"),
        ("dial 555-0100", "555-0100"),
        # an explicit country code written in groups is a phone even if unassigned
        ("+41 (0)39 471 36 93", "+41 (0)39 471 36 93"),
        # a literal "\n" from pasted JSON does not hide the context word
        ("Name: Ann\\nPhone: 250-889-4404", "250-889-4404"),
    ],
)
def test_phone_found_by_region_or_context(text: str, expected: str) -> None:
    assert spans(text, FindingType.PHONE_NUMBER) == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "ref (123) 456-7890",  # no phone word, and not a valid US number
        "ticket 555-0100",
        "in 2024 we sold 1500 units",
        "the order 730 064 218 shipped",  # no trunk prefix, no phone word
        "version 1.2.3 released on 2024-05-06",
        "pi is 3.14159265",
        "coordinates 48.8566, 2.3522",
    ],
)
def test_phone_not_found(text: str) -> None:
    assert spans(text, FindingType.PHONE_NUMBER) == []


def test_us_shaped_number_next_to_a_phone_word_is_a_phone_not_nhs() -> None:
    text = "They're not answering at 041 728 9898"
    found = resolve_overlaps(DETECTOR.detect(text))
    assert [(f.type, text[f.start : f.end]) for f in found] == [(FindingType.PHONE_NUMBER, "041 728 9898")]


@pytest.mark.parametrize(
    "number",
    ["4111111111111111", "4111 1111 1111 1111", "5500-0000-0000-0004", "3400 000000 00009", "6011000000000004"],
)
def test_credit_card_found(number: str) -> None:
    assert spans(f"card {number} exp", FindingType.CREDIT_CARD) == [number]


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111112",  # Luhn fails
        "4111 1111-1111 1111",  # mixed separators
        "41111111111111111111111",  # too long
    ],
)
def test_credit_card_rejected(number: str) -> None:
    assert spans(f"card {number} exp", FindingType.CREDIT_CARD) == []


@pytest.mark.parametrize(
    "number",
    [
        "180010512807430",  # JCB's original 15-digit 1800 range
        "213108102842030",  # and 2131
    ],
)
def test_legacy_jcb_ranges_are_cards_without_context(number: str) -> None:
    assert spans(f"ref {number} exp", FindingType.CREDIT_CARD) == [number]


@pytest.mark.parametrize("context", ["my card", "cc", "credit card number is", "Please block card no"])
def test_luhn_valid_number_outside_known_ranges_is_a_card_in_card_context(context: str) -> None:
    # 1234567812345670 passes Luhn but no scheme's IIN range: only the context makes it a card
    assert spans(f"{context} 1234567812345670 today", FindingType.CREDIT_CARD) == ["1234567812345670"]


@pytest.mark.parametrize("text", ["ref 1234567812345670 today", "tracking 1234567812345671 card"])
def test_luhn_valid_number_outside_known_ranges_needs_context(text: str) -> None:
    assert spans(text, FindingType.CREDIT_CARD) == []


def test_credit_card_with_trailing_number_keeps_the_card() -> None:
    assert spans("pay 4111 1111 1111 1111 2031 ok", FindingType.CREDIT_CARD) == ["4111 1111 1111 1111"]


def test_luhn() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


@pytest.mark.parametrize("ssn", ["536-22-1234", "536 22 1234"])
def test_ssn_found(ssn: str) -> None:
    assert spans(f"ssn {ssn}.", FindingType.US_SSN) == [ssn]


@pytest.mark.parametrize(
    "ssn", ["000-12-3456", "666-12-3456", "912-34-5678", "536-00-1234", "536-22-0000", "078-05-1120", "123-45-6789"]
)
def test_ssn_invalid_rules(ssn: str) -> None:
    assert spans(f"ssn {ssn}.", FindingType.US_SSN) == []
    assert not ssn_valid(ssn.replace("-", ""))


def test_ssn_without_dashes_needs_context() -> None:
    assert spans("my SSN is 536221234", FindingType.US_SSN) == ["536221234"]
    assert spans("order 536221234 shipped", FindingType.US_SSN) == []


def test_ssn_mixed_separators() -> None:
    # Issue 11: "536-22 1234" is how people type it, so a dash and a space together count; other mixes do not.
    assert spans("id 536-22 1234", FindingType.US_SSN) == ["536-22 1234"]
    assert spans("id 536-22.1234", FindingType.US_SSN) == []
    assert spans("id 536/22.1234", FindingType.US_SSN) == []


@pytest.mark.parametrize(
    "iban",
    ["GB82WEST12345698765432", "GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "FR1420041010050500013M02606"],
)
def test_iban_found(iban: str) -> None:
    assert spans(f"pay to {iban} please", FindingType.IBAN_CODE) == [iban]


@pytest.mark.parametrize(
    "iban",
    ["GB82WEST12345698765433", "GB82WEST1234569876543", "XX82WEST12345698765432", "DE89370400440532013000A"],
)
def test_iban_rejected(iban: str) -> None:
    assert spans(f"pay to {iban} please", FindingType.IBAN_CODE) == []


def test_iban_cut_at_country_length() -> None:
    assert spans("DE89 3704 0044 0532 0130 00 EUR", FindingType.IBAN_CODE) == ["DE89 3704 0044 0532 0130 00"]
    assert iban_valid("DE89370400440532013000")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("host 192.168.1.20 down", ["192.168.1.20"]),
        ("v6 2001:db8::1 up", ["2001:db8::1"]),
        ("link fe80::1ff:fe23:4567:890a%eth0 ok", ["fe80::1ff:fe23:4567:890a%eth0"]),
        ("loopback ::1", ["::1"]),
        ("mapped ::ffff:192.0.2.128 here", ["::ffff:192.0.2.128"]),
    ],
)
def test_ip_found(text: str, expected: list[str]) -> None:
    assert spans(text, FindingType.IP_ADDRESS) == expected


@pytest.mark.parametrize(
    "text", ["bad 256.1.1.1", "version 1.2.3.4.5", "at 12:30:45 sharp", "std::vector<int>", "ratio 3:2:1"]
)
def test_ip_rejected(text: str) -> None:
    assert spans(text, FindingType.IP_ADDRESS) == []


@pytest.mark.parametrize("mac", ["00:1A:2B:3C:4D:5E", "00-1a-2b-3c-4d-5e"])
def test_mac_found(mac: str) -> None:
    assert spans(f"nic {mac} up", FindingType.MAC_ADDRESS) == [mac]


def test_mac_rejected() -> None:
    assert spans("nic 00:1A:2B:3C:4D up", FindingType.MAC_ADDRESS) == []
    assert spans("well-known up-to-date state-of-the-art", FindingType.MAC_ADDRESS) == []


def test_passport_needs_context() -> None:
    assert spans("My passport number is 123456789.", FindingType.US_PASSPORT) == ["123456789"]
    assert spans("A12345678 is my passport", FindingType.US_PASSPORT) == ["A12345678"]
    assert spans("Invoice 123456789 is overdue.", FindingType.US_PASSPORT) == []


def test_driver_license_needs_context() -> None:
    assert spans("driver's license D1234567, thanks", FindingType.US_DRIVER_LICENSE) == ["D1234567"]
    assert spans("DL: 99887766", FindingType.US_DRIVER_LICENSE) == ["99887766"]
    assert spans("ticket D1234567 closed", FindingType.US_DRIVER_LICENSE) == []


@pytest.mark.parametrize("value", ["w983996634", "Ab-12345678", "d1234567"])
def test_driver_license_in_lower_or_mixed_case(value: str) -> None:
    assert spans(f"My driver's license number is {value}", FindingType.US_DRIVER_LICENSE) == [value]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I was born on 3 March 1985.", "3 March 1985"),
        ("DOB: 04/07/1990", "04/07/1990"),
        ("date of birth 1990-07-04", "1990-07-04"),
        ("born January 5th, 1970 in Ohio", "January 5th, 1970"),
    ],
)
def test_date_of_birth_found(text: str, expected: str) -> None:
    assert spans(text, FindingType.DATE_OF_BIRTH) == [expected]


def test_date_without_birth_context_is_not_dob() -> None:
    assert spans("The meeting is on 3 March 1985.", FindingType.DATE_OF_BIRTH) == []


@pytest.mark.parametrize("nino", ["AB 12 34 56 C", "AB123456C", "JG103759A"])
def test_uk_nino_found(nino: str) -> None:
    assert spans(f"NI {nino} ok", FindingType.UK_NINO) == [nino]


@pytest.mark.parametrize("nino", ["QQ 12 34 56 C", "BG123456A", "GB123456A", "AO123456A", "AB123456E", "DA123456A"])
def test_uk_nino_prefix_and_suffix_rules(nino: str) -> None:
    assert spans(f"NI {nino} ok", FindingType.UK_NINO) == []


def test_uk_nhs_mod11() -> None:
    assert nhs_valid("9434765919")
    assert not nhs_valid("9434765918")
    assert spans("NHS number 943 476 5919", FindingType.UK_NHS) == ["943 476 5919"]
    assert spans("NHS number 943 476 5918", FindingType.UK_NHS) == []


def test_uk_nhs_context_raises_score() -> None:
    with_context = [f for f in DETECTOR.detect("NHS 943 476 5919") if f.type == FindingType.UK_NHS]
    without = [f for f in DETECTOR.detect("ref 943 476 5919") if f.type == FindingType.UK_NHS]
    assert with_context[0].score > without[0].score


def test_fullwidth_digits_are_folded_before_detection() -> None:
    from llmops.domain.guard import GuardEngine

    text = "card " + "".join(chr(0xFF10 + int(d)) for d in "4111111111111111") + " ok"  # fullwidth digits
    result = GuardEngine().scan(text, "input")
    assert [f.type for f in result.findings] == [FindingType.CREDIT_CARD]
    assert result.redacted_text == "card [CREDIT_CARD_1] ok"
