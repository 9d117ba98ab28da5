"""PII written the way people hide it: card numbers and SSNs with unusual separators, e-mail
addresses with the "@" and dots spelled out, IBANs in lower case or with dashes.

The plain forms ("4111 1111 1111 1111", "536-22-1234", "john@example.com", "GB82 WEST ...") are
`pii_detectors`' job; this module reports only what it finds in a non-plain form, so the two never
disagree about a plain value. Checksums keep the looser shapes honest: a card must pass Luhn and
fall in a known IIN range, an SSN must pass the SSA rules, an IBAN must pass mod-97.

Every expression here is linear-time by construction and RE2-compatible (no look-around, no
backreferences): bounded repetitions over character classes that do not overlap with the separators
that follow them. Boundaries and "the same separator between every group" are checked in Python on
the short matched span, so a candidate costs O(its length) and the scan O(text).

Decisions (README, Guardrails):

* cards: groups joined by one separator repeated between every group: ".", "/", "_", "\\", tab,
  newline, CRLF, or one of ". / _ - \\" with a space on each side. The run must end where the
  number ends: "1.4111.1111.1111.1111", a path ("/var/4111/1111/1111/1111") or a longer run with
  the same separator is not a card. Unlike plain card numbers, no context word can vouch for an
  unknown IIN range.
* SSNs: 3-2-4 digits joined by "." , "/" or "_" (the same one twice, optionally spaced), or by
  "-" and " " mixed ("536-22 1234"). Not tab or newline: three short numbers in a column are a
  table far more often than an SSN.
* e-mail: "@" or "at" in brackets ([at] (at) {at} <at>, also [@]) with optional spaces; spaced "@";
  dots as [dot] (dot) {dot} <dot> [.] (.) or spaced " . ", and " dot " as a word once the address
  is otherwise obfuscated. A bare English "at" counts only when the part before it could not be an
  English word (it has a dot, "_", "%", "+", "-" or a digit: "john.doe at example dot com", not
  "look at example dot com"), and an obfuscated domain must end in a 2-letter or common TLD.
* IBANs: any letter case, groups joined by spaces or by dashes (one kind per IBAN).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from llmops.domain.guard import safe_regex
from llmops.domain.guard.checksums import IBAN_LENGTHS, card_brand, iban_valid, luhn_valid, ssn_valid
from llmops.domain.guard.findings import Finding, FindingType
from llmops.domain.guard.text_view import TextView, byte_table

__all__ = ["obfuscated_pii"]

_DETECTOR: Final = "pii.obfuscated"

# -- card numbers and SSNs ---------------------------------------------------------------------

# digits -> "0", the characters an obfuscated number is split with -> ".", everything else -> " "
_SEPARATED_SHAPE = byte_table(" ", **{"0": "0123456789", ".": " \t\n\r._/\\-"})
# A 3- or 4-digit group, then up to four more groups, each after 1-3 separator characters. Digit
# and separator classes are disjoint, so there is one way to match: linear, no backtracking.
_SEPARATED_NUMBER = safe_regex.compile(rb"0{3,4}\.{1,3}0{2,7}(?:\.{1,3}0{1,7}){0,4}")
_CARD_SEPARATORS: Final = frozenset({".", "/", "_", "\\", "\t", "\n", "\r\n"} | {f" {c} " for c in "./_-\\"})
_SSN_SEPARATORS: Final = frozenset({".", "/", "_"} | {f" {c} " for c in "./_"})
_SSN_MIXED: Final = frozenset({("-", " "), (" ", "-")})
_DIGITS_DELETED: Final = str.maketrans("", "", "0123456789")


def _continues(text: str, start: int, end: int, separator: str) -> bool:
    """Whether the run around text[start:end] goes on past the number with `separator`.

    After a punctuation separator a letter continues it too ("/var/4111/...", "a.4111.1111..."):
    a path or a dotted name, not a number. After whitespace only a digit does ("card 4111\t1111...").
    """
    if (start and text[start - 1].isdigit()) or (end < len(text) and text[end].isdigit()):
        return True
    size = len(separator)
    letters_join = not separator.isspace()
    if start > size and text.endswith(separator, 0, start):
        neighbour = text[start - size - 1]
        if neighbour.isdigit() or (letters_join and neighbour.isalnum()):
            return True
    if end + size < len(text) and text.startswith(separator, end):
        neighbour = text[end + size]
        if neighbour.isdigit() or (letters_join and neighbour.isalnum()):
            return True
    return False


def _card(
    text: str, start: int, groups: list[str], separators: list[str], card_context: Callable[[int], bool]
) -> Finding | None:
    separator = separators[0]
    if separator not in _CARD_SEPARATORS:
        return None
    # The longest prefix of groups joined by that one separator; a shorter prefix would leave the
    # run continuing with the same separator, which makes it some longer number.
    count = 1
    while count < len(groups) and separators[count - 1] == separator:
        count += 1
    card_groups = groups[:count]
    if len(card_groups[0]) != 4 or any(not 3 <= len(g) <= 6 for g in card_groups[1:-1]):
        return None
    digits = "".join(card_groups)
    if not 12 <= len(digits) <= 19 or not luhn_valid(digits):
        return None
    end = start + len(separator.join(card_groups))
    if _continues(text, start, end, separator):
        return None
    if card_brand(digits) is not None:
        return Finding(FindingType.CREDIT_CARD, start, end, 0.95, _DETECTOR)
    # Outside the known IIN ranges (a private-label or regional scheme), as for plain numbers: a
    # card only where the text calls it one.
    return Finding(FindingType.CREDIT_CARD, start, end, 0.8, _DETECTOR) if card_context(start) else None


def _ssn(text: str, start: int, groups: list[str], separators: list[str]) -> Finding | None:
    if len(groups) < 3 or [len(g) for g in groups[:3]] != [3, 2, 4]:
        return None
    first, second = separators[0], separators[1]
    if not ((first == second and first in _SSN_SEPARATORS) or (first, second) in _SSN_MIXED):
        return None
    digits = "".join(groups[:3])
    if not ssn_valid(digits):
        return None
    end = start + len(groups[0]) + len(first) + len(groups[1]) + len(second) + len(groups[2])
    if _continues(text, start, end, first) or (second != first and _continues(text, start, end, second)):
        return None
    return Finding(FindingType.US_SSN, start, end, 0.85, _DETECTOR)


def _groups(text: str, shape: bytes, start: int, end: int) -> tuple[list[str], list[str]]:
    """The digit groups of text[start:end] and the separators between them (at most six groups)."""
    groups: list[str] = []
    separators: list[str] = []
    position = start
    while (separator_at := shape.find(b".", position, end)) != -1:
        digit_at = shape.find(b"0", separator_at, end)
        groups.append(text[position:separator_at])
        separators.append(text[separator_at:digit_at])
        position = digit_at
    groups.append(text[position:end])
    return groups, separators


def _plain(number: str) -> bool:
    """Whether every separator between the digit groups of `number` is one space, or every one is one
    dash: the plain forms (as ``len(set(separators)) == 1 and separators[0] in (" ", "-")`` over
    `_groups`, in C-speed string operations, as most numbers in text are plain)."""
    between = number.translate(_DIGITS_DELETED)
    return (between.count(" ") == len(between) and "  " not in number) or (
        between.count("-") == len(between) and "--" not in number
    )


def _separated_numbers(view: TextView, found: list[Finding], card_context: Callable[[int], bool]) -> None:
    text = view.text
    shape = view.ascii_lowered.translate(_SEPARATED_SHAPE)
    for m in _SEPARATED_NUMBER.finditer(shape):
        start, end = m.span()
        if _plain(text[start:end]):
            continue  # the plain forms: pii_detectors reports them with its own rules
        groups, separators = _groups(text, shape, start, end)
        finding = _card(text, start, groups, separators, card_context) or _ssn(text, start, groups, separators)
        if finding is not None:
            found.append(finding)


# -- IBANs -------------------------------------------------------------------------------------


def _iban_pattern() -> str:
    """Country letters, check digits, then exactly that country's remaining alphanumerics, each
    optionally after one space or dash: one alternative per IBAN length, so a match ends where the
    country's IBAN ends and the whole text is one linear pass."""
    by_length: dict[int, list[str]] = {}
    for country, length in IBAN_LENGTHS.items():
        by_length.setdefault(length, []).append(country.lower())
    alternatives = [
        "(?:" + "|".join(sorted(countries)) + ")[0-9]{2}(?:[ -]?[a-z0-9]){" + str(length - 4) + "}"
        for length, countries in sorted(by_length.items())
    ]
    return r"\b(?:" + "|".join(alternatives) + ")"


_IBAN_ANY_CASE = safe_regex.compile(_iban_pattern())
# letters -> "a", digits -> "0", everything else -> " " (on `ascii_lowered`, where an IBAN's bytes are its characters)
_LETTER_DIGIT_SHAPE = byte_table(" ", **{"a": "abcdefghijklmnopqrstuvwxyz", "0": "0123456789"})
_COUNTRY_THEN_CHECK_DIGITS: Final = b"aa00"


def _ibans(view: TextView, found: list[Finding]) -> None:
    if _COUNTRY_THEN_CHECK_DIGITS not in view.ascii_lowered.translate(_LETTER_DIGIT_SHAPE):
        return  # every IBAN starts with two letters and two digits: no pass over the text without them
    text = view.text
    # Matches do not overlap: an IBAN right after a longer look-alike ("gb82 de89 ...") is left to
    # the plain upper-case detector. That keeps the Python work at one step per 15+ characters.
    for m in _IBAN_ANY_CASE.finditer(view.lowered):
        start, end = m.span()
        candidate = text[start:end]
        if ("-" in candidate and " " in candidate) or (candidate.isupper() and "-" not in candidate):
            continue  # one kind of separator per IBAN; the plain upper-case form is pii_detectors' job
        following = text[end : end + 2]
        if following[:1].isalnum() or (following[:1] == "-" and following[1:].isalnum()):
            continue  # a longer code, not an IBAN (words after a space are fine: "... 32 please")
        if iban_valid(candidate.replace(" ", "").replace("-", "").upper()):
            found.append(Finding(FindingType.IBAN_CODE, start, end, 1.0, _DETECTOR))


# -- e-mail addresses --------------------------------------------------------------------------

_OPEN = r"[\[({<]"
_CLOSE = r"[\])}>]"
_DOT = (
    r"(?:\.|[ \t]{1,2}\.[ \t]{1,2}|[ \t]{0,2}" + _OPEN + r"[ \t]?(?:dot|\.)[ \t]?" + _CLOSE + r"[ \t]{0,2}"
    r"|[ \t]{1,2}dot[ \t]{1,2})"
)
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
# Top-level domains longer than two letters that addresses use; two-letter labels (country codes)
# are all accepted. An obfuscated address ending in anything else is left alone.
_COMMON_TLDS: Final = (
    *("com", "net", "org", "edu", "gov", "mil", "int", "info", "biz", "io", "ai", "app", "dev", "mobi"),
    *("name", "pro", "xyz", "online", "site", "tech", "store", "blog", "cloud", "email", "mail", "asia"),
    *("tel", "travel", "museum", "coop", "aero", "jobs", "club", "shop", "live", "life", "world", "space"),
    *("agency", "company", "digital", "network", "solutions", "systems", "services", "group", "media", "news"),
)
# Labels and dots up to a top-level domain, then one character that cannot continue a label (or the
# end). The boundary is consumed rather than looked ahead at, so the pattern also runs on RE2; the
# label and dot classes do not overlap, so backtracking is bounded by the label length.
_DOMAIN = (
    r"(?:" + _LABEL + _DOT + r"){1,8}(?:[a-z]{2}|" + "|".join(sorted(_COMMON_TLDS, key=len, reverse=True)) + r")"
    r"(?:[^a-z0-9-]|$)"
)
# The local part: runs of local characters joined by dots in any of the spellings above.
_LOCAL = r"[a-z0-9_%+-]{1,64}(?:" + _DOT + r"[a-z0-9_%+-]{1,64}){0,8}"
# "@" or a bracketed "at"/"@", with up to two spaces on each side.
_AT_SYMBOL = r"[ \t]{0,2}(?:@|" + _OPEN + r"[ \t]?(?:at|@)[ \t]?" + _CLOSE + r")[ \t]{0,2}"
# One pass each over the text (RE2: linear, and most text never reaches Python). A bare "at" takes
# a plain local part only; whether it could be an English word is decided in Python.
_SYMBOL_EMAIL = safe_regex.compile(_LOCAL + _AT_SYMBOL + _DOMAIN)
_WORD_EMAIL = safe_regex.compile(r"[a-z0-9._%+-]{1,64}[ \t]{1,2}at[ \t]{1,2}" + _DOMAIN)
_PLAIN_EMAIL_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._%+-@")
_AT_SYMBOL_NEEDLES: Final = ("@", *(o + s + a for o in "[({<" for s in ("", " ") for a in ("at", "@")))


def _english_word_before_at(local: str) -> bool:
    """A bare "at" after this could be English ("look at", "well-known at", "e.g. at")."""
    return local[0] == "." or local[-1] == "." or not any(c in "._" or c.isdigit() for c in local)


def _emails(view: TextView, found: list[Finding]) -> None:
    lowered = view.lowered
    passes = []
    if any(needle in lowered for needle in _AT_SYMBOL_NEEDLES):
        passes.append((_SYMBOL_EMAIL, False))
    if " at " in lowered or " at\t" in lowered:
        passes.append((_WORD_EMAIL, True))
    for pattern, bare_word in passes:
        for m in pattern.finditer(lowered):
            start, end = m.span()
            if not lowered[end - 1].isalpha():
                end -= 1  # the boundary character after the top-level domain
            span = lowered[start:end]
            if _PLAIN_EMAIL_CHARS.issuperset(span):
                continue  # a plain address: pii_detectors reports it
            if bare_word and _english_word_before_at(span.split(None, 1)[0]):
                continue
            if start > 0 and lowered[start - 1] == "@":
                continue
            found.append(Finding(FindingType.EMAIL, start, end, 0.85, _DETECTOR))


def _no_context(start: int) -> bool:
    return False


def obfuscated_pii(view: TextView, card_context: Callable[[int], bool] = _no_context) -> list[Finding]:
    """Cards, SSNs, e-mail addresses and IBANs in the obfuscated forms above; offsets into `view.text`.

    `card_context(start)` says whether the text calls the number starting there a card ("card no"),
    which lets a Luhn-valid number outside the known IIN ranges count, as it does in plain form.
    """
    found: list[Finding] = []
    if view.has_digit:
        _separated_numbers(view, found, card_context)
        _ibans(view, found)
    lowered = view.lowered
    if "@" in lowered or "at" in lowered:
        _emails(view, found)
    return found
