"""Offline, deliberately pessimistic token counts for quota reservations.

Quotas reserve the worst case before the provider call, so the input estimate must not fall below
what the provider will later report, and it must work with no tokenizer files (the Lambda has no
network to fetch them and bundling every provider's vocabulary is not possible for Bedrock models).

The bound, per text:

    tokens <= max(ceil(utf8_bytes / 3), ceil(words * 1.5), segment_estimate)

where `segment_estimate` charges each run of ASCII letters ceil(len / 3), each run of digits
ceil(len / 3) (Llama 3 and the GPT-4 family split numbers in groups of at most 3), every ASCII
punctuation or symbol character 1, each whitespace run beyond a single space 1, and every non-ASCII
character (utf8_len - 1) but at least 1 (accented letters 1, CJK 2, emoji 3). Byte-level BPE
tokenizers (cl100k/o200k, Llama 3, Claude, Mistral) average 3.5-4.5 characters per token on
English and code and about one token per CJK character, so this is 1.3x-2x above what they report.
Per message we add `MESSAGE_OVERHEAD_TOKENS` for the role markers of chat templates (OpenAI's is 4,
Llama 3's header is 5), and `REQUEST_OVERHEAD_TOKENS` once for the assistant priming.

Parts other than text are charged as providers bill them, pessimistically:
- an image `IMAGE_TOKENS` (1600), whatever its size: Claude on Bedrock bills (width * height) / 750
  and downscales anything above ~1.15 megapixels to fit about 1600 tokens; the gateway does not
  decode images to read their dimensions (settle corrects a smaller image's reservation);
- a tool call its name and arguments plus `TOOL_CALL_OVERHEAD_TOKENS` (id and framing), a tool
  result its text, a reasoning block its text and its signature or encrypted data (sent back in a
  later turn, the provider reads it again);
- each tool definition its name, description and JSON-schema text plus `TOOL_OVERHEAD_TOKENS`, and
  `TOOLS_PREAMBLE_TOKENS` once when any tool is offered (the tool-use system prompt Anthropic adds,
  346 tokens for Claude with `auto`).

It is a heuristic, not a proof: pathological inputs (long runs of rare Unicode) can exceed it. The
settle step corrects each window to the provider-reported usage, so an underestimate can only let
that one request's difference through, never a lost count.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

from llmops.domain.chat import ChatRequest, ImagePart, Message, Reasoning, TextPart, ToolCall, ToolResult, ToolSpec

__all__ = [
    "IMAGE_TOKENS",
    "MESSAGE_OVERHEAD_TOKENS",
    "REQUEST_OVERHEAD_TOKENS",
    "TOOLS_PREAMBLE_TOKENS",
    "TOOL_CALL_OVERHEAD_TOKENS",
    "TOOL_OVERHEAD_TOKENS",
    "estimate_message_tokens",
    "estimate_prompt_tokens",
    "estimate_text_tokens",
]

MESSAGE_OVERHEAD_TOKENS = 8
REQUEST_OVERHEAD_TOKENS = 8
IMAGE_TOKENS = 1600
TOOL_CALL_OVERHEAD_TOKENS = 16
TOOL_OVERHEAD_TOKENS = 16
TOOLS_PREAMBLE_TOKENS = 512


# No regular expression: one bytes.translate per character class over the UTF-8 bytes (C speed, and
# nothing an attacker can make backtrack). This runs on every request (quota reservation), so it must
# cost microseconds, not a tenth of a millisecond per KB. Non-ASCII bytes (>= 0x80) end every run, as
# a non-ASCII character ends "[A-Za-z]+" in the text.
def _table(**classes: bytes) -> bytes:
    table = bytearray(b" " * 256)
    for replacement, members in classes.items():
        for byte in members:
            table[byte] = ord(replacement)
    return bytes(table)


_ASCII_LETTERS = bytes(range(ord("a"), ord("z") + 1)) + bytes(range(ord("A"), ord("Z") + 1))
_LETTER_RUNS = _table(a=_ASCII_LETTERS)  # runs of "[A-Za-z]+" as words of "a"
_DIGIT_RUNS = _table(a=b"0123456789")
# " " -> "s", the other whitespace of "[ \t\r\n\f\v]" -> "t": a run is counted unless it is one " "
_WHITESPACE = _table(s=b" ", t=b"\t\r\n\f\v")
# "[\x00-\x08\x0e-\x1f\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]": deleted to count them
_OTHER_ASCII = bytes(
    [
        *range(0x00, 0x09),
        *range(0x0E, 0x20),
        *range(0x21, 0x30),
        *range(0x3A, 0x41),
        *range(0x5B, 0x61),
        *range(0x7B, 0x80),
    ]
)


def _thirds_of_runs(runs: bytes) -> int:
    """The sum of ceil(len / 3) over the runs of "a" in `runs` (a translation: "a" and " " only),
    without a Python loop over the runs: "aaa" -> "b" leaves one "b" per whole third and, at the end
    of a run, its remainder ("a" or "aa"), which counts once."""
    grouped = runs.replace(b"aaa", b"b")
    return grouped.count(b"b") + grouped.replace(b"aa", b"a").count(b"a")


def _segment_estimate(text: str, data: bytes) -> int:
    letters_and_digits = _thirds_of_runs(data.translate(_LETTER_RUNS))
    letters_and_digits += _thirds_of_runs(data.translate(_DIGIT_RUNS))
    whitespace_runs = data.translate(_WHITESPACE).split()
    whitespace = len(whitespace_runs) - whitespace_runs.count(b"s")
    other_ascii = len(data) - len(data.translate(None, _OTHER_ASCII))
    # Every non-ASCII character costs (its UTF-8 length - 1), at least 1; since each is 2-4 bytes,
    # the sum over all of them is simply the bytes beyond one per character.
    non_ascii = len(data) - len(text)
    return letters_and_digits + whitespace + other_ascii + non_ascii


def estimate_text_tokens(text: str) -> int:
    """An upper estimate of the tokens `text` becomes for common LLM tokenizers."""
    if not text:
        return 0
    data = text.encode("utf-8", "surrogatepass")
    by_bytes = math.ceil(len(data) / 3)
    by_words = math.ceil(len(text.split()) * 1.5)
    return max(by_bytes, by_words, _segment_estimate(text, data))


def estimate_prompt_tokens(request: ChatRequest, extra_texts: Iterable[str] = ()) -> int:
    """Input tokens of a chat request, chat-template overhead included.

    `extra_texts` are texts the gateway adds to the prompt (grounding context, rendered templates).
    """
    total = REQUEST_OVERHEAD_TOKENS
    for message in request.messages:
        total += estimate_message_tokens(message)
    if request.tools:
        total += TOOLS_PREAMBLE_TOKENS + sum(map(_tool_tokens, request.tools))
    for text in extra_texts:
        total += MESSAGE_OVERHEAD_TOKENS + estimate_text_tokens(text)
    return total


def estimate_message_tokens(message: Message) -> int:
    """One message's tokens, its parts each charged as the module docstring says."""
    total = MESSAGE_OVERHEAD_TOKENS
    for part in message.parts:
        if isinstance(part, TextPart | ToolResult):
            total += estimate_text_tokens(part.text)
        elif isinstance(part, ImagePart):
            total += IMAGE_TOKENS
        elif isinstance(part, ToolCall):
            total += TOOL_CALL_OVERHEAD_TOKENS + estimate_text_tokens(part.name) + estimate_text_tokens(part.arguments)
        elif isinstance(part, Reasoning):
            total += estimate_text_tokens(part.text) + estimate_text_tokens(part.signature or part.redacted or "")
    return total


def _tool_tokens(tool: ToolSpec) -> int:
    schema = json.dumps(tool.parameters, separators=(",", ":"), ensure_ascii=False, default=str)
    return (
        TOOL_OVERHEAD_TOKENS
        + estimate_text_tokens(tool.name)
        + estimate_text_tokens(tool.description)
        + estimate_text_tokens(schema)
    )
