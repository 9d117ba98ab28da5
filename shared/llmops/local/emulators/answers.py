"""Deterministic model answers: the same request always gets the same text and token counts.

The emulators' token unit is one whitespace-separated word of output, so `max_tokens` truncation is
exact and easy to assert on; input tokens are a 4-characters-a-token estimate.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "EmulatedFinish",
    "Generation",
    "TokenStream",
    "estimate_tokens",
    "generate_answer",
    "token_stream",
    "word_tokens",
]

_ECHO_WORDS = 12
_VOCABULARY = (
    *("the", "gateway", "routes", "each", "request", "to", "a", "healthy", "model", "and", "records"),
    *("latency", "cost", "tokens", "so", "that", "canary", "releases", "can", "be", "promoted", "or"),
    *("rolled", "back", "on", "measured", "service", "levels", "while", "guardrails", "redact"),
    *("sensitive", "data", "before", "any", "prompt", "leaves", "the", "account"),
)


class EmulatedFinish(StrEnum):
    END = "end"  # the answer is complete
    LENGTH = "length"  # cut at max_tokens
    STOP_SEQUENCE = "stop_sequence"  # cut at a stop sequence


@dataclass(frozen=True, slots=True)
class Generation:
    text: str
    finish: EmulatedFinish
    input_tokens: int
    output_tokens: int
    stop_sequence: str | None = None  # the sequence that ended the answer, for TGI's echo of it


# A streamed answer: its tokens' texts as they are generated, then the finished `Generation` (whose
# text is their concatenation, counts and finish reason). Emulated and forwarded answers both stream so.
TokenStream = Iterator[str | Generation]

_WORD_TOKEN = re.compile(r"\s*\S+")


def word_tokens(text: str) -> list[str]:
    """`text` cut into the emulators' tokens, one word each with the whitespace before it, so that
    they concatenate back to `text` and there are as many as `Generation.output_tokens` counts."""
    tokens = _WORD_TOKEN.findall(text)
    tail = text[sum(map(len, tokens)) :]
    if tokens and tail:
        tokens[-1] += tail
    return tokens


def token_stream(generation: Generation) -> TokenStream:
    yield from word_tokens(generation.text)
    yield generation


def estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _full_answer(model: str, last_user_text: str, prompt_text: str) -> str:
    words = last_user_text.split()
    echo = " ".join(words[:_ECHO_WORDS]) + ("..." if len(words) > _ECHO_WORDS else "")
    seed = int.from_bytes(hashlib.sha256(f"{model}\n{prompt_text}".encode()).digest()[:8], "big")
    rng = random.Random(seed)
    filler = " ".join(rng.choice(_VOCABULARY) for _ in range(rng.randint(12, 24)))
    return f"Emulated answer from {model}: {echo} | {filler[0].upper()}{filler[1:]}."


def generate_answer(
    *,
    model: str,
    last_user_text: str,
    prompt_text: str,
    max_tokens: int | None,
    stop: Sequence[str] = (),
) -> Generation:
    """The emulated completion: a pure function of the model label and the prompt.

    Generation is "streamed" word by word in effect: whichever comes first, a stop sequence or the
    token limit, ends it, which is how real decoders behave.
    """
    text = _full_answer(model, last_user_text, prompt_text)
    finish = EmulatedFinish.END
    matched: str | None = None
    hits = [(text.find(s), s) for s in stop if s and s in text]
    if hits:
        index, matched = min(hits)
        text = text[:index]
        finish = EmulatedFinish.STOP_SEQUENCE
    words = text.split()
    if max_tokens is not None and len(words) > max_tokens:
        text = " ".join(words[:max_tokens])
        finish, matched = EmulatedFinish.LENGTH, None
    return Generation(
        text=text,
        finish=finish,
        input_tokens=estimate_tokens(prompt_text),
        output_tokens=len(text.split()),
        stop_sequence=matched,
    )
