"""Text hidden from the signals: base64 and hex blobs decoded, rot13 and leetspeak spotted and undone.

The scorer runs the same signals over what comes out of here. Each finder starts with a cheap shape
test (one ``bytes.translate`` and a substring test) so text with nothing hidden pays almost nothing.
"""

from __future__ import annotations

import base64
import binascii
import string
from typing import Final

from llmops.domain.guard import safe_regex
from llmops.domain.guard.text_view import TextView, byte_table

__all__ = ["decoded_payloads", "looks_leet", "looks_rot13", "rot13", "unleet"]

# RE2 repeats at most 1000 times: the blob lengths are bounded in `decoded_payloads` instead.
_BASE64_TAIL = safe_regex.compile(r"([A-Za-z0-9+/_-]{16,})(={0,2})")
_BASE64_MAX: Final = 8000
_BASE64_SHAPE_RUN = safe_regex.compile(rb"a{16,}")
_HEX = safe_regex.compile(r"(?:(?:0x|\\x)?[0-9a-f]{2}[\s,:]?){12,}")
_HEX_NOISE = safe_regex.compile(r"0x|\\x|[\s,:]")
# rot13 spellings of the commonest English words and of injection vocabulary
_ROT13_MARKERS = frozenset(
    {"gur", "naq", "lbh", "lbhe", "vtaber", "cerivbhf", "vafgehpgvbaf", "flfgrz", "cebzcg", "qvfertneq", "gung",
     "guvf", "jvgu", "sebz", "ner", "vf"}
)  # fmt: skip
# Cheap shape tests before the regexes: one bytes.translate and a substring test each.
_BASE64_SHAPE = byte_table(" ", a=string.ascii_lowercase + string.digits + "+/_-")
_BASE64_RUN = b"a" * 16
_HEX_SHAPE = byte_table("x", h="0123456789abcdef", s=" ,:")
_HEX_RUN = b"h" * 24
_HEX_PAIRS = b"hhs" * 12
_LEET_SHAPE = byte_table(" ", l=string.ascii_lowercase, d="013457$")
_LEET_RUN = b"ldl"
_ROT13 = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "nopqrstuvwxyzabcdefghijklmNOPQRSTUVWXYZABCDEFGHIJKLM",
)
_LEET = str.maketrans("013457@$", "oieastas")
_WORDISH = safe_regex.compile(r"[A-Za-z]{2,}")


def looks_rot13(view: TextView) -> bool:
    """At least two words of the text are rot13 spellings of common or injection words."""
    return len(_ROT13_MARKERS & view.words) >= 2


def rot13(lowered: str) -> str:
    """rot13 keeps length, so spans in the result are spans of the input."""
    return lowered.translate(_ROT13)


def looks_leet(view: TextView) -> bool:
    """Letters with leet digits between them, more than once ("1gn0r3", "pr3v10us")."""
    return view.ascii_lowered.translate(_LEET_SHAPE).count(_LEET_RUN) >= 2


def unleet(lowered: str) -> str:
    """Leet digits and signs back to letters; keeps length, as `rot13` does."""
    return lowered.translate(_LEET)


def _printable_text(raw: bytes) -> str | None:
    """Decoded bytes that read as text (not a hash, image or ciphertext), else None."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text or sum(ch.isprintable() or ch in "\n\t\r" for ch in text) < 0.95 * len(text):
        return None
    if len(_WORDISH.findall(text)) < 2:
        return None
    return text


def _decode_base64(blob: str) -> str | None:
    stripped = blob.rstrip("=")
    if len(stripped) % 4 == 1:
        return None
    padded = stripped + "=" * (-len(stripped) % 4)
    try:
        if "-" in padded or "_" in padded:
            raw = base64.urlsafe_b64decode(padded)
        else:
            raw = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return _printable_text(raw)


def _decode_hex(blob: str) -> str | None:
    digits = _HEX_NOISE.sub("", blob)
    if len(digits) % 2:
        digits = digits[:-1]
    try:
        return _printable_text(bytes.fromhex(digits))
    except ValueError:
        return None


def decoded_payloads(view: TextView) -> list[tuple[int, int, str]]:
    """(start, end, decoded text) of base64 and hex blobs that decode to readable text."""
    out: list[tuple[int, int, str]] = []
    ascii_lowered = view.ascii_lowered
    shape = ascii_lowered.translate(_BASE64_SHAPE)
    if _BASE64_RUN in shape:
        # Runs are found on the one-byte-per-char shape (a literal-led regex: C speed); a regex
        # on the text itself tried its look-behind at every position.
        text = view.text
        for run in _BASE64_SHAPE_RUN.finditer(shape):
            view.budget.tick()
            start = run.start()
            if start and text[start - 1] == "=":
                continue
            m = _BASE64_TAIL.match(text, start, min(len(text), start + _BASE64_MAX + 2))
            if m is None:
                continue
            # as "[...]{16,8000}={0,2}" would: at most 8000 characters, then the padding if it follows
            end = m.end() if m.end(1) - start <= _BASE64_MAX else start + _BASE64_MAX
            decoded = _decode_base64(text[start:end])
            if decoded is not None:
                out.append((start, end, decoded))
    hex_shape = ascii_lowered.translate(_HEX_SHAPE)
    if _HEX_RUN in hex_shape or _HEX_PAIRS in hex_shape or b"\\x" in ascii_lowered:
        for m in _HEX.finditer(view.lowered):
            view.budget.tick()
            decoded = _decode_hex(m.group())
            if decoded is not None:
                out.append((m.start(), m.end(), decoded))
    return out
