"""The provider-neutral shape of a chat completion, independent of OpenAI, Bedrock or SageMaker.

A message is an ordered tuple of typed parts: text, images, the tool calls an assistant made, the
result of one tool call, and reasoning (thinking) blocks. Adapters map the parts to each wire
format; guards read and rewrite the parts' texts through `Message.texts` / `Message.with_texts`, so
every text a provider sees is one the input guard saw.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "Capability",
    "ChatRequest",
    "Completion",
    "FinishReason",
    "ImagePart",
    "Message",
    "Part",
    "Reasoning",
    "ResponseFormat",
    "Role",
    "TextPart",
    "ToolCall",
    "ToolChoice",
    "ToolResult",
    "ToolSpec",
    "Usage",
]


class Role(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"  # the result of one tool call, answering an assistant's ToolCall


class FinishReason(StrEnum):
    STOP = "stop"
    LENGTH = "length"
    CONTENT_FILTER = "content_filter"
    TOOL_CALLS = "tool_calls"


class Capability(StrEnum):
    """What a request may need from a target beyond plain text chat (routes.json `capabilities`)."""

    TOOLS = "tools"
    IMAGES = "images"
    REASONING = "reasoning"
    PROMPT_CACHING = "prompt_caching"
    STRUCTURED_OUTPUT = "structured_output"


@dataclass(frozen=True, slots=True)
class TextPart:
    """Text in a message."""

    text: str
    # A prompt-cache breakpoint after this part (OpenAI-style `cache_control`, Bedrock `cachePoint`).
    cache_point: bool = False


IMAGE_MEDIA_TYPES: Mapping[str, str] = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image's decoded bytes; `media_type` is one of IMAGE_MEDIA_TYPES, checked from the bytes."""

    media_type: str
    data: bytes = field(repr=False)
    cache_point: bool = False

    @property
    def format(self) -> str:
        return IMAGE_MEDIA_TYPES[self.media_type]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call the model asked for; `arguments` is the JSON text exactly as the model wrote it."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What the caller's tool returned for the call `tool_call_id` (a `tool` message)."""

    tool_call_id: str
    text: str


@dataclass(frozen=True, slots=True)
class Reasoning:
    """A reasoning (thinking) block. Providers sign it; it must come back unchanged in later turns,
    so guards read its text but never rewrite it. `redacted` is the provider's opaque encrypted
    block (base64) when the reasoning itself was withheld."""

    text: str = ""
    signature: str | None = None
    redacted: str | None = None


Part = TextPart | ImagePart | ToolCall | ToolResult | Reasoning


@dataclass(frozen=True, slots=True, init=False)
class Message:
    """One turn. `Message(role, "text")` is a text-only turn; `Message(role, [parts...])` any other."""

    role: Role
    parts: tuple[Part, ...]

    def __init__(self, role: Role, content: str | Iterable[Part] = ()) -> None:
        parts = (TextPart(content),) if isinstance(content, str) else tuple(content)
        object.__setattr__(self, "role", role)
        object.__setattr__(self, "parts", parts)

    @property
    def content(self) -> str:
        """The message's text: its text parts and tool results, in order (what a reader sees)."""
        return "".join(p.text for p in self.parts if isinstance(p, TextPart | ToolResult))

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(p for p in self.parts if isinstance(p, ToolCall))

    @property
    def images(self) -> tuple[ImagePart, ...]:
        return tuple(p for p in self.parts if isinstance(p, ImagePart))

    def texts(self) -> tuple[str, ...]:
        """The caller-controlled texts a provider sees, for the input guard: text parts, tool
        results and tool-call arguments, in part order (reasoning is signed, so it is not here)."""
        return tuple(text for text in map(_text_of, self.parts) if text is not None)

    def with_texts(self, texts: Sequence[str]) -> Message:
        """This message with `texts` (guarded versions of `texts()`, same order) put back."""
        replacements = iter(texts)
        parts: list[Part] = []
        for part in self.parts:
            if isinstance(part, TextPart):
                parts.append(TextPart(next(replacements), part.cache_point))
            elif isinstance(part, ToolResult):
                parts.append(ToolResult(part.tool_call_id, next(replacements)))
            elif isinstance(part, ToolCall):
                parts.append(ToolCall(part.id, part.name, next(replacements)))
            else:
                parts.append(part)
        if next(replacements, None) is not None:
            raise ValueError("more texts than the message has text slots")
        return Message(self.role, parts)

    def part_counts(self) -> dict[str, int]:
        """Part types and how many of each: what the audit trail records instead of contents."""
        counts: dict[str, int] = {}
        for part in self.parts:
            counts[_PART_NAMES[type(part)]] = counts.get(_PART_NAMES[type(part)], 0) + 1
        return counts


_PART_NAMES: Mapping[type, str] = {
    TextPart: "text",
    ImagePart: "image",
    ToolCall: "tool_call",
    ToolResult: "tool_result",
    Reasoning: "reasoning",
}


def _text_of(part: Part) -> str | None:
    if isinstance(part, TextPart | ToolResult):
        return part.text
    if isinstance(part, ToolCall):
        return part.arguments
    return None


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the model may call; `parameters` is its JSON Schema (an object schema)."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool = False


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """`auto` (the model decides), `none` (no calls), `required` (at least one), or `function` (`name`)."""

    mode: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """Structured output: `json_object` (any JSON object) or `json_schema` (valid against `schema`)."""

    kind: str
    schema: Mapping[str, Any] | None = None
    name: str = "response"
    strict: bool = False
    description: str = ""  # what the output is for (json_schema.description), for the model


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
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    reasoning_effort: str | None = None  # minimal | low | medium | high
    # Provider pass-through fields (e.g. Bedrock `guardrailConfig`) a tenant's policy allowed.
    provider_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def system_prompt(self) -> str:
        return "\n\n".join(m.content for m in self.messages if m.role is Role.SYSTEM)

    @property
    def conversation(self) -> tuple[Message, ...]:
        return tuple(m for m in self.messages if m.role is not Role.SYSTEM)

    @property
    def required_capabilities(self) -> frozenset[Capability]:
        """What a target must support to serve this request (routing skips targets without it)."""
        needed: set[Capability] = set()
        if self.tools or any(m.tool_calls or m.role is Role.TOOL for m in self.messages):
            needed.add(Capability.TOOLS)
        if any(m.images for m in self.messages):
            needed.add(Capability.IMAGES)
        if self.reasoning_effort is not None:
            needed.add(Capability.REASONING)
        if any(getattr(p, "cache_point", False) for m in self.messages for p in m.parts):
            needed.add(Capability.PROMPT_CACHING)
        if self.response_format is not None:
            needed.add(Capability.STRUCTURED_OUTPUT)
        return frozenset(needed)


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts. `input_tokens` counts every prompt token, cached ones included (as OpenAI's
    `prompt_tokens` does); `cache_read_tokens` and `cache_write_tokens` are the parts of it read from
    or written to the provider's prompt cache, priced at the target's cache rates."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

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
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: tuple[Reasoning, ...] = ()
