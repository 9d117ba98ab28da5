"""A completion as it arrives: the provider-neutral events every streaming provider yields.

A provider stream is an iterator of `StreamEvent`s: zero or more `TextDelta`s, `ToolCallDelta`s and
`ReasoningDelta`s, then exactly one `StreamEnd`. Failures are raised from the iterator as
`ProviderError`; one raised before the first event lets the completion service fall back to the
next target, one raised after it ends the caller's stream with an error (the bytes already sent cannot be taken back).

Closing the iterator (`close()`, as a generator's) must stop reading from the provider: that is how
a client that disconnects stops the model's output from being paid for any longer than needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from llmops.domain.chat import ChatRequest, FinishReason, Usage
from llmops.domain.routing import Target

__all__ = ["ReasoningDelta", "StreamEnd", "StreamEvent", "StreamingChatProvider", "TextDelta", "ToolCallDelta"]


@dataclass(frozen=True, slots=True)
class TextDelta:
    """The next piece of the completion's text, as the provider sent it (any size, may be empty)."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of the tool call at `index` (0-based, in the order the model started them).

    The first delta of a call carries its `id` and `name`; every delta may carry a piece of the
    `arguments` JSON text, which concatenates to the call's arguments (OpenAI's chunk semantics).
    """

    index: int
    arguments: str = ""
    id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of reasoning text, or the `signature` (or `redacted` block) that closes a reasoning block."""

    text: str = ""
    signature: str | None = None
    redacted: str | None = None


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The last event: why the model stopped, and the usage the provider reported.

    `usage` is None when the provider reported none (e.g. a TGI container without details); the
    caller then settles on counted tokens.
    """

    finish_reason: FinishReason
    usage: Usage | None = None
    raw_model: str | None = None


StreamEvent = TextDelta | ToolCallDelta | ReasoningDelta | StreamEnd


class StreamingChatProvider(Protocol):
    """A model backend that can stream. Must raise `ProviderError` (never an SDK exception).

    `timeout_s` bounds the wait for the first event and for each later read (an idle timeout), so
    a provider that stops mid-stream fails as `ProviderFailureKind.TIMEOUT` instead of hanging.
    """

    def stream(
        self, target: Target, request: ChatRequest, *, timeout_s: float | None = None
    ) -> Iterator[StreamEvent]: ...
