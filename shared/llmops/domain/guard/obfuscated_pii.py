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

import re
from typing import Final

from llmops.domain.guard.checksums import IBAN_LENGTHS, card_brand, iban_valid, luhn_valid, ssn_valid
from llmops.domain.guard.findings import Finding, FindingType
from llmops.domain.guard.text_view import TextView, byte_table, find_all

__all__ = ["obfuscated_pii"]

_DETECTOR: Final = "pii.obfuscated"

# -- card numbers and SSNs ---------------------------------------------------------------------

# digits -> "0", the characters an obfuscated number is split with -> ".", everything else -> " "
_SEPARATED_SHAPE = byte_table(" ", **{"0": "0123456789", ".": " \t\n\r._/\\-"})
# A 3- or 4-digit group, then up to four more groups, each after 1-3 separator characters. Digit
# and separator classes are disjoint, so there is one way to match: linear, no backtracking.
_SEPARATED_NUMBER = re.compile(rb"0{3,4}\.{1,3}0{2,7}(?:\.{1,3}0{1,7}){0,4}")
_SPLIT_GROUPS = re.compile(r"(\D+)")
_CARD_SEPARATORS: Final = frozenset({".", "/", "_", "\\", "\t", "\n", "\r\n"} | {f" {c} " for c in "./_-\\"})
_SSN_SEPARATORS: Final = frozenset({".", "/", "_"} | {f" {c} " for c in "./_"})
_SSN_MIXED: Final = frozenset({("-", " "), (" ", "-")})


def _continues(text: str, start: int, end: int, separator: str) -> bool:
    """Whether the run around text[start:end] goes on past the number with `separator`.

    After a punctuation separator a letter continues it too ("/var/4111/...", "a.4111.1111..."):
    a path or a dotted name, not a number. After whitespace only a digit does ("card 4111\t1111...").
    """
    if (start and text[start - 1].isdigit()) or (end < len(text) and text[end].isdigit()):
        return True
    joins: str = "0123456789" if separator.isspace() else ""
    size = len(separator) + 1
    before = text[start - size : start] if start >= size else ""
    after = text[end : end + size]
    for piece, neighbour in ((before, before[:1]), (after, after[-1:])):
        joined = neighbour in joins if joins else neighbour.isalnum()
        if len(piece) == size and separator in (piece[1:], piece[:-1]) and neighbour and joined:
            return True
    return False


def _card(text: str, start: int, groups: list[str], separators: list[str]) -> Finding | None:
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
    if not 12 <= len(digits) <= 19 or not luhn_valid(digits) or card_brand(digits) is None:
        return None
    end = start + len(separator.join(card_groups))
    if _continues(text, start, end, separator):
        return None
    return Finding(FindingType.CREDIT_CARD, start, end, 0.95, _DETECTOR)


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
    if _continues(text, start, end, first) or _continues(text, start, end, second):
        return None
    return Finding(FindingType.US_SSN, start, end, 0.85, _DETECTOR)


def _separated_numbers(view: TextView, found: list[Finding]) -> None:
    text = view.text
    shape = view.ascii_lowered.translate(_SEPARATED_SHAPE)
    for m in _SEPARATED_NUMBER.finditer(shape):
        start, end = m.span()
        parts = _SPLIT_GROUPS.split(text[start:end])
        groups, separators = parts[0::2], parts[1::2]
        if len(set(separators)) == 1 and separators[0] in (" ", "-"):
            continue  # the plain forms: pii_detectors reports them with its own rules
        finding = _card(text, start, groups, separators) or _ssn(text, start, groups, separators)
        if finding is not None:
            found.append(finding)


# -- IBANs -------------------------------------------------------------------------------------

_IBAN_LENGTHS_LOWER: Final = {country.lower(): length for country, length in IBAN_LENGTHS.items()}
# Per IBAN length: country letters, check digits, then exactly the remaining alphanumerics, each
# optionally after one space or dash. The match ends where the country's IBAN ends.
_IBAN_BY_LENGTH: Final = {
    length: re.compile(r"[a-z]{2}[0-9]{2}(?:[ -]?[a-z0-9]){%d}" % (length - 4))  # noqa: UP031 - a regex
    for length in set(IBAN_LENGTHS.values())
}


def _ibans(view: TextView, found: list[Finding]) -> None:
    text = view.text
    lowered = view.lowered
    for cluster in view.digit_clusters:
        start = cluster.start - 2
        length = _IBAN_LENGTHS_LOWER.get(lowered[start : cluster.start]) if start >= 0 else None
        if length is None or (start > 0 and lowered[start - 1].isalnum()):
            continue
        m = _IBAN_BY_LENGTH[length].match(lowered, start)
        if m is None:
            continue
        end = m.end()
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
# "@" or a bracketed "at"/"@", up to two spaces, the domain; or the bare word "at" between spaces.
_AT_SYMBOL_DOMAIN = re.compile(r"(?:@|" + _OPEN + r"[ \t]?(?:at|@)[ \t]?" + _CLOSE + r")[ \t]{0,2}" + _DOMAIN)
_AT_WORD_DOMAIN = re.compile(r"at[ \t]{1,2}" + _DOMAIN)
# The local part, read backwards from the "at": reversed dot spellings between runs of local chars.
_LOCAL_CHARS = r"[a-z0-9_%+-]{1,64}"
_REVERSED_DOT = (
    r"(?:\.|[ \t]{1,2}\.[ \t]{1,2}|[ \t]{0,2}" + _CLOSE + r"[ \t]?(?:tod|\.)[ \t]?" + _OPEN + r"[ \t]{0,2}"
    r"|[ \t]{1,2}tod[ \t]{1,2})"
)
_REVERSED_LOCAL = re.compile(_LOCAL_CHARS + r"(?:" + _REVERSED_DOT + _LOCAL_CHARS + r"){0,8}")
_PLAIN_EMAIL_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._%+-@")
_LOCAL_CHARS_SET: Final = _PLAIN_EMAIL_CHARS - {"@"}
_LOCAL_WINDOW = 96
_AT_SYMBOL_ANCHORS: Final = tuple(o + s + a for o in "[({<" for s in ("", " ") for a in ("at", "@"))
_SPACES = " \t"


def _local_start(lowered: str, at: int, floor: int, *, bare_word: bool) -> int | None:
    """Start of the local part that ends at `at` (after it come the "at" token's spaces), or None."""
    if bare_word:
        # A bare "at": the part before it must not read as an English word ("look at", "well-known at").
        start = at
        while start > floor and at - start < 64 and lowered[start - 1] in _LOCAL_CHARS_SET:
            start -= 1
        local = lowered[start:at]
        if not local or local[0] == "." or local[-1] == "." or not any(c in "._" or c.isdigit() for c in local):
            return None
        return start
    m = _REVERSED_LOCAL.match(lowered[max(floor, at - _LOCAL_WINDOW) : at][::-1])
    if m is None:
        return None
    start = at - m.end()
    return None if start > 0 and lowered[start - 1] == "@" else start


def _at_anchors(lowered: str) -> list[tuple[int, bool]]:
    """(position of an "at" token, whether it is the bare word "at"), in text order."""
    anchors = [(i, False) for i in find_all(lowered, "@")]
    for needle in _AT_SYMBOL_ANCHORS:
        if needle in lowered:
            anchors.extend((i, False) for i in find_all(lowered, needle))
    for needle in (" at ", " at\t"):
        anchors.extend((i + 1, True) for i in find_all(lowered, needle))
    anchors.sort()
    return anchors


def _emails(view: TextView, found: list[Finding]) -> None:
    lowered = view.lowered
    end_of_last = 0
    for anchor, bare_word in _at_anchors(lowered):
        if anchor < end_of_last:
            continue
        # The "at" and the domain first: most anchors ("at noon", a lone "@") fail here, cheaply.
        m = (_AT_WORD_DOMAIN if bare_word else _AT_SYMBOL_DOMAIN).match(lowered, anchor)
        if m is None:
            continue
        domain_end = m.end() if lowered[m.end() - 1].isalpha() else m.end() - 1
        token_start = anchor
        while token_start > end_of_last and anchor - token_start < 2 and lowered[token_start - 1] in _SPACES:
            token_start -= 1
        local_start = _local_start(lowered, token_start, end_of_last, bare_word=bare_word)
        if local_start is None:
            continue
        if _PLAIN_EMAIL_CHARS.issuperset(lowered[local_start:domain_end]):
            continue  # a plain address: pii_detectors reports it
        found.append(Finding(FindingType.EMAIL, local_start, domain_end, 0.85, _DETECTOR))
        end_of_last = domain_end


def obfuscated_pii(view: TextView) -> list[Finding]:
    """Cards, SSNs, e-mail addresses and IBANs in the obfuscated forms above; offsets into `view.text`."""
    found: list[Finding] = []
    if view.has_digit:
        _separated_numbers(view, found)
        _ibans(view, found)
    lowered = view.lowered
    if "@" in lowered or "at" in lowered:
        _emails(view, found)
    return found
