"""The provider-neutral shape of a chat completion, independent of OpenAI, Bedrock or SageMaker."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["ChatRequest", "Completion", "FinishReason", "Message", "Role", "Usage"]


class Role(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


class FinishReason(StrEnum):
    STOP = "stop"
    LENGTH = "length"
    CONTENT_FILTER = "content_filter"


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated request, after the API layer has normalised OpenAI's many spellings."""

    model: str
    messages: tuple[Message, ...]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    user: str | None = None
    stream: bool = False
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def system_prompt(self) -> str:
        return "\n\n".join(m.content for m in self.messages if m.role is Role.SYSTEM)

    @property
    def conversation(self) -> tuple[Message, ...]:
        return tuple(m for m in self.messages if m.role is not Role.SYSTEM)


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class Completion:
    """What a provider returned, already mapped out of its wire format."""

    text: str
    finish_reason: FinishReason
    usage: Usage
    raw_model: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
