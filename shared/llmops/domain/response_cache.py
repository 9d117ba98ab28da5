"""Exact-match response cache: when a request may be served from cache, and under which key.

Only deterministic requests are cached: temperature 0, or a caller that opts in with
`x-llmops-cache: force`. `x-llmops-cache: bypass` (or `no-store`) skips the cache entirely;
`no-cache` skips the read but stores the fresh answer (a refresh).

The key is sha256 over the canonical JSON of tenant + the messages as sent to the model (after
prompt rendering and the input guard) + target id + generation parameters. The tenant is part of
the hashed material and is stored and checked on read as well, so an entry is never served to
another tenant. The key reveals nothing of the prompt. Whatever else changes the answer is keyed
too, when the request has it: the parts of a message that is not plain text (tool calls and their
ids, tool results, images by digest, reasoning blocks, cache points), the tools offered, the tool
choice, `parallel_tool_calls`, `response_format`, `reasoning_effort` and pass-through options; a
plain-text request's key material is what it was before parts existed, so its entries stay valid.

Answers with tool calls or reasoning are not stored (`storable`): an entry holds text only, and a
hit must never drop a part of the answer it replays.

Pure: no I/O; the adapter stores `CacheEntry` items.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from llmops.domain.chat import (
    ChatRequest,
    Completion,
    FinishReason,
    ImagePart,
    Message,
    Part,
    TextPart,
    ToolCall,
    ToolResult,
    Usage,
)

__all__ = [
    "CACHE_HEADER",
    "DEFAULT_TTL_S",
    "CacheDecision",
    "CacheEntry",
    "CacheStatus",
    "ResponseCache",
    "cache_decision",
    "cache_key",
    "storable",
]

CACHE_HEADER = "x-llmops-cache"
DEFAULT_TTL_S = 3600
_KEY_SCHEMA = "v1"  # bump to invalidate every entry when the key material changes


class CacheStatus(StrEnum):
    """Values of the `x-llmops-cache` response header and the audit/metric dimension."""

    HIT = "hit"
    MISS = "miss"
    BYPASS = "bypass"  # not looked up: not deterministic, streamed, or the caller said so


@dataclass(frozen=True, slots=True)
class CacheDecision:
    read: bool  # look the request up before calling the model
    write: bool  # store the model's answer afterwards
    reason: str  # why, for logs and tests (no request content)

    @property
    def status_if_not_hit(self) -> CacheStatus:
        return CacheStatus.MISS if self.read else CacheStatus.BYPASS


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value.strip().lower()
    return ""


def cache_decision(request: ChatRequest, headers: Mapping[str, str], *, allow_stream: bool = False) -> CacheDecision:
    """Whether to read and/or write the cache for this request. Header names are case-insensitive."""
    directive = _header(headers, CACHE_HEADER)
    if directive in ("bypass", "no-store"):
        return CacheDecision(read=False, write=False, reason=f"header {directive}")
    if request.stream and not allow_stream:
        return CacheDecision(read=False, write=False, reason="stream")
    if directive == "force":
        return CacheDecision(read=True, write=True, reason="header force")
    if request.temperature != 0:
        return CacheDecision(read=False, write=False, reason="not deterministic")
    if directive == "no-cache":
        return CacheDecision(read=False, write=True, reason="header no-cache")
    return CacheDecision(read=True, write=True, reason="temperature 0")


def cache_key(tenant_id: str, request: ChatRequest, target_id: str) -> str:
    """sha256 hex of the canonical key material; pass the request as sent to the provider."""
    if not tenant_id:
        raise ValueError("a cache key needs a tenant")
    material: dict[str, Any] = {
        "schema": _KEY_SCHEMA,
        "tenant": tenant_id,
        "target": target_id,
        "messages": [_message_material(m) for m in request.messages],
        "parameters": {
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "stop": list(request.stop),
        },
    }
    extra = _extra_material(request)
    if extra:
        material["extra"] = extra
    canonical = json.dumps(
        material, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _message_material(message: Message) -> list[Any]:
    """`[role, content]` for plain text (the key material before parts existed), else every part."""
    if all(isinstance(p, TextPart) and not p.cache_point for p in message.parts):
        return [message.role.value, message.content]
    return [message.role.value, [_part_material(p) for p in message.parts]]


def _part_material(part: Part) -> list[Any]:
    if isinstance(part, TextPart):
        return ["text", part.text, part.cache_point]
    if isinstance(part, ImagePart):
        return ["image", part.media_type, hashlib.sha256(part.data).hexdigest(), part.cache_point]
    if isinstance(part, ToolCall):
        return ["tool_call", part.id, part.name, part.arguments]
    if isinstance(part, ToolResult):
        return ["tool_result", part.tool_call_id, part.text]
    return ["reasoning", part.text, part.signature, part.redacted]


def _extra_material(request: ChatRequest) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if request.tools:
        extra["tools"] = [[t.name, t.description, dict(t.parameters), t.strict] for t in request.tools]
    if request.tool_choice is not None:
        extra["tool_choice"] = [request.tool_choice.mode, request.tool_choice.name]
    if request.parallel_tool_calls is not None:
        extra["parallel_tool_calls"] = request.parallel_tool_calls
    if request.response_format is not None:
        rf = request.response_format
        extra["response_format"] = [rf.kind, dict(rf.schema or {}), rf.name, rf.strict]
    if request.reasoning_effort is not None:
        extra["reasoning_effort"] = request.reasoning_effort
    if request.provider_options:
        extra["provider_options"] = dict(request.provider_options)
    return extra


def storable(completion: Completion) -> bool:
    """A filtered answer is never cached, so a blocked response is never replayed; nor is one with
    tool calls or reasoning, which a `CacheEntry` (text only) could not replay whole."""
    if completion.tool_calls or completion.reasoning:
        return False
    return completion.finish_reason is not FinishReason.CONTENT_FILTER


@dataclass(frozen=True, slots=True)
class CacheEntry:
    key: str
    tenant_id: str
    target_id: str
    text: str
    finish_reason: FinishReason
    usage: Usage  # what the original call used; a hit is billed zero tokens
    created_at: float
    expires_at: int  # epoch seconds (the table's TTL attribute)
    raw_model: str | None = None

    @classmethod
    def from_completion(
        cls,
        key: str,
        tenant_id: str,
        target_id: str,
        completion: Completion,
        now: float,
        ttl_s: int = DEFAULT_TTL_S,
    ) -> CacheEntry:
        if ttl_s <= 0:
            raise ValueError("cache ttl must be positive")
        return cls(
            key=key,
            tenant_id=tenant_id,
            target_id=target_id,
            text=completion.text,
            finish_reason=completion.finish_reason,
            usage=completion.usage,
            created_at=now,
            expires_at=int(now + ttl_s),
            raw_model=completion.raw_model,
        )

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def to_completion(self) -> Completion:
        """The cached answer as a Completion, with zero usage: a hit costs no tokens."""
        return Completion(
            text=self.text,
            finish_reason=self.finish_reason,
            usage=Usage(input_tokens=0, output_tokens=0),
            raw_model=self.raw_model,
            extra={"cache_hit": True, "cached_usage": self.usage},
        )


class ResponseCache(Protocol):
    """Port for the cache store (implemented by the DynamoDB adapter). Must never raise on a
    store outage: `get` returns None and `put` returns False, so the cache can only save calls."""

    def get(self, tenant_id: str, key: str, now: float) -> CacheEntry | None: ...

    def put(self, entry: CacheEntry) -> bool: ...
