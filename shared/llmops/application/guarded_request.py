"""The request a model sees once the input guard has run: every text a provider will see, in one
order (`provider_texts`), and the same request rebuilt from the guarded texts (`guarded_request`):
redacted messages, tool definitions, `response_format` and stop sequences, and a canary in the
system prompt. Used by the chat path's input-guard stage (`llmops.application.chat_endpoint`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from llmops.domain.chat import (
    ChatRequest,
    Message,
    Part,
    ResponseFormat,
    Role,
    TextPart,
    ToolSpec,
)
from llmops.domain.guard import embed_canary

__all__ = ["guarded_request", "prompt_evidence", "provider_texts"]


def _stable_canary(secret: str, system_prompt: str) -> str:
    """A canary that is secret (keyed) yet stable per system prompt, so identical requests stay
    identical for deterministic models and the response cache; see guard.leakage for the protocol."""
    digest = hmac.new(secret.encode(), system_prompt.encode(), hashlib.sha256).hexdigest()
    return f"llmops-canary-{digest[:16]}"


def provider_texts(request: ChatRequest) -> list[str]:
    """Every text of the request that a provider will see, for the input guard, in this order:

    1. each message's `Message.texts()` in message order: its text parts, tool results (what a tool
       returned is input like any other: indirect prompt injection, OWASP LLM01, arrives there) and,
       in assistant turns, tool-call arguments (system prompts and rendered prompt templates,
       variables included, are messages by now);
    2. per tool definition, its description and the string values of its JSON schema (a tool's
       description is an instruction to the model, the schema's descriptions too: tool poisoning
       arrives there), by `_schema_strings`;
    3. the `response_format` description and its schema's string values (the provider gets them
       as a forced tool or its structured-output configuration);
    4. the stop sequences.

    `guarded_request` puts the guarded texts back in this order. Not here: reasoning blocks of
    earlier turns (the provider signed them and checks the signature, so they are model output the
    gateway already guarded, and rewriting one would void it), images (counted and limited by
    policy, not scanned), tool names and call ids (identifiers, `^[a-zA-Z0-9_-]{1,64}$`), and
    `context` documents, which never reach a provider: only the output guard reads them, for grounding.
    """
    texts = [text for message in request.messages for text in message.texts()]
    for tool in request.tools:
        texts.extend((tool.description, *_schema_strings(tool.parameters)))
    if request.response_format is not None:
        texts.extend(_format_texts(request.response_format))
    return [*texts, *request.stop]


def _format_texts(response_format: ResponseFormat) -> list[str]:
    return [response_format.description, *_schema_strings(response_format.schema or {})]


def _guarded_format(response_format: ResponseFormat | None, texts: Sequence[str]) -> ResponseFormat | None:
    """`response_format` with its guarded texts (`_format_texts` order); as sent if the guard left them."""
    if response_format is None or list(texts) == _format_texts(response_format):
        return response_format
    schema = response_format.schema
    if schema is not None:
        schema = _with_schema_strings(schema, iter(texts[1:]))
    return replace(response_format, description=texts[0], schema=schema)


def prompt_evidence(request: ChatRequest, texts: Sequence[str]) -> str:
    """The guarded messages for the audit evidence: each message's texts joined, one line per message."""
    lines: list[str] = []
    offset = 0
    for message in request.messages:
        count = len(message.texts())
        lines.append("".join(texts[offset : offset + count]))
        offset += count
    return "\n".join(lines)


# Schema keywords whose string values are structure, not prose: types, formats, references, and the
# property names listed in `required` (identifiers the model's arguments must use as they are).
_STRUCTURAL_KEYWORDS = frozenset({"type", "format", "$ref", "$schema", "$id", "$anchor", "required"})


def _schema_strings(value: Any, key: str | None = None) -> list[str]:
    """The string values of a JSON schema a guard should read, in document order: descriptions,
    titles, enums, examples, defaults, patterns. Not the keys (property names are identifiers the
    caller's code reads back from the model's arguments), not numbers or booleans (limits and flags:
    a 10-digit `maximum` is not a phone number), not the values of `_STRUCTURAL_KEYWORDS`. Scanning
    strings one by one, rather than the schema's JSON text, keeps a redaction inside its string, so a
    guarded schema is always a valid one."""
    if isinstance(value, str):
        return [] if key in _STRUCTURAL_KEYWORDS else [value]
    if isinstance(value, Mapping):
        return [text for name, item in value.items() for text in _schema_strings(item, str(name))]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _schema_strings(item, key)]
    return []


def _with_schema_strings(value: Any, texts: Iterator[str], key: str | None = None) -> Any:
    """`value` with its `_schema_strings` replaced by `texts`, in the same order."""
    if isinstance(value, str):
        return value if key in _STRUCTURAL_KEYWORDS else next(texts)
    if isinstance(value, Mapping):
        return {name: _with_schema_strings(item, texts, str(name)) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_with_schema_strings(item, texts, key) for item in value]
    return value


def _tool_text_count(tool: ToolSpec) -> int:
    return 1 + len(_schema_strings(tool.parameters))


def _guarded_tools(tools: Sequence[ToolSpec], texts: Sequence[str]) -> tuple[ToolSpec, ...]:
    """The tool definitions with their guarded texts (per tool: its description, then its schema's
    strings). A schema the guard left alone is sent exactly as the caller wrote it."""
    guarded: list[ToolSpec] = []
    offset = 0
    for tool in tools:
        count = _tool_text_count(tool)
        description, strings = texts[offset], texts[offset + 1 : offset + count]
        offset += count
        parameters = tool.parameters
        if list(strings) != _schema_strings(tool.parameters):
            parameters = _with_schema_strings(tool.parameters, iter(strings))
        guarded.append(replace(tool, description=description, parameters=parameters))
    return tuple(guarded)


def guarded_request(request: ChatRequest, texts: Sequence[str], canary_secret: str) -> tuple[ChatRequest, str]:
    """The request the model sees: the guarded `texts` (in the order of `provider_texts`) put back
    into their parts, part order and cache points kept, and a canary in the system prompt if it
    has one. Returns it with the system prompt as sent (canary included), for the leak check."""
    counts = [len(m.texts()) for m in request.messages]
    tool_texts = sum(map(_tool_text_count, request.tools))
    format_texts = len(_format_texts(request.response_format)) if request.response_format is not None else 0
    if len(texts) != sum(counts) + tool_texts + format_texts + len(request.stop):
        raise ValueError("guarded texts do not match the request's provider texts")
    messages: list[Message] = []
    offset = 0
    for message, count in zip(request.messages, counts, strict=True):
        messages.append(message.with_texts(texts[offset : offset + count]))
        offset += count
    tools = _guarded_tools(request.tools, texts[offset : offset + tool_texts])
    offset += tool_texts
    response_format = _guarded_format(request.response_format, texts[offset : offset + format_texts])
    stop_texts = texts[offset + format_texts :]
    system = [m for m in messages if m.role is Role.SYSTEM]
    system_prompt = "\n\n".join(m.content for m in system)
    if system_prompt:
        canary = embed_canary(system_prompt, _stable_canary(canary_secret, system_prompt))[len(system_prompt) :]
        merged = _system_message(system, canary)
        system_prompt = merged.content
        messages = [merged, *(m for m in messages if m.role is not Role.SYSTEM)]
    guarded = replace(
        request, messages=tuple(messages), tools=tools, response_format=response_format, stop=tuple(stop_texts)
    )
    return guarded, system_prompt


def _system_message(system: Sequence[Message], canary: str) -> Message:
    """The system messages as one, "\n\n" between them and `canary` (the marker and its separator)
    at the end: one text part when they are plain text, as before parts existed. Adjacent text parts
    are merged unless the first ends at a cache point, which stays where the caller put it, so the
    cached prefix (everything before the point) is unchanged and the stable canary comes after it."""
    pieces: list[Part] = []
    for index, message in enumerate(system):
        if index:
            pieces.append(TextPart("\n\n"))
        pieces.extend(message.parts)
    pieces.append(TextPart(canary))
    parts: list[Part] = []
    for piece in pieces:
        last = parts[-1] if parts else None
        if isinstance(piece, TextPart) and isinstance(last, TextPart) and not last.cache_point:
            parts[-1] = TextPart(last.text + piece.text, piece.cache_point)
        else:
            parts.append(piece)
    return Message(Role.SYSTEM, parts)
