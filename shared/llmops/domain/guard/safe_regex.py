"""The one way to compile a regular expression that sees untrusted text: linear time, guaranteed.

THE RULE (tests/unit/domain/guard/test_safe_regex_rule.py enforces it in `make test`):

* Every pattern that is run over text a caller, a model or a document supplied is compiled with
  `compile()` below, never with ``re.compile`` / ``re.search`` / ``re.sub``... The modules that face
  untrusted text (``domain/guard/*``, ``domain/prompts.py``, ``domain/token_estimate.py``,
  ``application/openai_schema.py``, the adapters' ``transformation.py``...) do not import ``re``.
* `compile()` uses RE2 (google-re2): matching time is linear in the text, whatever the pattern.
  RE2 has no look-around and no backreferences. Rewrite such patterns instead of reaching for
  Python's ``re``: match the core, then check the boundary in Python on the characters around the
  match (see `preceded_by` / `followed_by`), or compare the captured groups in Python.
* `compile_backtracking()` uses Python's ``re`` and is only for a pattern that needs a feature RE2
  lacks. It must be a module-level constant (so the test sees it at import) and pass regexploit's
  static ReDoS analysis, which the same test runs over every pattern registered here. Say in
  `needs` which feature it needs.

RE2 differences to keep in mind when moving a pattern over (the test suites caught each):

* ``\\d``, ``\\w``, ``\\s`` and ``\\b`` are ASCII in RE2 (Unicode in Python ``re``). The guard scans
  normalized text (full-width and other-script digits folded to ASCII), so ``\\d`` is what is meant;
  where Unicode letters are meant, write ``\\pL`` / ``\\p{L}``, ``\\pN``...
* Counted repetition is at most {1000}: bound longer runs in Python after the match.
* ``$`` is end of text only (Python also matches before a final newline); ``\\Z`` is spelled ``\\z``.
* A lone surrogate (possible in a ``str`` decoded from JSON) is matched as ``?``.

``pos``/``endpos`` behave as in Python's ``re``: ``endpos`` truncates the text; the characters before
``pos`` are context for ``\\b``. The UTF-8 encoding of the last text seen is cached (keyed on the
object's identity), so many calls over windows of one long text cost O(window) each, not O(text).
"""

from __future__ import annotations

import re
import sys
import warnings
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, Literal, TypeVar, overload

import re2  # type: ignore[import-untyped]

__all__ = [
    "ASCII",
    "DOTALL",
    "IGNORECASE",
    "MULTILINE",
    "LazyPattern",
    "Match",
    "Pattern",
    "RegisteredPattern",
    "UnsafePatternError",
    "compile",
    "compile_backtracking",
    "escape",
    "followed_by",
    "preceded_by",
    "registered_patterns",
]

IGNORECASE: Final = re.IGNORECASE
MULTILINE: Final = re.MULTILINE
DOTALL: Final = re.DOTALL
ASCII: Final = re.ASCII  # accepted for Python-re patterns; RE2 classes are ASCII anyway
_SUPPORTED_FLAGS: Final = IGNORECASE | MULTILINE | DOTALL | ASCII

S = TypeVar("S", str, bytes)

_RE2: Any = re2._re2
_UNANCHORED: Final = _RE2.RE2.Anchor.UNANCHORED
_ANCHOR_START: Final = _RE2.RE2.Anchor.ANCHOR_START
_ANCHOR_BOTH: Final = _RE2.RE2.Anchor.ANCHOR_BOTH
_NO_SPAN: Final = (-1, -1)
_CHECKPOINT: Final = 512  # characters between two known (char, byte) offsets of a non-ASCII text


class UnsafePatternError(ValueError):
    """The pattern cannot run in linear time as written (RE2 rejected it): rewrite it."""


@dataclass(frozen=True, slots=True)
class RegisteredPattern:
    """A compiled pattern, for the rule's test: the engine and, for Python's re, the reason."""

    pattern: str | bytes
    flags: int
    engine: Literal["re2", "re"]
    needs: str  # the RE2-missing feature a Python-re pattern needs; "" for RE2


_REGISTRY: list[RegisteredPattern] = []
_REGISTRY_CAP: Final = 2000  # patterns compiled at run time (deny lists, region metadata) stop counting here


def registered_patterns() -> tuple[RegisteredPattern, ...]:
    return tuple(_REGISTRY)


def _register(entry: RegisteredPattern) -> None:
    if len(_REGISTRY) < _REGISTRY_CAP:
        _REGISTRY.append(entry)


def escape(literal: str) -> str:
    """A pattern matching `literal` exactly, in either engine (RE2's QuoteMeta)."""
    return str(re2.escape(literal))


def preceded_by(text: str, index: int, chars: str | frozenset[str]) -> bool:
    """Whether the character before `index` is one of `chars` (the look-behind RE2 lacks)."""
    return index > 0 and text[index - 1] in chars


def followed_by(text: str, index: int, chars: str | frozenset[str]) -> bool:
    """Whether the character at `index` (just after a match) is one of `chars` (the look-ahead)."""
    return index < len(text) and text[index] in chars


# -- the encoded form of the last text seen --------------------------------------------------------


class _Encoded:
    """A text as RE2 sees it (UTF-8), with char <-> byte offsets for non-ASCII text."""

    __slots__ = ("_byte_marks", "ascii", "data", "size", "string", "view")

    def __init__(self, string: str | bytes) -> None:
        self.string = string
        if isinstance(string, bytes):
            self.data = string
            self.ascii = True  # bytes patterns run in Latin-1 mode: one byte, one character
        else:
            self.data = string.encode("utf-8", "replace")
            self.ascii = len(self.data) == len(string)
        self.size = len(string)
        self.view = memoryview(self.data)
        self._byte_marks: list[int] | None = None

    def _marks(self) -> list[int]:
        # byte offset of character k * _CHECKPOINT, built once per non-ASCII text in C-speed steps
        if self._byte_marks is None:
            marks = [0]
            data = self.data
            for _ in range(self.size // _CHECKPOINT):
                marks.append(marks[-1] + _RE2.CharLenToBytes(data, marks[-1], _CHECKPOINT))
            self._byte_marks = marks
        return self._byte_marks

    def to_byte(self, char: int) -> int:
        if self.ascii:
            return char
        marks = self._marks()
        mark = char // _CHECKPOINT
        rest = char - mark * _CHECKPOINT
        return marks[mark] + (int(_RE2.CharLenToBytes(self.data, marks[mark], rest)) if rest else 0)

    def to_char(self, byte: int) -> int:
        if self.ascii:
            return byte
        marks = self._marks()
        mark = bisect_right(marks, byte) - 1
        return mark * _CHECKPOINT + int(_RE2.BytesToCharLen(self.data, marks[mark], byte))


_last: _Encoded | None = None
_previous: _Encoded | None = None


def _encoded(string: str | bytes) -> _Encoded:
    # Two entries: the guard alternates between a text and its lower-cased copy (or a window of it),
    # and one entry re-encoded the whole text at each switch.
    global _last, _previous  # a race only costs a re-encode: each entry is checked by identity
    last = _last
    if last is not None and last.string is string:
        return last
    previous = _previous
    if previous is not None and previous.string is string:
        _last, _previous = previous, last
        return previous
    encoded = _Encoded(string)
    _last, _previous = encoded, last
    return encoded


# -- match objects ---------------------------------------------------------------------------------


class Match(Generic[S]):
    """The subset of ``re.Match`` the project uses, with offsets into the string passed in."""

    __slots__ = ("_groupindex", "_spans", "endpos", "pos", "string")

    string: S
    pos: int
    endpos: int

    def __init__(
        self, string: S, pos: int, endpos: int, spans: tuple[tuple[int, int], ...], groupindex: Mapping[str, int]
    ) -> None:
        self.string = string
        self.pos = pos
        self.endpos = endpos
        self._spans = spans
        self._groupindex = groupindex

    def _index(self, group: int | str) -> int:
        index = self._groupindex[group] if isinstance(group, str) else group
        if not 0 <= index < len(self._spans):
            raise IndexError("no such group")
        return index

    # group 0 first: the common case skips the group lookup (these run once or twice per match)
    def span(self, group: int | str = 0) -> tuple[int, int]:
        return self._spans[0] if group == 0 else self._spans[self._index(group)]

    def start(self, group: int | str = 0) -> int:
        return self._spans[0][0] if group == 0 else self._spans[self._index(group)][0]

    def end(self, group: int | str = 0) -> int:
        return self._spans[0][1] if group == 0 else self._spans[self._index(group)][1]

    @overload
    def group(self, group: Literal[0] = 0, /) -> S: ...
    @overload
    def group(self, group: int | str, /) -> S | Any: ...
    def group(self, group: int | str = 0, /) -> S | Any:
        start, end = self._spans[0] if group == 0 else self._spans[self._index(group)]
        return None if start < 0 else self.string[start:end]

    def __getitem__(self, group: int | str) -> S | Any:
        return self.group(group)

    def groups(self, default: Any = None) -> tuple[S | Any, ...]:
        return tuple(default if start < 0 else self.string[start:end] for start, end in self._spans[1:])

    def groupdict(self, default: Any = None) -> dict[str, S | Any]:
        return {
            name: (self.group(index) if self.start(index) >= 0 else default) for name, index in self._groupindex.items()
        }

    @property
    def lastindex(self) -> int | None:
        best: int | None = None
        best_end = -1
        for index, (start, end) in enumerate(self._spans[1:], start=1):
            if start >= 0 and end >= best_end:
                best, best_end = index, end
        return best

    def __repr__(self) -> str:
        return f"<safe_regex.Match span={self.span()} match={self.group()!r}>"


# -- patterns --------------------------------------------------------------------------------------


class Pattern(Generic[S]):
    """The subset of ``re.Pattern`` the project uses. Build with `compile` / `compile_backtracking`."""

    __slots__ = ("engine", "flags", "groupindex", "groups", "pattern")

    pattern: S
    flags: int
    groups: int
    groupindex: Mapping[str, int]
    engine: Literal["re2", "re"]

    def _spans(self, anchor: Any, string: S, pos: int, endpos: int) -> tuple[tuple[int, int], ...] | None:
        raise NotImplementedError

    def _iter_spans(self, string: S, pos: int, endpos: int) -> Iterator[tuple[tuple[int, int], ...]]:
        raise NotImplementedError

    def _make(self, string: S, pos: int, endpos: int, spans: tuple[tuple[int, int], ...] | None) -> Match[S] | None:
        if spans is None:
            return None
        return Match(string, pos, endpos, spans, self.groupindex)

    @staticmethod
    def _bounds(string: S, pos: int, endpos: int) -> tuple[int, int]:
        size = len(string)
        return (pos if 0 <= pos <= size else (0 if pos < 0 else size)), (
            endpos if 0 <= endpos <= size else (0 if endpos < 0 else size)
        )

    def search(self, string: S, pos: int = 0, endpos: int = sys.maxsize) -> Match[S] | None:
        pos, endpos = self._bounds(string, pos, endpos)
        return self._make(string, pos, endpos, self._spans(_UNANCHORED, string, pos, endpos))

    def match(self, string: S, pos: int = 0, endpos: int = sys.maxsize) -> Match[S] | None:
        pos, endpos = self._bounds(string, pos, endpos)
        return self._make(string, pos, endpos, self._spans(_ANCHOR_START, string, pos, endpos))

    def fullmatch(self, string: S, pos: int = 0, endpos: int = sys.maxsize) -> Match[S] | None:
        pos, endpos = self._bounds(string, pos, endpos)
        return self._make(string, pos, endpos, self._spans(_ANCHOR_BOTH, string, pos, endpos))

    def finditer(self, string: S, pos: int = 0, endpos: int = sys.maxsize) -> Iterator[Match[S]]:
        pos, endpos = self._bounds(string, pos, endpos)
        groupindex = self.groupindex
        for spans in self._iter_spans(string, pos, endpos):
            yield Match(string, pos, endpos, spans, groupindex)

    def findall(self, string: S, pos: int = 0, endpos: int = sys.maxsize) -> list[Any]:
        pos, endpos = self._bounds(string, pos, endpos)
        found: list[Any] = []
        for spans in self._iter_spans(string, pos, endpos):
            if self.groups == 0:
                found.append(string[spans[0][0] : spans[0][1]])
            else:
                parts = [string[s:e] if s >= 0 else string[:0] for s, e in spans[1:]]
                found.append(parts[0] if self.groups == 1 else tuple(parts))
        return found

    def subn(self, repl: S | Callable[[Match[S]], S], string: S, count: int = 0) -> tuple[S, int]:
        if not callable(repl) and (b"\\" if isinstance(repl, bytes) else "\\") in repl:  # type: ignore[operator]
            raise ValueError("safe_regex: replacement templates are not supported; pass a function")
        pieces: list[S] = []
        last = 0
        done = 0
        size = len(string)
        for spans in self._iter_spans(string, 0, size):
            if count and done >= count:
                break
            start, end = spans[0]
            pieces.append(string[last:start])
            pieces.append(repl(Match(string, 0, size, spans, self.groupindex)) if callable(repl) else repl)
            last = end
            done += 1
        if not done:
            return string, 0
        pieces.append(string[last:])
        return string[:0].join(pieces), done

    def sub(self, repl: S | Callable[[Match[S]], S], string: S, count: int = 0) -> S:
        return self.subn(repl, string, count)[0]

    def split(self, string: S, maxsplit: int = 0) -> list[S | Any]:
        parts: list[S | Any] = []
        last = 0
        for done, spans in enumerate(self._iter_spans(string, 0, len(string))):
            if maxsplit and done >= maxsplit:
                break
            start, end = spans[0]
            parts.append(string[last:start])
            parts.extend(string[s:e] if s >= 0 else None for s, e in spans[1:])
            last = end
        parts.append(string[last:])
        return parts

    def __repr__(self) -> str:
        return f"safe_regex.compile({self.pattern!r}) [{self.engine}]"


def _re2_source(pattern: S, flags: int) -> S:
    inline = ("i" if flags & IGNORECASE else "") + ("m" if flags & MULTILINE else "") + ("s" if flags & DOTALL else "")
    if not inline:
        return pattern
    prefix = f"(?{inline})"
    return prefix.encode("ascii") + pattern if isinstance(pattern, bytes) else prefix + pattern  # type: ignore[return-value]


# Python's "\\uXXXX" / "\\UXXXXXXXX" pattern escapes are "\\x{XXXX}" in RE2 (this runs on pattern
# sources, never on untrusted text).
_PYTHON_UNICODE_ESCAPE: Final = re.compile(r"(?<!\\)((?:\\\\)*)\\(?:u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8}))")


def _re2_escapes(pattern: str) -> str:
    return _PYTHON_UNICODE_ESCAPE.sub(lambda m: m.group(1) + "\\x{" + (m.group(2) or m.group(3)) + "}", pattern)


def _re2_program(source: str | bytes, latin1: bool, shown: object) -> Any:
    options = re2.Options()
    options.log_errors = False
    if latin1:
        options.encoding = re2.Options.Encoding.LATIN1
    try:
        program = _RE2.RE2(source if isinstance(source, bytes) else source.encode("utf-8"), options)
    except Exception as exc:  # pybind raises its own error type
        raise UnsafePatternError(f"RE2 cannot compile {shown!r}: {exc}") from exc
    if not program.ok():
        error = program.error()
        raise UnsafePatternError(
            f"RE2 cannot compile {shown!r}: {error.decode() if isinstance(error, bytes) else error}."
            " Rewrite it without look-around/backreferences (not_preceded_by=, not_followed_by=,"
            " followed_by=, or a check in Python), or, if a feature RE2 lacks is truly needed,"
            " use compile_backtracking()."
        )
    return program


def _min_width(pattern: str | bytes, flags: int) -> int:
    """The fewest characters any match spans, from Python's parser when it reads the pattern, else 0."""
    try:
        from re import _parser  # type: ignore[attr-defined]  # noqa: PLC0415 - Python 3.11+

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return int(_parser.parse(pattern, flags).getwidth()[0])
    except Exception:
        return 0


class _Re2Pattern(Pattern[S]):
    """RE2, with the two look-arounds the guard needs emulated exactly:

    * ``not_preceded_by=X`` (``(?<![X])``): the program is ``[^X]()core``, run from one character
      before the start, so the character before a match is consumed as context; a search from the
      start of the text uses ``()core`` anchored there first (no character precedes it).
    * ``followed_by=F`` (``(?=F)``, and ``not_followed_by=X`` is ``(?=[^X]|\\z)``): the program is
      ``core(F)``; the reported match ends where ``(F)`` starts, and iteration resumes there.

    Leftmost-first priority is the same as Python's backtracking order, so both give the same match.
    """

    __slots__ = ("_ahead", "_behind", "_full", "_latin1", "_min_width", "_plain", "_rx")

    def __init__(self, pattern: S, flags: int, not_preceded_by: str, followed_by: str) -> None:
        if flags & ~_SUPPORTED_FLAGS:
            raise UnsafePatternError(f"unsupported flags for RE2: {flags!r}")
        self._latin1 = isinstance(pattern, bytes)
        core: str = pattern.decode("latin-1") if isinstance(pattern, bytes) else _re2_escapes(pattern)
        self._behind = bool(not_preceded_by)
        self._ahead = bool(followed_by)
        head = "()" if self._behind else ""
        tail = f"({followed_by})" if followed_by else ""
        body = f"(?:{core})" if (head or tail) else core

        def build(prefix: str) -> Any:
            source = _re2_source(prefix + head + body + tail, flags)
            return _re2_program(source.encode("latin-1") if self._latin1 else source, self._latin1, pattern)

        self._plain = build("")
        self._rx = build(f"[^{not_preceded_by}]") if self._behind else self._plain
        self._full: _Re2Pattern[S] | None = None
        if self._ahead:
            # fullmatch: the look-ahead sees only the end of the text, so it holds iff it matches "" there
            ahead_at_end = _re2_program(_re2_source(f"(?:{followed_by})", flags), False, followed_by)
            if ahead_at_end.Match(_ANCHOR_BOTH, b"", 0, 0)[0] != _NO_SPAN:
                self._full = _Re2Pattern(pattern, flags, not_preceded_by, "")
        self.pattern = pattern
        self.flags = flags
        self._min_width = _min_width(pattern, flags)
        internal = int(self._behind) + int(self._ahead)
        self.groups = int(self._plain.NumberOfCapturingGroups()) - internal
        shift = int(self._behind)
        names = dict(self._plain.NamedCapturingGroups())
        self.groupindex = {(k.decode() if isinstance(k, bytes) else k): int(v) - shift for k, v in names.items()}
        self.engine = "re2"

    # search / match / fullmatch / finditer: the generic path (Pattern's, via _spans and _iter_spans) in
    # one frame for the common case, a pattern without emulated look-arounds on ASCII text, where byte
    # and character offsets coincide. The guard makes ~50-100 calls per KB on small windows, and the
    # generic path's eight Python frames cost about as much as RE2 itself (~1 us a call).
    def _first(self, anchor: Any, string: S, pos: int, endpos: int) -> Match[S] | None:
        size = len(string)
        if not 0 <= pos <= size:
            pos = 0 if pos < 0 else size
        if not 0 <= endpos <= size:
            endpos = 0 if endpos < 0 else size
        if endpos - pos < self._min_width:
            return None  # too short for any match (also covers pos > endpos): no call at all
        last = _last
        encoded = last if last is not None and last.string is string else _encoded(string)
        if not encoded.ascii or (anchor is _ANCHOR_BOTH and self._ahead):
            return self._make(string, pos, endpos, self._spans(anchor, string, pos, endpos))
        buffer = encoded.data if endpos == size else encoded.view[:endpos]
        if self._behind or self._ahead:
            spans = self._run(anchor, buffer, pos, endpos, encoded)
            if spans is None:
                return None
        else:
            spans = self._rx.Match(anchor, buffer, pos, endpos)
            if spans[0] == _NO_SPAN:
                return None
        return Match(string, pos, endpos, tuple(spans), self.groupindex)

    def search(self, string: S, pos: int = 0, endpos: int = sys.maxsize) -> Match[S] | None:
        return self._first(_UNANCHORED, string, pos, endpos)

    def match(self, string: S, pos: int = 0, endpos: int = sys.maxsize) -> Match[S] | None:
        return self._first(_ANCHOR_START, string, pos, endpos)

    def fullmatch(self, string: S, pos: int = 0, endpos: int = sys.maxsize) -> Match[S] | None:
        return self._first(_ANCHOR_BOTH, string, pos, endpos)

    def finditer(self, string: S, pos: int = 0, endpos: int = sys.maxsize) -> Iterator[Match[S]]:
        pos, endpos = self._bounds(string, pos, endpos)
        groupindex = self.groupindex
        min_width = self._min_width
        if endpos - pos < min_width:
            return
        last = _last
        encoded = last if last is not None and last.string is string else _encoded(string)
        if not encoded.ascii:
            for generic in self._iter_spans(string, pos, endpos):
                yield Match(string, pos, endpos, generic, groupindex)
            return
        data = encoded.data
        buffer = data if endpos == len(data) else encoded.view[:endpos]
        rx = self._rx
        plain = not (self._behind or self._ahead)
        at = pos
        spans: list[Any] | None
        while endpos - at >= min_width:  # what is left may hold a match
            if plain:
                spans = rx.Match(_UNANCHORED, buffer, at, endpos)
                if spans[0] == _NO_SPAN:
                    return
            else:
                spans = self._run(_UNANCHORED, buffer, at, endpos, encoded)
                if spans is None:
                    return
            yield Match(string, pos, endpos, tuple(spans), groupindex)
            start, end = spans[0]
            if end == start:  # an empty match: step over one character
                if end >= endpos:
                    return
                at = end + 1
            else:
                at = end

    def _run(self, anchor: Any, buffer: Any, byte_pos: int, byte_end: int, encoded: _Encoded) -> list[Any] | None:
        """Byte spans [match, user groups...] of the first match of the value at or after byte_pos."""
        spans: list[Any]
        if not self._behind:
            spans = self._rx.Match(anchor, buffer, byte_pos, byte_end)
        elif byte_pos == 0:
            spans = self._plain.Match(_ANCHOR_BOTH if anchor is _ANCHOR_BOTH else _ANCHOR_START, buffer, 0, byte_end)
            if spans[0] == _NO_SPAN and anchor is _UNANCHORED:
                spans = self._rx.Match(anchor, buffer, 0, byte_end)
        else:
            before = byte_pos - 1 if encoded.ascii else encoded.to_byte(encoded.to_char(byte_pos) - 1)
            spans = self._rx.Match(anchor, buffer, before, byte_end)
        if spans[0] == _NO_SPAN:
            return None
        if self._behind:
            spans = [(spans[1][0], spans[0][1]), *spans[2:]]
        if self._ahead:
            spans = [(spans[0][0], spans[-1][0]), *spans[1:-1]]
        return spans

    def _chars(self, spans: list[Any], encoded: _Encoded) -> tuple[tuple[int, int], ...]:
        if encoded.ascii:
            return tuple(spans)
        return tuple(_NO_SPAN if s == _NO_SPAN else (encoded.to_char(s[0]), encoded.to_char(s[1])) for s in spans)

    def _prepare(self, string: S, pos: int, endpos: int) -> tuple[_Encoded, Any, int, int]:
        encoded = _encoded(string)
        byte_end = encoded.to_byte(endpos)
        buffer = encoded.data if byte_end == len(encoded.data) else encoded.view[:byte_end]
        return encoded, buffer, encoded.to_byte(pos), byte_end

    def _spans(self, anchor: Any, string: S, pos: int, endpos: int) -> tuple[tuple[int, int], ...] | None:
        if pos > endpos:
            return None
        if anchor is _ANCHOR_BOTH and self._ahead:
            return None if self._full is None else self._full._spans(anchor, string, pos, endpos)
        if endpos - pos < self._min_width:
            return None  # too short for any match: no call at all
        encoded, buffer, byte_pos, byte_end = self._prepare(string, pos, endpos)
        spans = self._run(anchor, buffer, byte_pos, byte_end, encoded)
        return None if spans is None else self._chars(spans, encoded)

    def _iter_spans(self, string: S, pos: int, endpos: int) -> Iterator[tuple[tuple[int, int], ...]]:
        if pos > endpos:
            return
        min_width = self._min_width
        if endpos - pos < min_width:
            return
        encoded, buffer, byte_pos, byte_end = self._prepare(string, pos, endpos)
        ascii_text = encoded.ascii
        while byte_pos <= byte_end:
            if byte_end - byte_pos < min_width:
                return  # what is left is shorter than any match (a character is at least a byte)
            spans = self._run(_UNANCHORED, buffer, byte_pos, byte_end, encoded)
            if spans is None:
                return
            yield self._chars(spans, encoded)
            start, end = spans[0]
            if end == start:  # an empty match: step over one character
                if end >= byte_end:
                    return
                byte_pos = end + 1 if ascii_text else encoded.to_byte(encoded.to_char(end) + 1)
            else:
                byte_pos = end


class _BacktrackingPattern(Pattern[S]):
    __slots__ = ("_compiled",)

    def __init__(self, pattern: S, flags: int) -> None:
        self._compiled: re.Pattern[S] = re.compile(pattern, flags)
        self.pattern = pattern
        self.flags = flags
        self.groups = self._compiled.groups
        self.groupindex = dict(self._compiled.groupindex)
        self.engine = "re"

    def _spans(self, anchor: Any, string: S, pos: int, endpos: int) -> tuple[tuple[int, int], ...] | None:
        compiled = self._compiled
        if anchor is _UNANCHORED:
            m = compiled.search(string, pos, endpos)
        elif anchor is _ANCHOR_START:
            m = compiled.match(string, pos, endpos)
        else:
            m = compiled.fullmatch(string, pos, endpos)
        return None if m is None else m.regs

    def _iter_spans(self, string: S, pos: int, endpos: int) -> Iterator[tuple[tuple[int, int], ...]]:
        for m in self._compiled.finditer(string, pos, endpos):
            yield m.regs

    def findall(self, string: S, pos: int = 0, endpos: int = sys.maxsize) -> list[Any]:
        return self._compiled.findall(string, pos, endpos)  # C speed: no match objects


@overload
def compile(
    pattern: str, flags: int = 0, *, not_preceded_by: str = "", not_followed_by: str = "", followed_by: str = ""
) -> Pattern[str]: ...
@overload
def compile(
    pattern: bytes, flags: int = 0, *, not_preceded_by: str = "", not_followed_by: str = "", followed_by: str = ""
) -> Pattern[bytes]: ...
def compile(
    pattern: str | bytes,
    flags: int = 0,
    *,
    not_preceded_by: str = "",
    not_followed_by: str = "",
    followed_by: str = "",
) -> Pattern[str] | Pattern[bytes]:
    """A linear-time (RE2) pattern. Raises `UnsafePatternError` where RE2 cannot run it.

    The look-arounds RE2 lacks, emulated exactly (same matches as Python's ``re``):

    * ``not_preceded_by="\\d.-"``: the body of a character class; ``(?<![\\d.-])`` before the pattern.
    * ``not_followed_by="\\d"``: a character-class body; ``(?![\\d])`` after the pattern.
    * ``followed_by=r"\\z|[^\\w.]|\\.\\D"``: an RE2 pattern that must match right after the match
      (``(?=...)``); write a negative look-ahead as its complement, e.g. ``(?!\\w|\\.\\d)`` as above.
    """
    if not_followed_by and followed_by:
        raise ValueError("safe_regex.compile: give not_followed_by or followed_by, not both")
    ahead = f"[^{not_followed_by}]|\\z" if not_followed_by else followed_by
    compiled: Pattern[Any] = _Re2Pattern(pattern, flags, not_preceded_by, ahead)
    _register(RegisteredPattern(pattern, flags, "re2", ""))
    return compiled


@overload
def compile_backtracking(pattern: str, flags: int = 0, *, needs: str) -> Pattern[str]: ...
@overload
def compile_backtracking(pattern: bytes, flags: int = 0, *, needs: str) -> Pattern[bytes]: ...
def compile_backtracking(pattern: str | bytes, flags: int = 0, *, needs: str) -> Pattern[str] | Pattern[bytes]:
    """A Python-re pattern, for a feature RE2 lacks (`needs` names it). The rule's test runs regexploit on it."""
    if not needs.strip():
        raise ValueError("compile_backtracking: say which feature RE2 lacks that this pattern needs")
    compiled: Pattern[Any] = _BacktrackingPattern(pattern, flags)
    _register(RegisteredPattern(pattern, flags, "re", needs))
    return compiled


class LazyPattern:
    """A pattern compiled on first use (most of the injection signals' gates never open on benign
    text, so their patterns stay out of the cold start). Registered at construction, so the rule's
    test compiles and checks it like any other. `needs` non-empty: Python's re, as in
    `compile_backtracking`."""

    __slots__ = ("_compiled", "flags", "needs", "source")

    def __init__(self, source: str, flags: int = 0, *, needs: str = "") -> None:
        self.source = source
        self.flags = flags
        self.needs = needs
        self._compiled: Pattern[str] | None = None
        _register(RegisteredPattern(source, flags, "re" if needs else "re2", needs))

    @property
    def compiled(self) -> Pattern[str]:
        if self._compiled is None:
            self._compiled = (
                _BacktrackingPattern(self.source, self.flags)
                if self.needs
                else _Re2Pattern(self.source, self.flags, "", "")
            )
        return self._compiled

    def match(self, text: str, pos: int = 0) -> Match[str] | None:
        return self.compiled.match(text, pos)

    def search(self, text: str) -> Match[str] | None:
        return self.compiled.search(text)
