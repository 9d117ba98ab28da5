"""Credentials: vendor token formats, private keys, JWTs and high-entropy values assigned to secret names.

Each pattern has a cheap substring pre-check so that the common text with no credential in it pays a
few ``in`` tests instead of a dozen regex scans. Every quantifier is bounded, so no pattern can go
quadratic on megabytes of adversarial input; and every pattern runs on RE2 (`safe_regex`), which is
linear whatever the pattern. RE2 repeats at most 1000 times: longer bounds are applied after the match.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Final

from llmops.domain.guard import safe_regex
from llmops.domain.guard.checksums import shannon_entropy
from llmops.domain.guard.findings import Finding, FindingType
from llmops.domain.guard.text_view import TextView, find_all, word_start

__all__ = ["SecretsDetector"]

_PATTERN: Final = "secrets.pattern"
_ENTROPY: Final = "secrets.entropy"

# The "not preceded by a word character" condition is checked in code (word_start, _token_start).
_AWS_ACCESS_KEY = safe_regex.compile(
    r"A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|IPA|NPA|NVA|PKA)[A-Z0-9]{16}", not_followed_by="A-Za-z0-9"
)
_B64_40 = safe_regex.compile(r"[A-Za-z0-9/+]{40}", not_preceded_by="A-Za-z0-9/+", not_followed_by="A-Za-z0-9/+=")
# A PEM block: the header, a body of base64 and header lines up to the next "-----" (at most 20000
# characters), then the footer if it is there.
_PEM_HEADER = safe_regex.compile(r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
_PEM_BODY_BREAK = safe_regex.compile(r"[^A-Za-z0-9+/=\s:,.\\-]|-----")
_PEM_FOOTER = safe_regex.compile(r"-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
_PEM_BODY_MAX: Final = 20000
# three segments of at most 4000, 8000 and 4000 characters, checked after the match
_JWT = safe_regex.compile(r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_JWT_SEGMENTS_MAX: Final = (4000 + 3, 8000 + 3, 4000)
_GITHUB = safe_regex.compile(r"gh[pousr]_[A-Za-z0-9]{36,251}", not_followed_by="A-Za-z0-9_")
_GITHUB_PAT = safe_regex.compile(r"github_pat_[A-Za-z0-9_]{50,251}", not_followed_by="A-Za-z0-9_")
_SLACK = safe_regex.compile(r"xox[abposre]-[A-Za-z0-9-]{10,250}")
_SLACK_WEBHOOK = safe_regex.compile(
    r"https://hooks\.slack\.com/services/T[A-Z0-9]{6,12}/B[A-Z0-9]{6,12}/[A-Za-z0-9]{16,32}"
)
_VENDOR_API_KEYS = (
    ("AIza", safe_regex.compile(r"AIza[0-9A-Za-z_-]{35}", not_followed_by="A-Za-z0-9_-")),  # Google
    # OpenAI and Anthropic
    (
        "sk-",
        safe_regex.compile(
            r"sk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)\d\d-)?[A-Za-z0-9_-]{20,200}", not_followed_by="A-Za-z0-9_-"
        ),
    ),
    ("_live_", safe_regex.compile(r"[srp]k_live_[A-Za-z0-9]{16,200}", not_followed_by="A-Za-z0-9_-")),  # Stripe
    ("_test_", safe_regex.compile(r"[srp]k_test_[A-Za-z0-9]{16,200}", not_followed_by="A-Za-z0-9_-")),
    ("xai-", safe_regex.compile(r"xai-[A-Za-z0-9]{40,100}", not_followed_by="A-Za-z0-9_-")),
    ("hf_", safe_regex.compile(r"hf_[A-Za-z0-9]{30,60}", not_followed_by="A-Za-z0-9_-")),  # Hugging Face
)
_CREDENTIAL_NAMES = r"(?:passw(?:or)?d|passwd|passphrase|pwd|secret|token|key|credentials?)"
# `name "value"`: the third way to assign needs the quote, which the value may not start with.
_ASSIGNMENT = safe_regex.compile(
    r"(?P<name>" + _CREDENTIAL_NAMES + r")[A-Za-z0-9_.-]{0,24}[\"']?"
    r"(?:\s{0,3}(?::=|=>|[:=])\s{0,3}[\"'`]?|\s{1,3}is\s{1,3}[\"'`]?|\s{1,3}[\"'])"
    r"(?P<value>[^\s\"'`,;)}\]]{6,256})",
    safe_regex.IGNORECASE,
)
# the value is at most 4000 characters (then its "=" padding): cut after the match
_BEARER = safe_regex.compile(r"bearer\s{1,3}(?P<value>[A-Za-z0-9._~+/-]{20,}=*)", safe_regex.IGNORECASE)
_BEARER_VALUE_MAX: Final = 4000
_URL_PASSWORD = safe_regex.compile(
    r"[a-z][a-z0-9+.-]{1,20}://[^\s:/@]{1,128}:(?P<value>[^\s:/@]{1,128})@", safe_regex.IGNORECASE
)
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789+.-")

_ASSIGNMENT_KEYWORDS = ("pass", "pwd", "secret", "token", "key", "credential")
_AWS_SECRET_CONTEXT_WORDS = ("aws", "secret")
_PLACEHOLDER_VALUE = safe_regex.compile(
    r"^(?:[$<{%]|\*+$|x+$|\.+$|null$|none$|nil$|true$|false$|undefined$|changeme$|password\d*$|example"
    r"|your[_-]|my[_-]|os\.|process\.|env\.|getenv|self\.|config\.|settings\.|required|optional|str$)",
    safe_regex.IGNORECASE,
)
_HAS_DIGIT_OR_SYMBOL = safe_regex.compile(r"[0-9!#$%&*+/=?@^_~-]")


def _strong_value(value: str) -> bool:
    """Random-looking enough to be a machine-generated credential rather than a word or an identifier."""
    classes = sum((any(c.islower() for c in value), any(c.isupper() for c in value), any(c.isdigit() for c in value)))
    return len(value) >= 12 and classes >= 2 and shannon_entropy(value) >= 3.3


def _jwt_header_ok(token: str) -> bool:
    header = token.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
    except (binascii.Error, ValueError):
        return False
    return b'"alg"' in decoded or b'"typ"' in decoded


class SecretsDetector:
    """All built-in secret patterns. Offsets are into the text it is given."""

    name = "secrets"

    def detect(self, text: str) -> list[Finding]:
        return self.detect_view(TextView(text))

    def detect_view(self, view: TextView) -> list[Finding]:
        text = view.text
        lowered = view.lowered
        found: list[Finding] = []
        tick = view.budget.tick

        def add(finding: Finding) -> None:
            tick()
            found.append(finding)

        for m in _AWS_ACCESS_KEY.finditer(text):
            if word_start(text, m.start()):
                score = 0.75 if m.group().endswith("EXAMPLE") else 0.95
                add(Finding(FindingType.AWS_ACCESS_KEY, m.start(), m.end(), score, _PATTERN))
        if len(text) >= 40 and ("aws" in lowered or "secret" in lowered):
            self._aws_secrets(text, lowered, found, tick)
        if "PRIVATE KEY" in text:
            for start, end in _pem_blocks(text, tick):
                add(Finding(FindingType.PRIVATE_KEY, start, end, 1.0, _PATTERN))
        if "eyJ" in text:
            for start, end in _jwts(text, tick):
                if _token_start(text, start):
                    score = 0.99 if _jwt_header_ok(text[start:end]) else 0.8
                    add(Finding(FindingType.JWT, start, end, score, _PATTERN))
        # Each token pattern starts with a literal: a substring test skips its pass when it is absent.
        for literal, pattern in (("gh", _GITHUB), ("github_pat_", _GITHUB_PAT)):
            if literal in text:
                for m in pattern.finditer(text):
                    if _token_start(text, m.start()):
                        add(Finding(FindingType.GITHUB_TOKEN, m.start(), m.end(), 0.99, _PATTERN))
        if "xox" in text:
            for m in _SLACK.finditer(text):
                if word_start(text, m.start()):
                    add(Finding(FindingType.SLACK_TOKEN, m.start(), m.end(), 0.99, _PATTERN))
        if "hooks.slack.com" in text:
            for m in _SLACK_WEBHOOK.finditer(text):
                add(Finding(FindingType.SLACK_TOKEN, m.start(), m.end(), 0.99, _PATTERN))
        for literal, pattern in _VENDOR_API_KEYS:
            if literal in text:
                for m in pattern.finditer(text):
                    if _token_start(text, m.start()):
                        score = 0.95 if shannon_entropy(m.group()) >= 3.5 else 0.6
                        add(Finding(FindingType.API_KEY, m.start(), m.end(), score, _PATTERN))
        view.budget.check()
        self._assignments(text, lowered, found, tick)
        if "bearer" in lowered:
            for m in _BEARER.finditer(text):
                value_start, value_end = m.span("value")
                value_end = min(value_end, value_start + _BEARER_VALUE_MAX)
                if word_start(text, m.start()) and _strong_value(text[value_start:value_end]):
                    add(Finding(FindingType.GENERIC_SECRET, value_start, value_end, 0.75, _ENTROPY))
        if "://" in text and "@" in text:
            self._url_passwords(text, lowered, found, tick)
        return found

    @staticmethod
    def _aws_secrets(text: str, lowered: str, found: list[Finding], tick: Callable[[], None]) -> None:
        """40-character base64 values within a few words after "aws" or "secret"."""
        seen: set[int] = set()
        for word in _AWS_SECRET_CONTEXT_WORDS:
            for index in find_all(lowered, word):
                tick()
                for m in _B64_40.finditer(text, index, min(len(text), index + 120)):
                    value = m.group()
                    if m.start() in seen or not _strong_value(value) or shannon_entropy(value) < 4.0:
                        continue
                    seen.add(m.start())
                    found.append(Finding(FindingType.AWS_SECRET_KEY, m.start(), m.end(), 0.9, _ENTROPY))

    @staticmethod
    def _assignments(text: str, lowered: str, found: list[Finding], tick: Callable[[], None]) -> None:
        """`password = ...`, `api_key: ...`, `"token": "..."`: matched only where a name occurs."""
        seen: set[int] = set()
        for keyword in _ASSIGNMENT_KEYWORDS:
            for index in find_all(lowered, keyword):
                tick()
                m = _ASSIGNMENT.match(text, index)
                if m is None or m.start("value") in seen:
                    continue
                value = m.group("value")
                if _PLACEHOLDER_VALUE.match(value):
                    continue
                is_password = m.group("name").lower().startswith(("pass", "pwd"))
                if _strong_value(value) or (is_password and _HAS_DIGIT_OR_SYMBOL.search(value)):
                    seen.add(m.start("value"))
                    found.append(Finding(FindingType.GENERIC_SECRET, m.start("value"), m.end("value"), 0.7, _ENTROPY))

    @staticmethod
    def _url_passwords(text: str, lowered: str, found: list[Finding], tick: Callable[[], None]) -> None:
        for index in find_all(text, "://"):
            tick()
            start = index
            while start > 0 and lowered[start - 1] in _SCHEME_CHARS and index - start < 20:
                start -= 1
            m = _URL_PASSWORD.match(text, start)
            if m is not None and not _PLACEHOLDER_VALUE.match(m.group("value")):
                found.append(Finding(FindingType.GENERIC_SECRET, m.start("value"), m.end("value"), 0.75, _PATTERN))


def _pem_blocks(text: str, tick: Callable[[], None]) -> list[tuple[int, int]]:
    """Spans of "-----BEGIN ... PRIVATE KEY-----", its body and, if present, its footer."""
    blocks: list[tuple[int, int]] = []
    pos = 0
    while (header := _PEM_HEADER.search(text, pos)) is not None:
        tick()
        body_end = min(len(text), header.end() + _PEM_BODY_MAX)
        stop = _PEM_BODY_BREAK.search(text, header.end(), body_end)
        end = body_end if stop is None else stop.start()
        footer = _PEM_FOOTER.match(text, end)
        end = footer.end() if footer is not None else end
        blocks.append((header.start(), end))
        pos = max(end, header.end())
    return blocks


def _jwts(text: str, tick: Callable[[], None]) -> list[tuple[int, int]]:
    """JWT spans with segments of at most 4000, 8000 and 4000 characters (as the bounded pattern had)."""
    spans: list[tuple[int, int]] = []
    pos = 0
    while (m := _JWT.search(text, pos)) is not None:
        tick()
        header_end = text.index(".", m.start())
        payload_end = text.index(".", header_end + 1)
        first, second, third = _JWT_SEGMENTS_MAX
        if header_end - m.start() > first:
            pos = header_end - first  # only a start this close to the "." can have a short enough header
            continue
        if payload_end - header_end - 1 > second:
            pos = header_end + 1  # every start before the "." shares this payload: look past it
            continue
        end = min(m.end(), payload_end + 1 + third)
        spans.append((m.start(), end))
        pos = end
    return spans


def _token_start(text: str, index: int) -> bool:
    """Not glued to a preceding identifier character (a letter, a digit, '_' or '-')."""
    return index == 0 or not (text[index - 1].isalnum() or text[index - 1] in "_-")
