r"""The output guard on a token stream: the same policy as `GuardEngine.guard_output`, released as it is safe.

A streamed completion arrives in deltas. :class:`StreamingOutputGuard` holds back the tail that may
still become (part of) a finding and releases the rest, already redacted per policy and with the
request's pseudonyms restored, so that the concatenation of everything released is exactly the
``OutputVerdict.text`` the non-streamed path returns for the whole completion (or the stream ends
blocked where that path blocks). Pure: no I/O, no clock.

Example (the chat endpoint's streaming path)::

    guard = StreamingOutputGuard(engine, vault, system_prompt, context, query=query)
    for delta in provider_deltas:
        release = guard.feed(delta)
        if release.text:
            send_chunk(release.text)
        if release.blocked:
            break                                   # finish_reason "content_filter"
    final = guard.finish()
    if final.text:
        send_chunk(final.text)
    finish_reason = "content_filter" if final.blocked else provider_finish_reason
    audit(final.verdict, chars_scanned=final.scan.chars_scanned, hold_back=final.scan.hold_back_chars)

What is held back, and why it is enough
---------------------------------------
A cut between released and held text must not fall inside anything the engine could report once
more text arrives, nor before anything whose verdict more text could change. The hold-back is
*risk-anchored*: the cut advances to the earliest position in the unreleased tail from which a
finding could still be forming, given text not yet received. Plain prose is released up to the
whitespace before its last word. The anchors are derived from the detectors' shapes and work on
the text as they see it (folded by ``normalize``, lower-cased) with every whitespace run counted as
one character, so that distances are never longer than the detectors' and the unbounded ``\s+`` of
a phrase ("social   security", a denied phrase) cannot outrun a reach:

1. **The last word** (:meth:`_RiskAnchors.limit`): the last complete word before trailing
   whitespace is held until the next word starts, because what follows can still pull it into a
   finding that spans the space: an e-mail address written with a spaced ``@`` or a bracketed or
   spelled-out "at"/"dot" (``obfuscated_pii``: "john @ example.com", "john [at] example dot com"),
   a month name before a day ("March 12, 2024"), the two letters of a UK NINO ("AB 12 34 56 C").
   Words joined by such a connector (a word containing ``@`` or a bracketed at/dot, "dot", ".",
   "at" after a word with ``._%+-`` or a digit, or a partial word that may still become one) are
   held together back to the first of them.
2. **Numbers**: a run of digits joined by up to three non-alphanumeric characters (cards, phones,
   SSNs, NHS numbers, IBAN digits, dates, IPs, the obfuscated forms with "." "/" "_" separators) is
   held from the word before it (a month name, NINO letters) until 48 characters have followed its
   last digit: room for the next group, the phone context word after it (``_PHONE_CONTEXT_AFTER``),
   and for a context phrase that starts within ``_CONTEXT_BEFORE_CHARS`` (30) after a value to be
   seen whole ("123456789 is my passport"). If such a phrase's key word ("ss", "social", "tin",
   "passport", "driv", "licen", "dl", "born", "birth", "dob") does start there, the number is held
   until 112 characters after the key: the phrase, then the 40 characters in which a candidate
   *after* the phrase would be reported instead (``_near_context``: the first one after, else the
   last one before), and that candidate. After two letters ("GB82", "gb82") the reach is 64 (the
   rest of an IBAN, up to 30 characters in groups). Numbers less than 24 characters apart hold
   each other ("12th of September, 2024").
3. **PEM**: ``-----`` is held from its word for 80 characters (a private-key header is at most 72).
4. **Denied phrases**: the earliest word start from which the rest of the tail is a prefix of one
   of the policy's denied words or topic keywords (``canonical_term``, as the deny list matches).
5. **Placeholders**: with pseudonyms to restore, an unclosed ``[`` within the window below
   (``[ EMAIL_1 ]`` has spaces).
6. **Whole tokens**: the cut never splits a run of non-whitespace characters (RE2's ``\s``, the
   detectors' whitespace: ``\v`` is not one) shorter than ``LONG_TOKEN_CHARS`` (20480): e-mail
   addresses (up to 640), API keys and GitHub tokens (up to 262), JWTs (up to 16006), bearer and
   assigned secret values, canaries, IPv6/MAC addresses and ``[EMAIL_12]`` placeholders are held
   whole until a space ends them. A longer run is split, keeping the window at its end.
7. **Findings**: a finding the engine reports across the cut, or ending at it, moves the cut to its
   start (an open PEM block runs to the end of the text, so it is held until its footer arrives).

What the detectors decide from text *before* a value (card, phone and AWS-secret context words,
``password is``, ``bearer``, a phrase before a passport number) needs no anchor: each scan covers
the unreleased tail plus a look-behind of at least the window (:func:`hold_back_chars`: 128, or the
longest denied phrase or placeholder) in non-whitespace characters. The window no longer delays
release; it bounds the look-behind and the placeholder rule.

Scans run when a delta brings a word boundary, once the new text is at least 1/8 of the unreleased
tail plus 1/64 of the look-behind plus 1/1024 of the text released so far (prose: every word for
the first few kilobytes, then every few words); without a boundary, once it is 16 characters and
1/8 of the scanned region. Each scan costs O(tail + look-behind), so the total cost is linear in
the completion whatever the deltas (1-character deltas without a space included: the scan size
then grows geometrically), and a long answer takes O(1024 log n) engine calls on top of that
(~70 us each). When the anchors leave nothing to release, the engine is not called at all.
Placeholders are numbered by one allocator for the whole stream, in text order, as the engine
numbers them for the whole text.

What blocks mid-stream, and what only at ``finish()``
-----------------------------------------------------
Mid-stream (nothing of the blocked part is released): any blocking finding in the text about to be
released (denied words and topics, a canary, a PII or secret type the policy blocks), the
system-prompt overlap score (tracked incrementally over word 5-grams, exactly the whole-text
ratio), and the size limit (``max_output_chars``).

Harmful content (the learned layer's harm categories) blocks mid-stream window by window: the layer
scores a long text in windows of ``WINDOW_CHARS`` every ``WINDOW_STEP`` characters and keeps the
worst, so each window is scored as soon as it is complete, exactly as the non-streamed check will
score it, and one over its category's blocking threshold ends the stream there (at most a window
after the harmful text began; what was sent before cannot be recalled). An open window, or a
completion shorter than one, is judged at ``finish()``: a short text scores sharper than the window
it will be part of, and judging it early would refuse answers the non-streamed path allows.

At ``finish()`` the engine runs once more on the whole completion, the non-streamed
``guard_output`` call itself: its verdict is the audit record's, scores included (grounding,
relevance, system-prompt leak). If it blocks, the held tail is not released. If it would have
shown the client something other than what was already released (a shape the anchors above do
not foresee, e.g. a finding across the split of a run longer than ``LONG_TOKEN_CHARS``), the
stream ends blocked and ``scan.diverged`` is set: the client never gets text the policy would not
have shown after the point of divergence, but what it already got cannot be recalled.

Checks that need the whole completion to decide the *text* are not streamed: with service
detectors on the output (Bedrock Guardrails, Comprehend: a call per scan would be unbounded), a
policy that blocks on GROUNDING or RELEVANCE (opt-in; the default only scores them) when grounding
context is given, or a
system-prompt leak that the policy redacts instead of blocking (its span runs from the first to the
last reproduced 5-gram), the guard holds the whole completion and releases it at ``finish()``:
nothing streams, but the policy holds exactly.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from llmops.domain.guard import safe_regex
from llmops.domain.guard.deny_list import canonical_term
from llmops.domain.guard.engine import GuardEngine, OutputVerdict
from llmops.domain.guard.findings import (
    CATEGORY_TYPES,
    Action,
    BlockedBy,
    Decision,
    Direction,
    Finding,
    FindingType,
    is_entity,
)
from llmops.domain.guard.leakage import overlap_leak
from llmops.domain.guard.learned.features import WINDOW_CHARS, WINDOW_STEP
from llmops.domain.guard.normalization import normalize
from llmops.domain.guard.policy import GuardPolicy
from llmops.domain.guard.redaction import PseudonymVault, apply_replacements, resolve_overlaps
from llmops.domain.guard.text_view import TextView, find_all

__all__ = [
    "LONG_TOKEN_CHARS",
    "SPACED_SHAPE_REACH",
    "FinalRelease",
    "Release",
    "StreamScan",
    "StreamingOutputGuard",
    "hold_back_chars",
]

SPACED_SHAPE_REACH: Final = 128
"""Longest span plus look-ahead of a built-in finding that may contain whitespace: the look-behind's minimum."""
LONG_TOKEN_CHARS: Final = 20_480
"""A run of non-whitespace up to this long is never split by the cut (a JWT is at most 16006)."""
# The learned layer's harm categories as finding types (prompt_attack is not scored on output).
_HARM_TYPES: Final = frozenset(t for name, t in CATEGORY_TYPES.items() if name != "prompt_attack")
_PLACEHOLDER_SLACK: Final = 8  # "[ EMAIL_1 ]": the spellings the restore step accepts add a few spaces
_MIN_SCAN_CHARS: Final = 16  # without a new word boundary, new characters before a scan is worth its fixed cost
_SCAN_GROWTH: Final = 8  # a scan waits for 1/8 of the unreleased tail in new text...
_LOOK_BEHIND_SHARE: Final = 64  # ...plus 1/64 of the look-behind it rescans: linear total cost
_RELEASED_SHARE: Final = 1024  # ...and for 1/1024 of what was released: O(1024 log n) scans for a long answer
_SPACE: Final = " \t\n\r\f"  # RE2's \s, the detectors' whitespace: "\v" can sit inside a secret value
_NON_SPACE_RUN = safe_regex.compile(r"[^ \t\n\r\f]+")
_SPACE_RUN = safe_regex.compile(r"[ \t\n\r\f]+")
_WORD = safe_regex.compile_backtracking(
    r"\w+", needs="Unicode word characters, exactly as leakage.overlap_leak splits words"
)
_SHINGLE_WORDS: Final = 5  # leakage's n-gram length
_MASKING: Final = frozenset({Action.REDACT, Action.PSEUDONYMIZE})

# -- the risk anchors (module docstring, "What is held back"); distances in collapsed characters --
# Digits joined by up to three other characters: every numeric shape the PII detectors read, with
# their separators (" -()/:+.", the obfuscated "._/\\", newlines) and a NANP ") " between groups.
_DIGIT_CLUSTER = safe_regex.compile(r"[0-9](?:[^0-9a-z]{0,3}[0-9])*")
_NUMBER_REACH: Final = 48  # next group, phone context after, a context phrase starting within 30
_CONTEXT_GAP: Final = 34  # _CONTEXT_BEFORE_CHARS (30) plus a driver licence's letter suffix ("-AB")
_KEY_REACH: Final = 112  # phrase (<= 20) + _CONTEXT_AFTER_CHARS (40) + a candidate after it (<= 38) + 2
_IBAN_REACH: Final = 64  # after "GB82": up to 30 alphanumerics in spaced groups (59), then 2 to decide
_NUMBER_LINK: Final = 24  # "12th of September, 2024": a date's day and year hold each other
_PEM_REACH: Final = 80  # "-----BEGIN ... PRIVATE KEY BLOCK-----" is at most 72
# The first word of every context phrase that makes a number *before* it a finding (pii_detectors'
# _SSN/_PASSPORT/_DRIVER_LICENSE/_DOB_CONTEXT); True where the phrase starts with \b.
_CONTEXT_KEYS: Final = (
    ("ss", True),
    ("social", False),
    ("tin", True),
    ("passport", False),
    ("driv", False),
    ("licen", False),
    ("dl", True),
    ("born", True),
    ("birth", True),
    ("dob", True),
    ("d.o.b", True),
)
_LONGEST_KEY: Final = max(len(key) for key, _ in _CONTEXT_KEYS)
_EMAIL_LOCAL_MARKS: Final = frozenset("._%+-0123456789")  # a bare "at" joins only after one of these
_BRACKETS: Final = frozenset("[](){}<>")
# The pieces of a bracketed at/dot ("[at]", "( dot )", "john[at]example") as a word may hold them.
_BRACKET_CONNECTOR = safe_regex.compile(
    r"[\[({<](?:at|dot|@|\.)?$|^(?:at|dot|@|\.)?[\])}>]|[\[({<](?:at|dot|@|\.)[\])}>]"
)


def hold_back_chars(policy: GuardPolicy, vault: PseudonymVault | None = None) -> int:
    """The window under `policy`: the look-behind each scan keeps, and the reach of an unclosed `[`."""
    window = SPACED_SHAPE_REACH
    if policy.detector_enabled("deny_list"):
        terms = [*policy.denied_words, *(k for keywords in policy.denied_topics.values() for k in keywords)]
        window = max(window, *(len(canonical_term(t)) + 1 for t in terms)) if terms else window
    if vault is not None and len(vault):
        window = max(window, *(len(p) + _PLACEHOLDER_SLACK for p in vault.placeholders()))
    return window


@dataclass(frozen=True, slots=True)
class Release:
    """Text now safe to send (redacted, pseudonyms restored); `blocked`: end the stream, content_filter."""

    text: str
    blocked: bool = False
    blocked_by: BlockedBy | None = None


@dataclass(frozen=True, slots=True)
class StreamScan:
    """What the guard scanned, for the audit record (counts only, never text)."""

    chars_received: int
    chars_scanned: int  # through the engine while streaming, look-behind included (the final pass excluded)
    scans: int
    hold_back_chars: int
    buffered_reason: str | None  # why nothing streamed, if so
    diverged: bool  # the final pass disagreed with what was already released (then the stream is blocked)
    max_held_chars: int = 0  # the most characters received but not yet released at any point


@dataclass(frozen=True, slots=True)
class FinalRelease(Release):
    """The last release plus the non-streamed verdict for the whole completion and the scan counts."""

    verdict: OutputVerdict | None = None
    scan: StreamScan | None = None


def _blocked_by(blocks: Sequence[Finding]) -> BlockedBy:
    # the engine's choice of the finding to name: highest score, then type, then position
    top = min(blocks, key=lambda f: (-f.score, f.type, f.start))
    return BlockedBy(top.type, top.detector, Direction.OUTPUT)


def _word_char(char: str) -> bool:
    """The deny list's word characters (\\pL\\pN_): a denied phrase cannot start right after one."""
    return char.isalnum() or char == "_"


def _ascii_word_char(char: str) -> bool:
    """RE2's \\b word characters (ASCII)."""
    return char.isascii() and (char.isalnum() or char == "_")


def _could_end_local_part(word: str) -> bool:
    """Whether `word` could be the local part before a bare "at" (obfuscated_pii's English-word rule)."""
    return any(char in _EMAIL_LOCAL_MARKS or char.isdigit() for char in word)


def _word_start(starts: list[int], ends: list[int], position: int) -> int:
    """The start of the word holding `position`; inside a run too long to be held whole, `position` itself."""
    word = bisect.bisect_right(starts, position) - 1
    return starts[word] if ends[word] - starts[word] <= LONG_TOKEN_CHARS else position


def _connector(word: str, before: str, growing: bool) -> bool:
    """Whether `word` can join the words around it into one obfuscated e-mail address.

    `before` is the word before it; `growing`: `word` is the last one and may still get longer.
    """
    if "@" in word or word in ("dot", "."):
        return True
    if word == "at" or (growing and "at".startswith(word)):
        return _could_end_local_part(before)
    if growing and "dot".startswith(word):
        return True
    if not _BRACKETS.isdisjoint(word):
        return growing or _BRACKET_CONNECTOR.search(word) is not None
    return False


class _RiskAnchors:
    """Where in the unreleased tail a finding could still be forming (module docstring, rules 1-5)."""

    __slots__ = ("_bracket_reach", "_longest_term", "_term_prefixes")

    def __init__(self, terms: Iterable[str], bracket_reach: int | None) -> None:
        """`terms`: canonical denied phrases; `bracket_reach`: None when there are no pseudonyms."""
        self._term_prefixes: set[str] = set()
        self._longest_term = 0
        for term in terms:
            self._longest_term = max(self._longest_term, len(term))
            self._term_prefixes.update(term[:size] for size in range(1, len(term) + 1))
        self._bracket_reach = bracket_reach

    def limit(self, text: str) -> int:
        """The offset in `text` (the unreleased tail) from which a finding could still be forming."""
        normalized = normalize(text)
        lowered = TextView(normalized.text).lowered
        collapsed = _SPACE_RUN.sub(" ", lowered)
        starts: list[int] = []
        ends: list[int] = []
        for m in _NON_SPACE_RUN.finditer(collapsed):
            starts.append(m.start())
            ends.append(m.end())
        if not starts:
            return len(text)
        anchor = min(
            self._last_words(collapsed, starts, ends),
            self._numbers(collapsed, starts, ends),
            self._pem(collapsed, starts, ends),
            self._denied_phrase(collapsed),
            self._bracket(collapsed),
        )
        # Back to the caller's offsets: the collapsed text has the same words, in the same order.
        word = bisect.bisect_right(starts, anchor) - 1
        folded_word = next(itertools.islice(_NON_SPACE_RUN.finditer(lowered), word, None))
        folded = folded_word.start() + (anchor - starts[word])
        return normalized.to_original(folded, folded)[0]

    @staticmethod
    def _last_words(collapsed: str, starts: list[int], ends: list[int]) -> int:
        """Rule 1: the last word, and the words joined to it by e-mail connectors."""
        last = len(starts) - 1
        growing = ends[last] == len(collapsed)
        if ends[last] - starts[last] > LONG_TOKEN_CHARS:
            return len(collapsed)  # not held whole: the cut keeps the window at its end (_outside_token)
        first = last
        while first > 0:
            word = collapsed[starts[first] : ends[first]]
            before = collapsed[starts[first - 1] : ends[first - 1]]
            before_that = collapsed[starts[first - 2] : ends[first - 2]] if first > 1 else ""
            if not (_connector(word, before, growing and first == last) or _connector(before, before_that, False)):
                break
            first -= 1
        return starts[first]

    @staticmethod
    def _numbers(collapsed: str, starts: list[int], ends: list[int]) -> int:
        """Rule 2: the word before the first digit run that more text could still make (part of) a finding."""
        size = len(collapsed)
        anchor = size
        clusters = [m.span() for m in _DIGIT_CLUSTER.finditer(collapsed)]
        next_start, next_live = size, False
        for start, end in reversed(clusters):
            if not next_live and end + _KEY_REACH + _CONTEXT_GAP <= size:
                break  # settled, and so is every run before it (none is chained to a live one)
            settle = end + _NUMBER_REACH
            if start >= 2 and collapsed[start - 2].isalpha() and collapsed[start - 1].isalpha():
                settle = end + _IBAN_REACH
            if settle <= size:
                settle = max(settle, _context_settle(collapsed, end))
            word = bisect.bisect_right(starts, start) - 1
            if ends[word] - starts[word] > LONG_TOKEN_CHARS:
                # Inside a run too long to hold whole: no spaced shape, and no finding longer than an IBAN.
                live = settle > size
                if live:
                    anchor = max(start, end - _IBAN_REACH)
                next_start, next_live = start, False
                continue
            live = settle > size or (next_live and next_start - end <= _NUMBER_LINK)
            if live:
                anchor = starts[max(0, word - 1)]
            next_start, next_live = start, live
        return anchor

    @staticmethod
    def _pem(collapsed: str, starts: list[int], ends: list[int]) -> int:
        """Rule 3: the word of a `-----` that may still open a private-key header."""
        size = len(collapsed)
        dashes = collapsed.find("-----", max(0, size - _PEM_REACH + 1))
        if dashes < 0:
            return size
        return _word_start(starts, ends, dashes)

    def _denied_phrase(self, collapsed: str) -> int:
        """Rule 4: the earliest word start from which the rest is a prefix of a denied phrase."""
        size = len(collapsed)
        if not self._term_prefixes:
            return size
        for start in range(max(0, size - self._longest_term), size):
            if collapsed[start] == " " or (start > 0 and _word_char(collapsed[start - 1])):
                continue
            if collapsed[start:] in self._term_prefixes:
                return start
        return size

    def _bracket(self, collapsed: str) -> int:
        """Rule 5: an unclosed `[` that may still become an echoed placeholder."""
        size = len(collapsed)
        if self._bracket_reach is None:
            return size
        bracket = collapsed.rfind("[")
        if bracket < 0 or collapsed.find("]", bracket) >= 0 or size - bracket > self._bracket_reach:
            return size
        return bracket


def _context_settle(collapsed: str, end: int) -> int:
    """Where a number ending at `end` is settled with respect to a context phrase after it (0: none)."""
    segment = collapsed[end : end + _CONTEXT_GAP + _LONGEST_KEY]
    settle = 0
    for key, starts_word in _CONTEXT_KEYS:
        for offset in find_all(segment, key):
            if offset > _CONTEXT_GAP:
                break
            at = end + offset
            if starts_word and at > 0 and _ascii_word_char(collapsed[at - 1]):
                continue
            settle = max(settle, at + _KEY_REACH)
    return settle


class _PromptOverlap:
    """`leakage.overlap_leak`'s whole-text score, kept up to date word by word."""

    __slots__ = ("_denominator", "_matched", "_recent", "_system_prompt")

    def __init__(self, system_prompt: str) -> None:
        self._system_prompt = system_prompt
        self._recent: deque[str] = deque(maxlen=_SHINGLE_WORDS)
        self._matched: set[str] = set()
        self._denominator = 0

    def add(self, raw: str) -> float:
        """Feed committed text (cut between words); returns the score over everything fed so far."""
        for word in _WORD.findall(normalize(raw).text):
            self._recent.append(word.lower())
            if len(self._recent) < _SHINGLE_WORDS:
                continue
            shingle = " ".join(self._recent)
            if shingle in self._matched:
                continue
            # One 5-gram scores 1/denominator if it is one of the prompt's: the public API answers both.
            single = overlap_leak(shingle, self._system_prompt)
            if single is not None:
                self._matched.add(shingle)
                self._denominator = round(1.0 / single.score)
        if not self._matched:
            return 0.0
        return min(1.0, len(self._matched) / self._denominator)


class StreamingOutputGuard:
    """Guard one streamed completion; build it with the arguments `GuardEngine.guard_output` takes."""

    def __init__(
        self,
        engine: GuardEngine,
        vault: PseudonymVault | None = None,
        system_prompt: str = "",
        context: Sequence[str] = (),
        *,
        query: str = "",
    ) -> None:
        self._engine = engine
        self._policy = policy = engine.policy
        self._vault = vault if vault is not None else PseudonymVault()
        self._system_prompt = system_prompt
        self._context = tuple(context)
        self._query = query
        # Continues the request's numbering and never collides with a pseudonym, as guard_output's does.
        self._allocator = self._vault.allocator.fork(self._vault.placeholders())
        self.hold_back = hold_back_chars(policy, self._vault)
        self._buffered_reason = self._whole_text_reason()
        leak_check = policy.system_prompt_leak_check and bool(system_prompt)
        self._overlap = _PromptOverlap(system_prompt) if leak_check else None
        terms: list[str] = []
        if policy.detector_enabled("deny_list"):
            keywords = [k for topic in policy.denied_topics.values() for k in topic]
            terms = [term for term in map(canonical_term, [*policy.denied_words, *keywords]) if term]
        self._anchors = _RiskAnchors(terms, self.hold_back if len(self._vault) else None)

        self._pieces: list[str] = []  # the whole completion, for the final pass
        self._tail = ""  # text from absolute offset _base on: look-behind plus unreleased
        self._incoming: list[str] = []  # deltas not yet appended to _tail (joined once per scan, not per delta)
        self._base = 0
        self._received = 0
        self._released = 0  # absolute offset: everything before it is decided
        self._scanned_to = 0
        self._boundary = False  # a word boundary arrived since the last scan
        self._ends_in_space = False  # the last delta ended in whitespace
        self._scan_gap = 1  # new characters the next scan at a word boundary waits for
        self._max_held = 0
        self._released_text: list[str] = []
        # non-whitespace runs of released text, newest last, covering >= hold_back non-space characters
        self._behind: deque[tuple[int, int]] = deque()
        self._behind_chars = 0
        self._scans = 0
        self._chars_scanned = 0
        self._blocked_by: BlockedBy | None = None
        self._blocked = False
        self._finished = False
        # The learned layer's current window: the text from _window_start on, not yet joined.
        self._window_parts: list[str] = []
        self._window_size = 0
        self._window_start = 0

    # -- public API -------------------------------------------------------------------------------

    @property
    def blocked(self) -> bool:
        return self._blocked

    def feed(self, delta: str) -> Release:
        """Take the next delta; return what may be sent now (often "", while the tail is held)."""
        if self._finished:
            raise RuntimeError("feed() after finish()")
        if self._blocked:
            return Release("", True, self._blocked_by)
        if not delta:
            return Release("")
        self._pieces.append(delta)
        self._incoming.append(delta)
        self._received += len(delta)
        too_large_action = self._policy.action_for(FindingType.OUTPUT_TOO_LARGE, Direction.OUTPUT)
        if self._received > self._policy.max_output_chars and too_large_action is Action.BLOCK:
            return self._block([Finding(FindingType.OUTPUT_TOO_LARGE, 0, self._received, 1.0, "size_limit")])
        if self._buffered_reason is not None:
            release = Release("")  # nothing is sent before finish(), which checks the whole text
        else:
            release = self._harm_windows(delta) or self._maybe_scan(delta)
        self._max_held = max(self._max_held, self._received - self._released)
        return release

    def finish(self) -> FinalRelease:
        """The completion ended: run the non-streamed check on it whole and release the rest, or block."""
        if self._finished:
            raise RuntimeError("finish() called twice")
        self._finished = True
        text = "".join(self._pieces)
        self._pieces = [text]
        verdict = self._engine.guard_output(text, self._vault, self._system_prompt, self._context, query=self._query)
        released = "".join(self._released_text)
        diverged = False
        if self._blocked:
            final = FinalRelease("", True, self._blocked_by, verdict)
        elif verdict.blocked:
            final = FinalRelease("", True, verdict.blocked_by, verdict)
        elif verdict.text.startswith(released):
            final = FinalRelease(verdict.text[len(released) :], False, None, verdict)
        else:
            # Already sent something the policy would not have shown: stop here rather than send more.
            diverged = True
            final = FinalRelease("", True, verdict.blocked_by, verdict)
        self._blocked = final.blocked
        scan = StreamScan(
            chars_received=self._received,
            chars_scanned=self._chars_scanned,
            scans=self._scans,
            hold_back_chars=self.hold_back,
            buffered_reason=self._buffered_reason,
            diverged=diverged,
            max_held_chars=self._max_held,
        )
        return FinalRelease(final.text, final.blocked, final.blocked_by, verdict, scan)

    # -- internals --------------------------------------------------------------------------------

    def _whole_text_reason(self) -> str | None:
        policy = self._policy
        if self._engine.has_extra_detectors:
            return "pluggable detectors"
        if self._context and policy.detector_enabled("grounding"):
            for finding_type in (FindingType.GROUNDING, FindingType.RELEVANCE):
                if policy.action_for(finding_type, Direction.OUTPUT) is Action.BLOCK:
                    return f"{finding_type} blocks"
        leak_action = policy.action_for(FindingType.SYSTEM_PROMPT_LEAK, Direction.OUTPUT)
        if policy.system_prompt_leak_check and leak_action in _MASKING:
            return "SYSTEM_PROMPT_LEAK is masked"
        return None

    def _maybe_scan(self, delta: str) -> Release:
        """Scan at a word boundary (text may be releasable) or after enough text without one."""
        # A word boundary: whitespace, or the first character of a word, which settles the word before it.
        starts_word = self._ends_in_space and delta[0] not in _SPACE
        self._boundary = self._boundary or starts_word or any(space in delta for space in _SPACE)
        self._ends_in_space = delta[-1] in _SPACE
        pending = self._received - self._scanned_to
        if self._boundary and pending >= self._scan_gap:
            return self._scan()
        if pending >= max(_MIN_SCAN_CHARS, self._scan_gap, (self._received - self._base) // _SCAN_GROWTH):
            return self._scan()
        return Release("")

    def _scan(self) -> Release:
        self._tail += "".join(self._incoming)
        self._incoming.clear()
        try:
            return self._release()
        finally:
            # The next scan waits for new text in proportion to what it will rescan: linear total cost.
            self._scanned_to = self._received
            self._boundary = False
            look_behind = self._released - self._base
            unreleased = self._received - self._released
            self._scan_gap = max(
                1,
                look_behind // _LOOK_BEHIND_SHARE + unreleased // _SCAN_GROWTH,
                self._released // _RELEASED_SHARE,
            )

    def _release(self) -> Release:
        released = self._released
        limit = released + self._anchors.limit(self._tail[released - self._base :])
        if self._outside_token(limit) <= released:
            return Release("")  # the anchors hold everything: no finding can change that
        tail, base = self._tail, self._base
        region_start = base  # the tail is kept from the look-behind on (see _commit)
        region = tail[region_start - base :]
        verdict = self._engine.guard_output(region)
        self._scans += 1
        self._chars_scanned += len(region)

        decisions = [
            Decision(
                Finding(
                    d.finding.type,
                    d.finding.start + region_start,
                    d.finding.end + region_start,
                    d.finding.score,
                    d.finding.detector,
                ),
                d.action,
            )
            for d in verdict.decisions
            if d.finding.type != FindingType.OUTPUT_TOO_LARGE
        ]
        decisions = [d for d in decisions if d.finding.start >= released]  # the rest is already decided
        cut = self._cut(limit, decisions)
        if cut <= released:
            return Release("")

        committed = [d for d in decisions if d.finding.end <= cut]
        blocks = [d.finding for d in committed if d.action is Action.BLOCK]
        if blocks:
            return self._block(blocks)
        raw = tail[released - base : cut - base]
        if self._overlap is not None:
            score = self._overlap.add(raw)
            if score > 0.0 and score >= self._policy.system_prompt_leak_threshold:
                leak = Finding(FindingType.SYSTEM_PROMPT_LEAK, released, cut, score, "leak.overlap")
                if self._policy.action_for(FindingType.SYSTEM_PROMPT_LEAK, Direction.OUTPUT) is Action.BLOCK:
                    return self._block([leak])

        to_mask = resolve_overlaps(
            d.finding
            for d in committed
            if d.action in _MASKING or (d.action is Action.BLOCK and is_entity(d.finding.type))
        )
        replacements = [
            (
                f.start - released,
                f.end - released,
                self._allocator.placeholder(f.type, raw[f.start - released : f.end - released]),
            )
            for f in to_mask
        ]
        text = self._vault.restore(apply_replacements(raw, replacements))
        self._commit(cut)
        self._released_text.append(text)
        return Release(text)

    def _harm_windows(self, delta: str) -> Release | None:
        """A block when a window of the completion that is now complete scores harmful.

        The learned layer scores a long text window by window (`WINDOW_CHARS` long, every
        `WINDOW_STEP` characters; the worst counts), so a complete window scores here exactly as in
        the non-streamed check of the whole completion: one that blocks here blocks there too, and
        the stream stops at most a window after harmful text began instead of at its end. A window
        still open is not judged: a shorter text scores sharper ("kill the process" alone reads as
        violence), and judging it would end streams the non-streamed answer allows. Each character
        is scored in at most two windows, so the cost stays linear.
        """
        self._window_parts.append(delta)
        self._window_size += len(delta)
        if self._window_size < WINDOW_CHARS:
            return None
        pending = "".join(self._window_parts)  # joined once per window, not per delta
        while len(pending) >= WINDOW_CHARS:
            window, start = pending[:WINDOW_CHARS], self._window_start
            pending = pending[WINDOW_STEP:]
            self._window_start += WINDOW_STEP
            verdict = self._engine.guard_output(window)
            harmful = [
                dataclasses.replace(d.finding, start=d.finding.start + start, end=d.finding.end + start)
                for d in verdict.decisions
                if d.action is Action.BLOCK and d.finding.type in _HARM_TYPES
            ]
            if harmful:
                return self._block(harmful)
        self._window_parts, self._window_size = [pending], len(pending)
        return None

    def _cut(self, cut: int, decisions: Sequence[Decision]) -> int:
        """Move the cut back until it is outside every token and every finding it could split or end."""
        moved = True
        while moved:
            moved = False
            outside = self._outside_token(cut)
            if outside != cut:
                cut, moved = outside, True
            for decision in decisions:
                finding = decision.finding
                # Ending at the cut counts: a finding that ends in whitespace (a PEM body) may go on.
                if finding.start < cut <= finding.end:
                    cut, moved = finding.start, True
        return max(cut, self._released)

    def _outside_token(self, cut: int) -> int:
        """`cut`, or the start of the run of non-whitespace it would split (or end while it may still grow)."""
        tail, base, released, total = self._tail, self._base, self._released, self._received
        if cut <= released:
            return released
        if tail[cut - base - 1] in _SPACE or (cut < total and tail[cut - base] in _SPACE):
            return cut
        low = max(released, cut - LONG_TOKEN_CHARS)
        space = max(tail.rfind(c, low - base, cut - base) for c in _SPACE)
        if space >= 0:
            return space + base + 1
        if low == released:
            return released
        # Longer than any token-shaped finding: split it, but never closer to the end than the window.
        return min(cut, total - self.hold_back)

    def _commit(self, cut: int) -> None:
        """Everything before `cut` is released: keep only the look-behind and the unreleased tail."""
        base = self._base
        for m in _NON_SPACE_RUN.finditer(self._tail, self._released - base, cut - base):
            start, end = m.start() + base, m.end() + base
            if self._behind and self._behind[-1][1] == start:  # a token cut in two (longer than LONG_TOKEN_CHARS)
                previous_start, previous_end = self._behind.pop()
                self._behind_chars -= previous_end - previous_start
                start = previous_start
            self._behind.append((start, end))
            self._behind_chars += end - start
        while self._behind and self._behind_chars - (self._behind[0][1] - self._behind[0][0]) >= self.hold_back:
            first_start, first_end = self._behind.popleft()
            self._behind_chars -= first_end - first_start
        self._released = cut
        keep_from = self._behind[0][0] if self._behind else cut
        keep_from = min(keep_from, cut)
        if keep_from > base:
            self._tail = self._tail[keep_from - base :]
            self._base = keep_from

    def _block(self, blocks: Sequence[Finding]) -> Release:
        self._blocked = True
        self._blocked_by = _blocked_by(blocks)
        self._tail = ""
        self._incoming.clear()
        return Release("", True, self._blocked_by)
