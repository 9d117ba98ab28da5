"""The output guard on a token stream: the same policy as `GuardEngine.guard_output`, released as it is safe.

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
more text arrives. Three rules place the cut, each from the end of the text received so far:

1. **The window** (:func:`hold_back_chars`): the last ``SPACED_SHAPE_REACH`` (128) characters are
   held, or more if the policy's longest denied phrase or the request's longest pseudonym
   placeholder is longer. 128 covers the built-in shapes that may contain spaces together with the
   look-ahead that decides them: a spaced card number (45) or IBAN (72), a PEM header (72), a date,
   a phone number and its trailing context word, a 9-digit number followed within 30 characters by
   "social security" (the context rules of ``pii_detectors``).
2. **Whole tokens**: the cut never splits a run of non-whitespace characters shorter than
   ``LONG_TOKEN_CHARS`` (20480): e-mail addresses (up to 640), API keys and GitHub tokens (up to
   262), JWTs (up to 16006), bearer values, canaries and ``[EMAIL_12]`` placeholders contain no
   whitespace, so however long they are they are held whole until a space ends them.
3. **Findings**: a finding the engine reports across the cut moves the cut to its start (an open
   PEM block runs to the end of the text, so it is held until its footer arrives), and with
   pseudonyms to restore an unclosed ``[`` moves it too (``[ EMAIL_1 ]`` has spaces).

Each scan covers only the unreleased tail plus a look-behind of at least the window's length in
non-whitespace characters (so a denied phrase padded with spaces is still seen whole), and scans
are spaced so that their size grows at most by a constant factor over the new text: the total cost
is linear in the completion. Placeholders are numbered by one allocator for the whole stream, in
text order, as the engine numbers them for the whole text.

What blocks mid-stream, and what only at ``finish()``
-----------------------------------------------------
Mid-stream (nothing of the blocked part is released): any blocking finding in the text about to be
released (denied words and topics, a canary, a PII or secret type the policy blocks), the
system-prompt overlap score (tracked incrementally over word 5-grams, exactly the whole-text
ratio), and the size limit (``max_output_chars``).

At ``finish()`` the engine runs once more on the whole completion, the non-streamed
``guard_output`` call itself: its verdict is the audit record's, scores included (grounding,
relevance, system-prompt leak). If it blocks, the held tail is not released. If it would have
shown the client something other than what was already released (a shape outside the window
above, e.g. a denied phrase with runs of spaces that the policy redacts rather than blocks), the
stream ends blocked and ``scan.diverged`` is set: the client never gets text the policy would not
have shown after the point of divergence, but what it already got cannot be recalled.

Checks that need the whole completion to decide the *text* are not streamed: with pluggable
detectors (a service call per scan would be unbounded), a policy that blocks on GROUNDING or
RELEVANCE (opt-in; the default only scores them) when grounding context is given, or a
system-prompt leak that the policy redacts instead of blocking (its span runs from the first to the
last reproduced 5-gram), the guard holds the whole completion and releases it at ``finish()``:
nothing streams, but the policy holds exactly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from llmops.domain.guard import safe_regex
from llmops.domain.guard.deny_list import canonical_term
from llmops.domain.guard.engine import GuardEngine, OutputVerdict
from llmops.domain.guard.findings import Action, BlockedBy, Decision, Direction, Finding, FindingType, is_entity
from llmops.domain.guard.leakage import overlap_leak
from llmops.domain.guard.normalization import normalize
from llmops.domain.guard.policy import GuardPolicy
from llmops.domain.guard.redaction import PseudonymVault, apply_replacements, resolve_overlaps

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
"""Longest span plus look-ahead of a built-in finding that may contain whitespace (see the module docstring)."""
LONG_TOKEN_CHARS: Final = 20_480
"""A run of non-whitespace up to this long is never split by the cut (a JWT is at most 16006)."""
_PLACEHOLDER_SLACK: Final = 8  # "[ EMAIL_1 ]": the spellings the restore step accepts add a few spaces
_MIN_SCAN_CHARS: Final = 16  # new characters before a scan is worth its fixed cost
_SCAN_GROWTH: Final = 8  # a scan waits for 1/8 of its size in new text: linear total cost
_SPACE: Final = " \t\n\r\f\v"
_MASKING: Final = frozenset({Action.REDACT, Action.PSEUDONYMIZE})
_NON_SPACE_RUN = safe_regex.compile(r"[^ \t\n\r\f\v]+")
_WORD = safe_regex.compile_backtracking(
    r"\w+", needs="Unicode word characters, exactly as leakage.overlap_leak splits words"
)
_SHINGLE_WORDS: Final = 5  # leakage's n-gram length


def hold_back_chars(policy: GuardPolicy, vault: PseudonymVault | None = None) -> int:
    """The window the stream holds back under `policy`: the longest finding that may contain spaces."""
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


@dataclass(frozen=True, slots=True)
class FinalRelease(Release):
    """The last release plus the non-streamed verdict for the whole completion and the scan counts."""

    verdict: OutputVerdict | None = None
    scan: StreamScan | None = None


def _blocked_by(blocks: Sequence[Finding]) -> BlockedBy:
    # the engine's choice of the finding to name: highest score, then type, then position
    top = min(blocks, key=lambda f: (-f.score, f.type, f.start))
    return BlockedBy(top.type, top.detector, Direction.OUTPUT)


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
        self._restore_brackets = len(self._vault) > 0

        self._pieces: list[str] = []  # the whole completion, for the final pass
        self._tail = ""  # text from absolute offset _base on: look-behind plus unreleased
        self._base = 0
        self._received = 0
        self._released = 0  # absolute offset: everything before it is decided
        self._scanned_to = 0
        self._released_text: list[str] = []
        # non-whitespace runs of released text, newest last, covering >= hold_back non-space characters
        self._behind: deque[tuple[int, int]] = deque()
        self._behind_chars = 0
        self._scans = 0
        self._chars_scanned = 0
        self._blocked_by: BlockedBy | None = None
        self._blocked = False
        self._finished = False

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
        self._tail += delta
        self._received += len(delta)
        too_large_action = self._policy.action_for(FindingType.OUTPUT_TOO_LARGE, Direction.OUTPUT)
        if self._received > self._policy.max_output_chars and too_large_action is Action.BLOCK:
            return self._block([Finding(FindingType.OUTPUT_TOO_LARGE, 0, self._received, 1.0, "size_limit")])
        if self._buffered_reason is not None:
            return Release("")
        region_start = self._base  # the tail is kept from the look-behind on (see _commit)
        pending = self._received - self._scanned_to
        if pending < max(_MIN_SCAN_CHARS, (self._received - region_start) // _SCAN_GROWTH):
            return Release("")
        return self._scan(region_start)

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

    def _scan(self, region_start: int) -> Release:
        tail, base, released, total = self._tail, self._base, self._released, self._received
        region = tail[region_start - base :]
        verdict = self._engine.guard_output(region)
        self._scans += 1
        self._chars_scanned += len(region)
        self._scanned_to = total

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
        cut = self._cut(total - self.hold_back, decisions)
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

    def _cut(self, cut: int, decisions: Sequence[Decision]) -> int:
        """Move the cut back until it is outside every token, bracket and finding it could split."""
        tail, base, released = self._tail, self._base, self._released
        if cut <= released:
            return released
        if tail[cut - base - 1] not in _SPACE and tail[cut - base] not in _SPACE:
            low = max(released, cut - LONG_TOKEN_CHARS)
            space = max(tail.rfind(c, low - base, cut - base) for c in _SPACE)
            if space >= 0:
                cut = space + base + 1
            elif low == released:
                return released
        if self._restore_brackets:
            low = max(released, cut - self.hold_back)
            bracket = tail.rfind("[", low - base, cut - base)
            if bracket >= 0 and tail.find("]", bracket, cut - base) < 0:
                cut = bracket + base
        moved = True
        while moved:
            moved = False
            for decision in decisions:
                finding = decision.finding
                if finding.start < cut < finding.end:
                    cut = finding.start
                    moved = True
        return max(cut, released)

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
        return Release("", True, self._blocked_by)
