"""The injection signal table: `signals.json` (shipped beside this module), checked and loaded once at import.

The table is data so the phrasings and their weights can be read, reviewed and tuned without
reading the scorer. Its format:

* ``bias``: the logit of a text with no signal; ``encoded_payload_weight``: what hiding a
  suspicious text in base64, hex or rot13 adds.
* ``signals``: in order (the first signal of a family that fires is the one that counts, and
  candidates are tried in this order). Each one has a ``name``, a ``weight`` in logit units and a
  ``pattern``, plus optional gates (see `Signal`): ``starts`` and ``requires`` (words), ``phrases``
  (substrings), ``chars``; and ``family``, ``case_sensitive``, ``multiline``, ``needs`` (the
  feature RE2 lacks that puts the pattern on Python's re, as `safe_regex.LazyPattern` takes it).
* A pattern is a string or a list of pieces concatenated in order; a word list is a string of
  space-separated words or a list of pieces joined by spaces. A piece is a string,
  ``{"fragment": name}`` (the text of ``fragments[name]``, shared by several signals) or
  ``{"note": text}`` (why the pieces after it are there; the comment JSON lacks).

Every pattern is a `safe_regex.LazyPattern`, so the safe-regex rule's test compiles and checks each
one like any pattern written in code. A malformed table raises `SignalTableError` at import: the
gateway must not start with a guard that silently lost a signal.
"""

from __future__ import annotations

import json
import math
import os
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from llmops.domain.guard import safe_regex
from llmops.domain.guard.safe_regex import LazyPattern

__all__ = [
    "BIAS",
    "ENCODED_PAYLOAD",
    "ENCODED_PAYLOAD_WEIGHT",
    "SIGNALS",
    "TABLE_FILE",
    "Signal",
    "SignalTable",
    "SignalTableError",
    "parse_signal_table",
]

TABLE_FILE: Final = "signals.json"
# The signal the scorer adds for a suspicious text hidden in an encoding; no table signal may take its name.
ENCODED_PAYLOAD: Final = "encoded_payload"


@dataclass(frozen=True, slots=True)
class Signal:
    """One family of phrasings. Gates keep benign text from paying for the regex at all.

    * `starts`: the words a match begins with. The signal runs only if one of them is a word of the
      text, and then the pattern is tried (anchored) only where those words occur.
    * `requires`: at least one of these words must also be present.
    * `phrases`: substrings of which one must be present; the pattern is then searched in full.
    """

    name: str
    weight: float
    pattern: LazyPattern
    starts: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    case_sensitive: bool = False  # run on the text as is rather than lower-cased
    family: str = ""  # signals of one family add their weight once (the first that fires); "" = own name
    # one of these characters must occur before `phrases` are tried: a one-character `in` test is a
    # memchr, a multi-character one walks the text (~0.5 us per KB each)
    chars: str = ""
    start_set: frozenset[str] = field(init=False)
    require_set: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "start_set", frozenset(self.starts))
        object.__setattr__(self, "require_set", frozenset(self.requires))


@dataclass(frozen=True, slots=True)
class SignalTable:
    bias: float
    encoded_payload_weight: float
    signals: tuple[Signal, ...]


class SignalTableError(ValueError):
    """The signal table is malformed; the message names the entry and the field."""


_TOP_KEYS: Final = frozenset({"about", "bias", "encoded_payload_weight", "fragments", "signals"})
_SIGNAL_KEYS: Final = frozenset(
    {"name", "note", "weight", "pattern", "needs", "multiline", "starts", "requires", "phrases", "chars"}
    | {"case_sensitive", "family"}
)
# The gate words are compared with `TextView.words`: lower-cased ASCII split at punctuation and spaces.
_NOT_IN_A_WORD: Final = frozenset(string.punctuation + string.whitespace)


def _number(value: object, where: str, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SignalTableError(f"{where} must be a finite number, not {value!r}")
    if positive and value <= 0:
        raise SignalTableError(f"{where} must be above 0, not {value!r}")
    return float(value)


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise SignalTableError(f"{where} must be a non-empty string, not {value!r}")
    return value


def _flag(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise SignalTableError(f"{where} must be true or false, not {value!r}")
    return value


class _Pieces:
    """Expands pieces (strings, fragment references, notes) and records which fragments were used.

    A fragment's own pieces are joined the way the field that names it joins its pieces, so one
    fragment can serve as a word list or a pattern piece."""

    def __init__(self, fragments: Mapping[str, tuple[str, ...]] | None) -> None:
        self._fragments = fragments  # None: expanding a fragment itself (no fragment inside a fragment)
        self.used: set[str] = set()

    def expand(self, value: object, where: str, sep: str) -> str:
        return sep.join(self.texts(value, where))

    def texts(self, value: object, where: str) -> tuple[str, ...]:
        """The strings of `value` in order, a fragment's spliced in, notes left out."""
        pieces = [value] if isinstance(value, str | dict) else value
        if not isinstance(pieces, list) or not pieces:
            raise SignalTableError(f"{where} must be a string or a non-empty list of pieces, not {value!r}")
        texts: list[str] = []
        for index, piece in enumerate(pieces):
            at = f"{where}[{index}]"
            if isinstance(piece, str):
                texts.append(piece)
            elif isinstance(piece, dict) and piece.keys() == {"note"}:
                _text(piece["note"], f"{at}.note")
            elif isinstance(piece, dict) and piece.keys() == {"fragment"} and self._fragments is not None:
                name = piece["fragment"]
                if not isinstance(name, str) or name not in self._fragments:
                    raise SignalTableError(f"{at} names fragment {name!r}, which `fragments` does not define")
                self.used.add(name)
                texts.extend(self._fragments[name])
            else:
                allowed = '{"note": text}' if self._fragments is None else '{"fragment": name} or {"note": text}'
                raise SignalTableError(f"{at} must be a string or {allowed}, not {piece!r}")
        if not "".join(texts):
            raise SignalTableError(f"{where} has no text")
        return tuple(texts)


def _fragments(value: object) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise SignalTableError(f"fragments must be an object, not {value!r}")
    plain = _Pieces(None)
    return {name: plain.texts(pieces, f"fragments.{name}") for name, pieces in value.items()}


def _words(value: object, where: str, pieces: _Pieces) -> tuple[str, ...]:
    words = tuple(pieces.expand(value, where, " ").split())
    for word in words:
        if word != word.lower() or not word.isascii() or _NOT_IN_A_WORD & set(word):
            raise SignalTableError(
                f"{where}: {word!r} can never be a word of the text (gate words are lower-case ASCII without "
                "punctuation)"
            )
    if not words:
        raise SignalTableError(f"{where} lists no word")
    return words


def _signal(entry: object, where: str, pieces: _Pieces) -> Signal:
    if not isinstance(entry, dict):
        raise SignalTableError(f"{where} must be an object, not {entry!r}")
    if "name" not in entry:
        raise SignalTableError(f"{where} lacks 'name'")
    name = _text(entry["name"], f"{where}.name")
    where = f"{where} ({name})"
    unknown = entry.keys() - _SIGNAL_KEYS
    if unknown:
        raise SignalTableError(f"{where} has unknown keys {sorted(unknown)}; known: {sorted(_SIGNAL_KEYS)}")
    for required in ("weight", "pattern"):
        if required not in entry:
            raise SignalTableError(f"{where} lacks {required!r}")
    if "note" in entry:
        _text(entry["note"], f"{where}.note")
    case_sensitive = _flag(entry.get("case_sensitive", False), f"{where}.case_sensitive")
    phrases = entry.get("phrases", [])
    if not isinstance(phrases, list) or not all(isinstance(p, str) and p for p in phrases):
        raise SignalTableError(f"{where}.phrases must be a list of non-empty strings, not {phrases!r}")
    chars = entry.get("chars", "")
    if not isinstance(chars, str):
        raise SignalTableError(f"{where}.chars must be a string, not {chars!r}")
    if not case_sensitive:
        # the text is lower-cased before the substring tests: an upper-case phrase would never be found
        for gate in (*phrases, chars):
            if gate != gate.lower():
                raise SignalTableError(f"{where}: {gate!r} has upper-case letters but the signal is not case_sensitive")
    needs = entry.get("needs", "")
    if "needs" in entry:
        _text(needs, f"{where}.needs")
    multiline = _flag(entry.get("multiline", False), f"{where}.multiline")
    pattern = pieces.expand(entry["pattern"], f"{where}.pattern", "")
    return Signal(
        name,
        _number(entry["weight"], f"{where}.weight", positive=True),
        LazyPattern(pattern, safe_regex.MULTILINE if multiline else 0, needs=needs),
        starts=_words(entry["starts"], f"{where}.starts", pieces) if "starts" in entry else (),
        requires=_words(entry["requires"], f"{where}.requires", pieces) if "requires" in entry else (),
        phrases=tuple(phrases),
        case_sensitive=case_sensitive,
        family=_text(entry["family"], f"{where}.family") if "family" in entry else "",
        chars=chars,
    )


def parse_signal_table(document: str) -> SignalTable:
    """The table in `document` (the JSON text of `signals.json`); `SignalTableError` says what is wrong."""
    try:
        raw = json.loads(document)
    except json.JSONDecodeError as exc:
        raise SignalTableError(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise SignalTableError("the table must be a JSON object")
    unknown = raw.keys() - _TOP_KEYS
    if unknown:
        raise SignalTableError(f"unknown top-level keys {sorted(unknown)}; known: {sorted(_TOP_KEYS)}")
    for required in ("bias", "encoded_payload_weight", "signals"):
        if required not in raw:
            raise SignalTableError(f"the table lacks {required!r}")
    fragments = _fragments(raw.get("fragments", {}))
    entries = raw["signals"]
    if not isinstance(entries, list) or not entries:
        raise SignalTableError("signals must be a non-empty list")
    pieces = _Pieces(fragments)
    signals = tuple(_signal(entry, f"signals[{index}]", pieces) for index, entry in enumerate(entries))
    _check_names(signals)
    unused = fragments.keys() - pieces.used
    if unused:
        raise SignalTableError(f"fragments {sorted(unused)} are defined but no signal uses them")
    return SignalTable(
        bias=_number(raw["bias"], "bias", positive=False),
        encoded_payload_weight=_number(raw["encoded_payload_weight"], "encoded_payload_weight", positive=True),
        signals=signals,
    )


def _check_names(signals: Sequence[Signal]) -> None:
    seen: set[str] = set()
    for signal in signals:
        if signal.name in seen:
            raise SignalTableError(f"two signals are named {signal.name!r}: an assessment could not tell them apart")
        seen.add(signal.name)
        if ENCODED_PAYLOAD in (signal.name, signal.family):
            raise SignalTableError(f"{signal.name!r}: {ENCODED_PAYLOAD!r} is the scorer's own signal")


def _load() -> SignalTable:
    # The file sits beside this module in the wheel and in the Lambda layer (both unpacked). Read with
    # os.path: importlib.resources would add ~2 ms of imports to the gateway's cold start.
    with open(os.path.join(os.path.dirname(__file__), TABLE_FILE), encoding="utf-8") as file:
        document = file.read()
    try:
        return parse_signal_table(document)
    except SignalTableError as exc:
        raise SignalTableError(f"{TABLE_FILE}: {exc}") from None


_TABLE: Final = _load()
BIAS: Final = _TABLE.bias
ENCODED_PAYLOAD_WEIGHT: Final = _TABLE.encoded_payload_weight
SIGNALS: Final = _TABLE.signals
