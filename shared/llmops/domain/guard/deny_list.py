"""Per-tenant denied words and topics, matched as whole words on the folded, lower-cased text.

A topic is a name plus the keywords and phrases that signal it; a hit reports ``DENIED_TOPIC`` with
the topic name in the detector (``deny_list:<topic>``), so callers learn which topic fired without
the text being echoed. Terms go through the same Unicode folding as the text, so a policy written
with accents or typographic quotes still matches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from llmops.domain.guard import safe_regex
from llmops.domain.guard.findings import Finding, FindingType
from llmops.domain.guard.normalization import normalize
from llmops.domain.guard.text_view import TextView

__all__ = ["DenyListDetector", "canonical_term"]

_SPACES = safe_regex.compile(r"\s+")
# a word character, as Python's Unicode "\w" (RE2's "\w" is ASCII)
_WORD_CHARS = r"\pL\pN_"


def canonical_term(term: str) -> str:
    return _SPACES.sub(" ", normalize(term).text.lower()).strip()


class DenyListDetector:
    name = "deny_list"

    def __init__(self, words: Sequence[str] = (), topics: Mapping[str, Sequence[str]] | None = None) -> None:
        # canonical term -> (finding type, detector label); a word wins over a topic keyword
        self._labels: dict[str, tuple[str, str]] = {}
        for topic, keywords in sorted((topics or {}).items()):
            for keyword in keywords:
                if term := canonical_term(keyword):
                    self._labels.setdefault(term, (FindingType.DENIED_TOPIC, f"deny_list:{topic}"))
        for word in words:
            if term := canonical_term(word):
                self._labels[term] = (FindingType.DENIED_WORD, "deny_list")
        self._pattern: safe_regex.Pattern[str] | None = None
        if self._labels:
            alternatives = sorted(self._labels, key=lambda t: (-len(t), t))
            body = "|".join(r"\s+".join(safe_regex.escape(part) for part in t.split(" ")) for t in alternatives)
            self._pattern = safe_regex.compile(body, not_preceded_by=_WORD_CHARS, not_followed_by=_WORD_CHARS)

    def __bool__(self) -> bool:
        return self._pattern is not None

    def detect(self, text: str) -> list[Finding]:
        return self.detect_view(TextView(text))

    def detect_view(self, view: TextView) -> list[Finding]:
        if self._pattern is None:
            return []
        found: list[Finding] = []
        for m in self._pattern.finditer(view.lowered):
            finding_type, detector = self._labels[_SPACES.sub(" ", m.group())]
            found.append(Finding(finding_type, m.start(), m.end(), 1.0, detector))
        return found
