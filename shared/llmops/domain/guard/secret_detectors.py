"""Credentials: vendor token formats, private keys, JWTs and high-entropy values assigned to secret names.

Each pattern has a cheap substring pre-check so that the common text with no credential in it pays a
few ``in`` tests instead of a dozen regex scans. Every quantifier is bounded, so no pattern can go
quadratic on megabytes of adversarial input.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

from llmops.domain.guard.checksums import shannon_entropy
from llmops.domain.guard.findings import Finding, FindingType
from llmops.domain.guard.text_view import TextView, find_all, word_start

__all__ = ["SecretsDetector"]

_PATTERN: Final = "secrets.pattern"
_ENTROPY: Final = "secrets.entropy"

# Patterns that start with a literal are found by re's fast literal search; the "not preceded by a
# word character" condition is checked in code instead of a leading look-behind, which would force
# re to try every position.
_AWS_ACCESS_KEY = re.compile(r"A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|IPA|NPA|NVA|PKA)[A-Z0-9]{16}(?![A-Za-z0-9])")
_B64_40 = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_PEM = re.compile(
    r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
    r"(?:[A-Za-z0-9+/=\s:,.\\]|-(?!----)){0,20000}"
    r"(?:-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----)?"
)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,4000}\.eyJ[A-Za-z0-9_-]{5,8000}\.[A-Za-z0-9_-]{0,4000}")
_GITHUB = re.compile(r"gh[pousr]_[A-Za-z0-9]{36,251}(?![A-Za-z0-9_])")
_GITHUB_PAT = re.compile(r"github_pat_[A-Za-z0-9_]{50,251}(?![A-Za-z0-9_])")
_SLACK = re.compile(r"xox[abposre]-[A-Za-z0-9-]{10,250}")
_SLACK_WEBHOOK = re.compile(r"https://hooks\.slack\.com/services/T[A-Z0-9]{6,12}/B[A-Z0-9]{6,12}/[A-Za-z0-9]{16,32}")
_VENDOR_API_KEYS = (
    ("AIza", re.compile(r"AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])")),  # Google
    # OpenAI and Anthropic
    ("sk-", re.compile(r"sk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)\d\d-)?[A-Za-z0-9_-]{20,200}(?![A-Za-z0-9_-])")),
    ("_live_", re.compile(r"[srp]k_live_[A-Za-z0-9]{16,200}(?![A-Za-z0-9_-])")),  # Stripe
    ("_test_", re.compile(r"[srp]k_test_[A-Za-z0-9]{16,200}(?![A-Za-z0-9_-])")),
    ("xai-", re.compile(r"xai-[A-Za-z0-9]{40,100}(?![A-Za-z0-9_-])")),
    ("hf_", re.compile(r"hf_[A-Za-z0-9]{30,60}(?![A-Za-z0-9_-])")),  # Hugging Face
)
_CREDENTIAL_NAMES = r"(?:passw(?:or)?d|passwd|passphrase|pwd|secret|token|key|credentials?)"
_ASSIGNMENT = re.compile(
    r"(?P<name>" + _CREDENTIAL_NAMES + r")[A-Za-z0-9_.-]{0,24}[\"']?"
    r"(?:\s{0,3}(?::=|=>|[:=])\s{0,3}|\s{1,3}is\s{1,3}|\s{1,3}(?=[\"']))"
    r"[\"'`]?(?P<value>[^\s\"'`,;)}\]]{6,256})",
    re.IGNORECASE,
)
_BEARER = re.compile(r"bearer\s{1,3}(?P<value>[A-Za-z0-9._~+/-]{20,4000}=*)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]{1,20}://[^\s:/@]{1,128}:(?P<value>[^\s:/@]{1,128})@", re.IGNORECASE)
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789+.-")

_ASSIGNMENT_KEYWORDS = ("pass", "pwd", "secret", "token", "key", "credential")
_AWS_SECRET_CONTEXT_WORDS = ("aws", "secret")
_PLACEHOLDER_VALUE = re.compile(
    r"^(?:[$<{%]|\*+$|x+$|\.+$|null$|none$|nil$|true$|false$|undefined$|changeme$|password\d*$|example"
    r"|your[_-]|my[_-]|os\.|process\.|env\.|getenv|self\.|config\.|settings\.|required|optional|str$)",
    re.IGNORECASE,
)
_HAS_DIGIT_OR_SYMBOL = re.compile(r"[0-9!#$%&*+/=?@^_~-]")


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
        add = found.append
        for m in _AWS_ACCESS_KEY.finditer(text):
            if word_start(text, m.start()):
                score = 0.75 if m.group().endswith("EXAMPLE") else 0.95
                add(Finding(FindingType.AWS_ACCESS_KEY, m.start(), m.end(), score, _PATTERN))
        if len(text) >= 40 and ("aws" in lowered or "secret" in lowered):
            self._aws_secrets(text, lowered, found)
        if "PRIVATE KEY" in text:
            for m in _PEM.finditer(text):
                add(Finding(FindingType.PRIVATE_KEY, m.start(), m.end(), 1.0, _PATTERN))
        for m in _JWT.finditer(text):
            if _token_start(text, m.start()):
                score = 0.99 if _jwt_header_ok(m.group()) else 0.8
                add(Finding(FindingType.JWT, m.start(), m.end(), score, _PATTERN))
        for pattern in (_GITHUB, _GITHUB_PAT):
            for m in pattern.finditer(text):
                if _token_start(text, m.start()):
                    add(Finding(FindingType.GITHUB_TOKEN, m.start(), m.end(), 0.99, _PATTERN))
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
        self._assignments(text, lowered, found)
        if "bearer" in lowered:
            for m in _BEARER.finditer(text):
                if word_start(text, m.start()) and _strong_value(m.group("value")):
                    add(Finding(FindingType.GENERIC_SECRET, m.start("value"), m.end("value"), 0.75, _ENTROPY))
        if "://" in text and "@" in text:
            self._url_passwords(text, lowered, found)
        return found

    @staticmethod
    def _aws_secrets(text: str, lowered: str, found: list[Finding]) -> None:
        """40-character base64 values within a few words after "aws" or "secret"."""
        seen: set[int] = set()
        for word in _AWS_SECRET_CONTEXT_WORDS:
            for index in find_all(lowered, word):
                for m in _B64_40.finditer(text, index, min(len(text), index + 120)):
                    value = m.group()
                    if m.start() in seen or not _strong_value(value) or shannon_entropy(value) < 4.0:
                        continue
                    seen.add(m.start())
                    found.append(Finding(FindingType.AWS_SECRET_KEY, m.start(), m.end(), 0.9, _ENTROPY))

    @staticmethod
    def _assignments(text: str, lowered: str, found: list[Finding]) -> None:
        """`password = ...`, `api_key: ...`, `"token": "..."`: matched only where a name occurs."""
        seen: set[int] = set()
        for keyword in _ASSIGNMENT_KEYWORDS:
            for index in find_all(lowered, keyword):
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
    def _url_passwords(text: str, lowered: str, found: list[Finding]) -> None:
        for index in find_all(text, "://"):
            start = index
            while start > 0 and lowered[start - 1] in _SCHEME_CHARS and index - start < 20:
                start -= 1
            m = _URL_PASSWORD.match(text, start)
            if m is not None and not _PLACEHOLDER_VALUE.match(m.group("value")):
                found.append(Finding(FindingType.GENERIC_SECRET, m.start("value"), m.end("value"), 0.75, _PATTERN))


def _token_start(text: str, index: int) -> bool:
    """Not glued to a preceding identifier character (a letter, a digit, '_' or '-')."""
    return index == 0 or not (text[index - 1].isalnum() or text[index - 1] in "_-")
