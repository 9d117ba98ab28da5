"""Pattern PII: formats validated by check digits, validity rules or nearby context words.

Numbers that are ambiguous on their own (9-digit passports, driver licences, bare 9-digit SSNs,
dates) are only reported next to a context phrase: the candidate must start within a few words
after the phrase ("passport no. 123456789") or end just before it ("123456789 is my passport").
Phone numbers go through `phonenumbers` (imported on first use: it costs ~50 ms to import).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from typing import Any, Final, NamedTuple

from llmops.domain.guard import safe_regex
from llmops.domain.guard.checksums import (
    IBAN_LENGTHS,
    card_brand,
    iban_valid,
    luhn_valid,
    nhs_valid,
    ssn_valid,
)
from llmops.domain.guard.findings import Finding, FindingType
from llmops.domain.guard.obfuscated_pii import obfuscated_pii
from llmops.domain.guard.text_view import TextView, find_all

__all__ = ["PiiDetector"]

_PATTERN: Final = "pii.pattern"
_CHECKSUM: Final = "pii.checksum"
_CONTEXT: Final = "pii.context"
_PHONENUMBERS: Final = "pii.phonenumbers"

# Every pattern here runs on RE2 (linear time) through `safe_regex`; look-arounds are its emulated
# not_preceded_by / not_followed_by / followed_by, backreferences became alternations.
_EMAIL = safe_regex.compile(
    r"[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,63}",
    not_preceded_by="A-Za-z0-9._%+-",
    not_followed_by="A-Za-z0-9-",
)
_EMAIL_LOCAL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")
_CARD = safe_regex.compile(r"\d(?:[ -]?\d){11,22}", not_preceded_by=r"\d.-", not_followed_by=r"\d")
_CARD_CONTEXT = safe_regex.compile(
    r"\b(?:card|cards|cc|credit|debit|visa|mastercard|amex|jcb|maestro|discover|diners|unionpay|pan)\b"
    r"[^\n\d]{0,30}$",
    safe_regex.IGNORECASE,
)
_CARD_CONTEXT_CHARS = 50
# "536-22-1234" or "536 22 1234": the same separator twice
_SSN_FORMATTED = safe_regex.compile(
    r"\d{3}-\d{2}-\d{4}|\d{3} \d{2} \d{4}", not_preceded_by=r"\d-", followed_by=r"\z|[^\d.-]|\.(?:\z|\D)"
)
_SSN_SHAPES: Final = (b"000-00-0000", b"000 00 0000")  # what `_SSN_FORMATTED` matches, digits as "0"
_DIGITS_AS_ZERO: Final = bytes.maketrans(b"0123456789", b"0" * 10)
_DIGITS: Final = frozenset("0123456789")  # RE2's \d
_NINE_DIGITS = safe_regex.compile(r"\d{9}", not_preceded_by=r"\d-", not_followed_by=r"\d-")
_SSN_CONTEXT = safe_regex.compile(
    r"\bssn\b|social\s+security|\bss\s?#|\bss\s+(?:no|number)\b|\btin\b", safe_regex.IGNORECASE
)
_SSN_CONTEXT_KEYS: Final = ("\\bss", "social", "\\btin")
_IBAN = safe_regex.compile(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,34}", not_preceded_by="A-Za-z0-9")
_IPV4 = safe_regex.compile(r"(?:\d{1,3}\.){3}\d{1,3}", not_preceded_by=r"\w.", followed_by=r"\z|[^\w.]|\.(?:\z|\D)")
# Python's version had a look-ahead "(?=[0-9A-Fa-f:]*[0-9A-Fa-f])": with the end guard it only ever
# ruled out matches without a hex digit, which `_colon_hex` now skips.
_IPV6 = safe_regex.compile(
    r"(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?:%[0-9A-Za-z]{1,16})?",
    not_preceded_by=r"\w:.",
    followed_by=r"\z|[^\w:.]|\.(?:\z|\D)",
)
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
# six hex pairs joined by one separator, ":" or "-", the same throughout
_MAC = safe_regex.compile(
    r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){5}",
    not_preceded_by=r"\w:-",
    not_followed_by=r"\w:-",
)
_PASSPORT = safe_regex.compile(r"[A-Z]\d{8}|\d{9}", not_preceded_by="A-Za-z0-9", not_followed_by="A-Za-z0-9")
_PASSPORT_CONTEXT = safe_regex.compile(r"passport", safe_regex.IGNORECASE)
_PASSPORT_CONTEXT_KEYS: Final = ("passport",)
_ASCII_WORD_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")  # RE2's \w
_DRIVER_LICENSE = safe_regex.compile(
    r"(?:[A-Za-z]{1,2}-?)?\d(?:-?\d){4,15}(?:-?[A-Z]{1,2})?",
    not_preceded_by="A-Za-z0-9*-",
    not_followed_by="A-Za-z0-9*-",
)
_DRIVER_LICENSE_CONTEXT = safe_regex.compile(
    r"driver'?s?[\s-]{0,3}licen[cs]es?|driving\s+licen[cs]es?|\bDLN?\b|licen[cs]e\s*(?:no\b|number|#)",
    safe_regex.IGNORECASE,
)
_DRIVER_LICENSE_CONTEXT_KEYS: Final = ("driv", "\\bdl", "licen")
# Two prefix letters, then "123456C" or " 12 34 56 C"; prefixes never issued are ruled out in Python.
_UK_NINO = safe_regex.compile(
    r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z](?:\d{6}| \d{2} \d{2} \d{2} )[A-D]",
    not_preceded_by="A-Za-z0-9",
    not_followed_by="A-Za-z0-9",
)
_NINO_NEVER_ISSUED: Final = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})
# 3-3-4 digits, ungrouped or with the same separator (" " or "-") twice
_UK_NHS = safe_regex.compile(r"\d{3}(?: \d{3} |-\d{3}-|\d{3})\d{4}", not_preceded_by=r"\d-", not_followed_by=r"\d-")
_NHS_SHAPES: Final = (b"000 000 0000", b"000-000-0000", b"0000000000")  # `_UK_NHS`, digits as "0"
_NHS_CONTEXT = safe_regex.compile(r"\bnhs\b|health\s+service|patient", safe_regex.IGNORECASE)
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DATE = safe_regex.compile(
    r"\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})"
    r"|\d{4}[/.-]\d{1,2}[/.-]\d{1,2}"
    r"|\d{1,2}(?:st|nd|rd|th)?\s{1,3}(?:of\s{1,3})?" + _MONTH + r"\.?,?\s{1,3}\d{4}"
    r"|" + _MONTH + r"\.?\s{1,3}\d{1,2}(?:st|nd|rd|th)?,?\s{1,3}\d{4}",
    safe_regex.IGNORECASE,
    not_preceded_by=r"\w/.-",
    followed_by=r"\z|[^\w/.-]|[.-](?:\z|\D)",
)
_DOB_CONTEXT = safe_regex.compile(r"\bborn\b|\bbirth(?:day|date)?\b|\bdob\b|\bd\.o\.b\b", safe_regex.IGNORECASE)
_DOB_CONTEXT_KEYS: Final = ("\\bborn", "\\bbirth", "\\bdob", "\\bd.o.b")

# A candidate phone: optional "+", digit groups joined by single separators, "(0)" or "(area)".
# RE2 matches this in linear time; Python's re backtracked exponentially on "1(" * 40 + "1/1" (issue 11).
_PHONE_SHAPE = safe_regex.compile(
    r"[^+(\d]*(?P<number>(?:\+|\()?\d[\d()]*(?:(?:[ .-]|\) ?|-\(|\()\(?\d[\d()]*){0,7}\)?)[)]?"
)
_NANP_SHAPE = safe_regex.compile(r"(?:\+?1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}")
_PHONE_GROUP_SEPARATOR = safe_regex.compile(r"[ .-]|\)")
# a phone shape's number holds digits and "+() .-" only: deleting those leaves its digits (no regex call)
_PHONE_PUNCTUATION = str.maketrans("", "", "+() .-")
_INTERNATIONAL_CHARS: Final = frozenset("0123456789 .-")  # after the "+", the form `_valid_international` knows
_TRAILING_PUNCTUATION: Final = " .-()"
_MAX_NATIONAL_DIGITS: Final = 17  # parse refuses a longer national number (TOO_LONG)
# Context words just before a number ("Phone: ", "call me at ") or just after it ("... office"). A
# literal "\\n" (an escaped newline in pasted JSON or logs) counts as a word boundary.
_PHONE_CONTEXT = safe_regex.compile(
    r"(?:\b|\\[nrt])(?:call|calling|phone|tel|telephone|mobile|cell|cellphone|fax|office|home|work|desk"
    r"|contact|reach|dial|text|sms|whatsapp|landline|number|no|ph|mob|answering|ring|messages?)\b[^\n\d]{0,24}$",
    safe_regex.IGNORECASE,
)
_PHONE_CONTEXT_AFTER = safe_regex.compile(
    r"[ ,;(-]{1,3}(?:office|mobile|fax|home|work|cell|tel|phone|desk)\b", safe_regex.IGNORECASE
)
_CONTEXT_AFTER_SEPARATORS: Final = " ,;(-"  # `_PHONE_CONTEXT_AFTER`'s, then a word starting with one of:
_CONTEXT_AFTER_INITIALS: Final = "omfhwctpd"
_NANP_LOCAL = safe_regex.compile(r"\d{3}[ .-]\d{4}")
_PHONE_CONTEXT_CHARS = 40
# Countries whose national numbers start with a trunk "0" and ones that dial without one, tried in
# this order for numbers that are not valid in the default region.
_TRUNK_REGIONS: Final = ("GB", "DE", "FR", "IN", "AU", "NL", "BE", "CH", "AT", "SE", "IE", "NZ", "BR", "ZA", "JP")
_NO_TRUNK_REGIONS: Final = ("ES", "IT", "PT", "NO", "DK", "PL", "GR", "LU", "SG", "HK")

_PLACEHOLDER = safe_regex.compile(r"\[[A-Z][A-Z0-9_]*_\d+\]")
_CONTEXT_AFTER_CHARS = 40  # how far after a context phrase the value may start
_CONTEXT_BEFORE_CHARS = 30  # how far before a context phrase the value may end

_phonenumbers: Any = None


def _phone_module() -> Any:
    global _phonenumbers  # noqa: PLW0603 - a lazy import, cached for the life of the Lambda
    if _phonenumbers is None:
        import phonenumbers  # noqa: PLC0415

        _phonenumbers = phonenumbers
    return _phonenumbers


def _context_phrases(
    view: TextView, context: safe_regex.Pattern[str], keys: tuple[str, ...]
) -> Iterator[safe_regex.Match[str]]:
    """The same matches as ``context.finditer(view.text)``, tried only where one of `keys` occurs.

    Every alternative of `context` starts with one of `keys` (lower-case), so a match can start
    nowhere else; an IGNORECASE alternation searched over the whole text cost ~15 us per KB. A key
    written ``\\bkey`` is one whose alternatives all start with ``\\b``: only its occurrences at an
    ASCII word boundary (RE2's ``\\b``) are tried, so "ss" inside "business" costs no pattern call.
    """
    text = view.text
    lowered = view.lowered
    found: set[int] = set()
    for key in keys:
        at_word_start = key.startswith("\\b")
        word = key[2:] if at_word_start else key
        index = lowered.find(word)
        while index != -1:
            if not at_word_start or index == 0 or text[index - 1] not in _ASCII_WORD_CHARS:
                found.add(index)
            index = lowered.find(word, index + 1)
    if not found:
        return
    starts = sorted(found)
    end_of_last = 0
    for index in starts:
        if index < end_of_last:
            continue  # finditer's matches do not overlap
        m = context.match(text, index)
        if m is not None:
            end_of_last = max(m.end(), index + 1)
            yield m


def _near_context(
    view: TextView, context: safe_regex.Pattern[str], keys: tuple[str, ...], candidate: safe_regex.Pattern[str]
) -> Iterator[safe_regex.Match[str]]:
    """Per context phrase: the first candidate just after it, or else the last one just before it.

    A placeholder between the phrase and the candidate means the value was already masked: the
    candidate is some other number, as in "passport [US_PASSPORT_1], ref 123456789".
    """
    text = view.text
    for ctx in _context_phrases(view, context, keys):
        after = candidate.search(text, ctx.end(), min(len(text), ctx.end() + _CONTEXT_AFTER_CHARS + 40))
        if after is not None and after.start() - ctx.end() <= _CONTEXT_AFTER_CHARS:
            if not _has_placeholder(text, ctx.end(), after.start()):
                yield after
            continue
        before_start = max(0, ctx.start() - _CONTEXT_BEFORE_CHARS - 40)
        last = None
        for m in candidate.finditer(text, before_start, ctx.start()):
            last = m
        near = last is not None and ctx.start() - last.end() <= _CONTEXT_BEFORE_CHARS
        if last is not None and near and not _has_placeholder(text, last.end(), ctx.start()):
            yield last


class _RegionPlan(NamedTuple):
    country_code: int
    trunk: str  # the national (trunk) prefix, "" if the country dials none
    lengths: frozenset[int]  # possible national significant number lengths
    pattern: safe_regex.Pattern[str]  # every valid national significant number matches this
    # length -> one alternation of the per-type patterns (fixed line, mobile, toll free...) that allow it
    typed: dict[int, safe_regex.Pattern[str]]


# The number types `is_valid_number_for_region` accepts (anything but UNKNOWN), in its order.
_NUMBER_TYPE_DESCS: Final = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)


def _typed_patterns(meta: Any, general_lengths: frozenset[int]) -> dict[int, safe_regex.Pattern[str]]:
    """Per length, the union of the type patterns that allow it: one fullmatch instead of up to ten.

    A type without lengths of its own allows the general ones, as in ``_is_number_matching_desc``.
    """
    by_length: dict[int, list[str]] = {}
    for name in _NUMBER_TYPE_DESCS:
        desc = getattr(meta, name, None)
        if desc is None or not desc.national_number_pattern:
            continue
        for length in desc.possible_length or general_lengths:
            by_length.setdefault(length, []).append(desc.national_number_pattern)
    return {
        length: safe_regex.compile("|".join(f"(?:{p})" for p in patterns)) for length, patterns in by_length.items()
    }


_REGION_PLANS: dict[str, _RegionPlan | None] = {}


def _region_plan(region: str) -> _RegionPlan | None:
    """The parts of `phonenumbers`' metadata for `region` that rule most candidates out cheaply."""
    if region not in _REGION_PLANS:
        meta = _phone_module().PhoneMetadata.metadata_for_region(region)
        general = None if meta is None else meta.general_desc
        if meta is None or general is None or general.national_number_pattern is None:
            _REGION_PLANS[region] = None
        else:
            lengths = frozenset(general.possible_length or ())
            _REGION_PLANS[region] = _RegionPlan(
                meta.country_code,
                meta.national_prefix or "",
                lengths,
                safe_regex.compile(general.national_number_pattern),
                _typed_patterns(meta, lengths),
            )
    return _REGION_PLANS[region]


def _valid_national(digits: str, region: str) -> bool:
    """Whether `digits` (as dialled inside `region`) is a valid number there.

    Equivalent to ``is_valid_number_for_region(parse(digits, region), region)`` for plain digit
    strings, without ``parse`` (about 30 us a call) or the library's walk over up to ten number
    types (a pattern cache lookup and a match each): the trunk prefix is stripped here, then
    the length, the general pattern and one precompiled union of the type patterns decide.
    """
    plan = _region_plan(region)
    if plan is None:
        return False
    national = digits[len(plan.trunk) :] if plan.trunk and digits.startswith(plan.trunk) else digits
    return _has_type(plan, national)


def _has_type(plan: _RegionPlan, national: str) -> bool:
    """``_number_type_helper(national, metadata) != UNKNOWN`` for the region `plan` was made from."""
    typed = plan.typed.get(len(national))
    if typed is None or len(national) not in plan.lengths or plan.pattern.fullmatch(national) is None:
        return False
    return typed.fullmatch(national) is not None


# Per region: its compiled `national_prefix_for_parsing` and `leading_digits` (None if it has none);
# missing when RE2 cannot compile it, and then only the library can decide.
_PARSING_PREFIXES: dict[str, safe_regex.Pattern[str] | None] = {}
_LEADING_DIGITS: dict[str, safe_regex.Pattern[str] | None] = {}


def _region_pattern(cache: dict[str, safe_regex.Pattern[str] | None], region: str, source: str | None) -> bool:
    """Fill `cache[region]` from `source` once; False if RE2 cannot compile it."""
    if region not in cache:
        try:
            cache[region] = None if source is None else safe_regex.compile(source)
        except safe_regex.UnsafePatternError:
            return False
    return True


def _valid_international(number: str) -> bool | None:
    """``is_valid_number(parse(number, None))`` for "+" then digits with " .-" between them, else None
    (and None wherever only the library can tell): parse alone costs ~15-30 us, is_valid_number up
    to ~25 us more (for +1 it may walk twenty-five regions' number types).

    It retraces the library for that form. parse: the country code is the shortest known one of
    one to three leading digits, the rest is the national significant number (None if the country's
    national prefix for parsing matches its start: parse may strip it). is_valid_number: the region
    is the only one of the code, else the first whose leading digits match or, without leading
    digits, where the number has a type; valid if it has a type there (`_has_type`).
    """
    number = number.rstrip(_TRAILING_PUNCTUATION)  # parse drops them too ("+44 20 7946 0958)")
    if len(number) < 4 or not number[1].isdigit():
        return None
    if not _INTERNATIONAL_CHARS.issuperset(number[1:]):
        return None
    digits = number[1:].translate(_PHONE_PUNCTUATION)
    if digits[0] == "0":
        return None
    phonenumbers = _phone_module()
    known_codes = phonenumbers.COUNTRY_CODE_TO_REGION_CODE
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in known_codes:
            break
    else:
        return None
    national = digits[size:]
    regions = known_codes[code]
    main = regions[0]
    if not 2 <= len(national) <= _MAX_NATIONAL_DIGITS or main == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
        return None
    main_meta = phonenumbers.PhoneMetadata.metadata_for_region(main, None)
    if main_meta is None or not _region_pattern(_PARSING_PREFIXES, main, main_meta.national_prefix_for_parsing or None):
        return None
    prefix = _PARSING_PREFIXES[main]
    if prefix is not None and prefix.match(national) is not None:
        return None
    region: str | None = main if len(regions) == 1 else None
    for candidate in regions if region is None else ():
        meta = phonenumbers.PhoneMetadata.metadata_for_region(candidate.upper(), None)
        if meta is None:
            continue
        if meta.leading_digits is not None:
            if not _region_pattern(_LEADING_DIGITS, candidate, meta.leading_digits):
                return None
            leading = _LEADING_DIGITS[candidate]
            if leading is None or leading.match(national) is not None:
                region = candidate
                break
        else:
            plan = _region_plan(candidate)
            if plan is not None and _has_type(plan, national):
                region = candidate
                break
    if region is None:
        return False
    plan = _region_plan(region)
    return plan is not None and plan.country_code == code and _has_type(plan, national)


def _parse_phone(phonenumbers: Any, number: str, region: str | None) -> Any:
    try:
        return phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None


def _context_word_may_follow(view: TextView, index: int) -> bool:
    """Whether `_PHONE_CONTEXT_AFTER` can match at `index`: one to three of its separators, then a
    letter one of its words starts with (a word cannot start inside the separator run). Two
    character tests instead of a pattern call for most phone numbers."""
    lowered = view.lowered
    size = len(lowered)
    after = index
    while after < size and after - index < 4 and lowered[after] in _CONTEXT_AFTER_SEPARATORS:
        after += 1
    return 1 <= after - index <= 3 and after < size and lowered[after] in _CONTEXT_AFTER_INITIALS


def _card_context(text: str, start: int) -> bool:
    """Whether a card word ("card", "visa", "cc"...) ends just before `start`."""
    return _CARD_CONTEXT.search(text, max(0, start - _CARD_CONTEXT_CHARS), start) is not None


def _has_placeholder(text: str, start: int, end: int) -> bool:
    return "[" in text[start:end] and _PLACEHOLDER.search(text, start, end) is not None


class PiiDetector:
    """All built-in PII patterns. Offsets are into the text it is given."""

    name = "pii"

    def __init__(self, default_region: str = "US") -> None:
        self.default_region = default_region

    def detect(self, text: str) -> list[Finding]:
        return self.detect_view(TextView(text))

    def detect_view(self, view: TextView) -> list[Finding]:
        text = view.text
        found: list[Finding] = []
        budget = view.budget
        if "@" in text:
            self._emails(view, found)
        if view.has_digit:
            self._numbers(view, found)
            budget.check()
            self._context_numbers(view, found)
        if ":" in text or "-" in text:
            budget.check()
            self._colon_hex(view, found)
        budget.check()
        # "4111.1111.1111.1111", "john [at] example [dot] com", ...; a card word vouches as for plain numbers
        found.extend(obfuscated_pii(view, lambda start: _card_context(text, start)))
        return found

    @staticmethod
    def _emails(view: TextView, found: list[Finding]) -> None:
        # One RE2 pass over the text: its DFA skips text without an address at C speed, where a
        # match tried at every "@" cost a call each ("a@" * 50000: 0.3 s).
        tick = view.budget.tick
        for m in _EMAIL.finditer(view.text):
            tick()
            found.append(Finding(FindingType.EMAIL, m.start(), m.end(), 0.95, _PATTERN))

    def _numbers(self, view: TextView, found: list[Finding]) -> None:
        text = view.text
        tick = view.budget.tick
        phone_windows: list[tuple[int, int]] = []
        for start, end, digits in view.digit_clusters:
            tick()
            before = text[start - 1] if start else " "
            if digits < 4 and not before.isupper() and before != " ":
                continue  # too short for any number here, and no letter prefix (IBAN, NINO)
            card = False
            if digits >= 12:
                for m in _CARD.finditer(text, start, end):
                    tick()
                    card = self._card(m, found, text) or card
            # The cluster's digits as "0", other characters kept: a format's pattern can match inside the
            # cluster only where its shape occurs, and `in` on ~20 bytes is a tenth of a pattern call.
            shape = view.ascii_lowered[start:end].translate(_DIGITS_AS_ZERO) if digits >= 9 else b""
            if digits >= 9 and (_SSN_SHAPES[0] in shape or _SSN_SHAPES[1] in shape):
                for m in _SSN_FORMATTED.finditer(text, start, end):
                    tick()
                    if ssn_valid(m.group().replace("-", "").replace(" ", "")):
                        found.append(Finding(FindingType.US_SSN, m.start(), m.end(), 0.85, _CHECKSUM))
            if digits >= 10 and (_NHS_SHAPES[0] in shape or _NHS_SHAPES[1] in shape or _NHS_SHAPES[2] in shape):
                for m in _UK_NHS.finditer(text, start, end):
                    tick()
                    if nhs_valid(m.group().replace(" ", "").replace("-", "")):
                        window = text[max(0, m.start() - 60) : m.end() + 20]
                        score = 0.95 if _NHS_CONTEXT.search(window) else 0.5
                        found.append(Finding(FindingType.UK_NHS, m.start(), m.end(), score, _CHECKSUM))
            if digits >= 4 and text.count(".", start, end) >= 3:  # an IPv4 address has three dots
                for m in _IPV4.finditer(text, start, end):
                    tick()
                    if _ipv4_valid(m.group()):
                        found.append(Finding(FindingType.IP_ADDRESS, m.start(), m.end(), 0.9, _CHECKSUM))
            # an IBAN's two letters are followed by two check digits, a NINO's by six digits
            if before.isupper() and start >= 2 and text[start - 2].isupper() and text[start + 1 : start + 2] in _DIGITS:
                iban = _IBAN.match(text, start - 2)
                if iban is not None:
                    _iban(iban, found)
            nino_start = start - 3 if start >= 3 and text[start - 1] == " " else start - 2
            if digits >= 6 and nino_start >= 0 and text[nino_start].isupper():
                nino = _UK_NINO.match(text, nino_start)
                if nino is not None and text[nino_start : nino_start + 2] not in _NINO_NEVER_ISSUED:
                    found.append(Finding(FindingType.UK_NINO, nino.start(), nino.end(), 0.85, _PATTERN))
            # more than 15 digits in one cluster is never one phone number (`_phone_verdict` would say
            # so after a full match of the shape over the whole cluster: RE2 linear, but ~0.35 us/char)
            if 7 <= digits <= 15 and not card:
                window_start = start
                while window_start > 0 and start - window_start < 2 and text[window_start - 1] in "+(":
                    window_start -= 1
                window_end = end + 1 if end < len(text) and text[end] == ")" else end
                phone_windows.append((window_start, window_end))
        if phone_windows:
            self._phones(view, phone_windows, found)

    def _phones(self, view: TextView, windows: list[tuple[int, int]], found: list[Finding]) -> None:
        # A repeated number (a signature, a table) is judged once.
        text = view.text
        tick = view.budget.tick
        judged: dict[str, tuple[int, int, float] | None] = {}
        for window_start, window_end in windows:
            tick()
            window = text[window_start:window_end]
            key = window
            context = _PHONE_CONTEXT.search(text, max(0, window_start - _PHONE_CONTEXT_CHARS), window_start) or (
                _PHONE_CONTEXT_AFTER.match(text, window_end) if _context_word_may_follow(view, window_end) else None
            )
            if context is not None:
                key = "\x00" + window  # the same digits may be a phone only where context says so
            if key not in judged:
                judged[key] = self._phone_verdict(window, has_context=context is not None)
            verdict = judged[key]
            if verdict is not None:
                start, end, score = verdict
                found.append(
                    Finding(FindingType.PHONE_NUMBER, window_start + start, window_start + end, score, _PHONENUMBERS)
                )

    def _phone_verdict(self, window: str, *, has_context: bool) -> tuple[int, int, float] | None:
        """(start, end, score) of the phone number `window` is written as, or None.

        The shape test is a few string operations; ``phonenumbers`` is consulted only for what
        passes it, with per-region validity checks (``is_valid_number_for_region``) rather than
        ``is_valid_number``, which loops over every region sharing a country code.
        """
        shape = _PHONE_SHAPE.fullmatch(window)
        if shape is None:
            return None
        start, end = shape.span("number")
        number = shape.group("number")
        digits = number.translate(_PHONE_PUNCTUATION)
        if not 7 <= len(digits) <= 15:
            return None
        phonenumbers = _phone_module()
        if number[0] == "+" or digits.startswith("00"):
            international = number if number[0] == "+" else "+" + digits[2:]
            if _valid_international(international):
                return start, end, 0.75
            parsed = _parse_phone(phonenumbers, international, None)
            if parsed is None:
                return None
            if phonenumbers.is_valid_number(parsed):
                return start, end, 0.75
            grouped = len(_PHONE_GROUP_SEPARATOR.findall(number)) >= 2
            if (grouped or has_context) and phonenumbers.is_possible_number(parsed):
                return start, end, 0.6  # an explicit country code written in groups: a phone even if unassigned
            return None
        nanp = _NANP_SHAPE.fullmatch(number) is not None
        if _valid_national(digits, self.default_region):
            return start, end, 0.75
        # a national trunk prefix: the number belongs to some country that dials one
        trunk = digits[0] == "0" and (len(digits) >= 9 or has_context)
        if trunk and any(_valid_national(digits, region) for region in _TRUNK_REGIONS):
            return start, end, 0.7
        if not has_context:
            return None
        if nanp or _NANP_LOCAL.fullmatch(number) or (len(digits) == 10 and number.isdigit()):
            return start, end, 0.6  # "(ddd) ddd-dddd" after "call": a phone, even with an unassigned area code
        if (_PHONE_GROUP_SEPARATOR.search(number) or digits[0] == "0") and any(
            _valid_national(digits, region) for region in _NO_TRUNK_REGIONS + _TRUNK_REGIONS
        ):
            return start, end, 0.65
        return None

    @staticmethod
    def _card(match: safe_regex.Match[str], found: list[Finding], text: str) -> bool:
        raw = match.group()
        groups = raw.replace("-", " ").split(" ")  # the card pattern separates groups by " " or "-"
        if len(groups) > 1 and (len(groups[0]) != 4 or any(not 3 <= len(g) <= 6 for g in groups[1:-1])):
            return False
        if "-" in raw and " " in raw:
            return False
        # A card number outside the known IIN ranges (a private-label or regional scheme) counts when
        # the text calls it a card: the Luhn check then keeps random numbers out. Looked up only for
        # such a number: a known brand needs no context.
        in_context: bool | None = None
        # A trailing group may be a neighbouring number ("4111 1111 1111 1111 2031"): try without it.
        for keep in range(len(groups), 0, -1):
            digits = "".join(groups[:keep])
            if len(digits) < 12:
                return False
            if len(digits) <= 19 and luhn_valid(digits):
                end = match.start() + len(" ".join(groups[:keep]))
                if card_brand(digits):
                    found.append(Finding(FindingType.CREDIT_CARD, match.start(), end, 1.0, _CHECKSUM))
                    return True
                if in_context is None:
                    in_context = _card_context(text, match.start())
                if in_context:
                    found.append(Finding(FindingType.CREDIT_CARD, match.start(), end, 0.8, _CONTEXT))
                    return True
        return False

    @staticmethod
    def _colon_hex(view: TextView, found: list[Finding]) -> None:
        """IPv6 and MAC addresses, looked for only around runs of ':' or '-'.

        Windows that overlap are merged before the search, so each character is scanned once
        ("6=xoxb-::" repeated had a dozen windows over every character: 2.7 s per 100 KB).
        """
        text = view.text
        tick = view.budget.tick
        if text.count(":") >= 2:
            groups = list(_separator_groups(text, ":", 5))
            for window_start, window_end in _merged(text, groups, lambda count: count >= 2):
                for m in _IPV6.finditer(text, window_start, window_end):
                    tick()
                    if _HEX_DIGITS.isdisjoint(m.group()):
                        continue  # only colons: "::" alone is an address, but not one worth a finding
                    try:
                        ipaddress.IPv6Address(m.group())
                    except ValueError:
                        continue
                    found.append(Finding(FindingType.IP_ADDRESS, m.start(), m.end(), 0.9, _CHECKSUM))
            for window_start, window_end in _merged(text, groups, lambda count: count == 5):
                found.extend(
                    Finding(FindingType.MAC_ADDRESS, m.start(), m.end(), 0.9, _PATTERN)
                    for m in _MAC.finditer(text, window_start, window_end)
                )
        if text.count("-") >= 5:
            groups = list(_separator_groups(text, "-", 3))
            for window_start, window_end in _merged(text, groups, lambda count: count == 5):
                found.extend(
                    Finding(FindingType.MAC_ADDRESS, m.start(), m.end(), 0.9, _PATTERN)
                    for m in _MAC.finditer(text, window_start, window_end)
                )

    @staticmethod
    def _context_numbers(view: TextView, found: list[Finding]) -> None:
        # No word-set gate: the context phrases are found by substring search, which is the gate
        # (the output stage never needs the word set, ~10 us per KB).
        for m in _near_context(view, _SSN_CONTEXT, _SSN_CONTEXT_KEYS, _NINE_DIGITS):
            if ssn_valid(m.group()):
                found.append(Finding(FindingType.US_SSN, m.start(), m.end(), 0.8, _CONTEXT))
        found.extend(
            Finding(FindingType.US_PASSPORT, m.start(), m.end(), 0.8, _CONTEXT)
            for m in _near_context(view, _PASSPORT_CONTEXT, _PASSPORT_CONTEXT_KEYS, _PASSPORT)
        )
        found.extend(
            Finding(FindingType.US_DRIVER_LICENSE, m.start(), m.end(), 0.8, _CONTEXT)
            for m in _near_context(view, _DRIVER_LICENSE_CONTEXT, _DRIVER_LICENSE_CONTEXT_KEYS, _DRIVER_LICENSE)
        )
        found.extend(
            Finding(FindingType.DATE_OF_BIRTH, m.start(), m.end(), 0.85, _CONTEXT)
            for m in _near_context(view, _DOB_CONTEXT, _DOB_CONTEXT_KEYS, _DATE)
        )


_HEX_OR_SEPARATOR = frozenset("0123456789abcdefABCDEF:-")


def _separator_groups(text: str, separator: str, max_gap: int) -> Iterator[tuple[int, int, int]]:
    """Runs of `separator` next to hex digits, at most `max_gap` apart: (first, last, count)."""
    size = len(text)
    positions = [
        p
        for p in find_all(text, separator)
        if (p > 0 and text[p - 1] in _HEX_OR_SEPARATOR) or (p < size - 1 and text[p + 1] in _HEX_OR_SEPARATOR)
    ]
    index = 0
    while index < len(positions):
        first = last = positions[index]
        count = 1
        index += 1
        while index < len(positions) and positions[index] - last <= max_gap:
            last = positions[index]
            count += 1
            index += 1
        yield first, last, count


def _window(text: str, first: int, last: int) -> tuple[int, int]:
    """Where to look around a run of separators from `first` to `last`."""
    start = max(0, first - 5)
    end = min(len(text), last + 21)  # room for a trailing hex group or an embedded IPv4
    # then out to the word's edges: at most 48 characters before the run, 64 after it
    start -= _non_space_before(text, start, 48 - (first - start))
    end += _non_space_after(text, end, 64 - (end - last))
    return start, end


def _non_space_before(text: str, index: int, limit: int) -> int:
    """How many non-whitespace characters (at most `limit`) end at `index` (str.rsplit: C speed)."""
    segment = text[max(0, index - limit) : index]
    return len(segment.rsplit(None, 1)[-1]) if segment and not segment[-1].isspace() else 0


def _non_space_after(text: str, index: int, limit: int) -> int:
    """How many non-whitespace characters (at most `limit`) start at `index`."""
    segment = text[index : index + max(0, limit)]
    return len(segment.split(None, 1)[0]) if segment and not segment[0].isspace() else 0


def _merged(text: str, groups: list[tuple[int, int, int]], wanted: Callable[[int], bool]) -> Iterator[tuple[int, int]]:
    """The windows of the `wanted` groups, overlapping ones merged: (start, end) in text order."""
    current: tuple[int, int] | None = None
    for first, last, count in groups:
        if not wanted(count):
            continue
        start, end = _window(text, first, last)
        if current is not None and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current is not None:
            yield current
        current = (start, end)
    if current is not None:
        yield current


def _ipv4_valid(dotted: str) -> bool:
    """As ``ipaddress.IPv4Address(dotted)`` accepts it, for what `_IPV4` matches (four 1-3 digit
    groups): no octet over 255, no leading zero. A sixth of its cost, per IP-shaped candidate."""
    return all(int(octet) <= 255 and (len(octet) == 1 or octet[0] != "0") for octet in dotted.split("."))


def _iban(match: safe_regex.Match[str], found: list[Finding]) -> None:
    """The regex over-reaches into following words: cut the candidate at its country's length."""
    raw = match.group()
    length = IBAN_LENGTHS.get(raw[:2])
    if length is None:
        return
    taken = 0
    end = 0
    for index, char in enumerate(raw):
        if char != " ":
            taken += 1
            if taken == length:
                end = index + 1
                break
    if taken < length or (end < len(raw) and raw[end] != " "):
        return
    following = match.string[match.start() + end : match.start() + end + 1]
    if following.isalnum():
        return
    if iban_valid(raw[:end].replace(" ", "")):
        found.append(Finding(FindingType.IBAN_CODE, match.start(), match.start() + end, 1.0, _CHECKSUM))
