"""Renders domain results as OpenAI wire objects: chat.completion, SSE chunks and error bodies.

Beyond OpenAI's own fields, a completion with reasoning carries it as `reasoning_content` (the text,
as DeepSeek, vLLM and LiteLLM return it) and `thinking_blocks` (LiteLLM's shape: `{"type": "thinking",
"thinking", "signature"}` or `{"type": "redacted_thinking", "data"}`), so a client can send the signed
blocks back in a later turn, as Claude on Bedrock requires with tools. A streamed block is sent as its
`reasoning_content` pieces, then once whole in `thinking_blocks` with an `index` (the openai SDK's
delta accumulator merges list entries by index and refuses entries without one).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from llmops.domain.chat import Completion, Reasoning, ToolCall, Usage
from llmops.domain.errors import BadRequestError, GatewayError
from llmops.domain.guard import safe_regex

__all__ = [
    "DONE",
    "ChunkRenderer",
    "chat_completion",
    "error_body",
    "reasoning_text",
    "sse_stream",
    "thinking_block",
    "validation_error",
]

_SSE_PIECE_CHARS = 48


def reasoning_text(blocks: tuple[Reasoning, ...]) -> str:
    """The completion's `reasoning_content`: the blocks' texts in order (a redacted block has none)."""
    return "".join(block.text for block in blocks)


def thinking_block(block: Reasoning) -> dict[str, Any]:
    """One block in LiteLLM's `thinking_blocks` shape; `signature` only when the provider signed it."""
    if block.redacted is not None:
        return {"type": "redacted_thinking", "data": block.redacted}
    rendered: dict[str, Any] = {"type": "thinking", "thinking": block.text}
    if block.signature is not None:
        rendered["signature"] = block.signature
    return rendered


def _tool_call(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def chat_completion(completion_id: str, created: int, model: str, completion: Completion) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        # OpenAI sends null content for an answer that is only tool calls.
        "content": None if not completion.text and completion.tool_calls else completion.text,
        "refusal": None,
    }
    if completion.tool_calls:
        message["tool_calls"] = [_tool_call(call) for call in completion.tool_calls]
    if completion.reasoning:
        message["reasoning_content"] = reasoning_text(completion.reasoning)
        message["thinking_blocks"] = [thinking_block(block) for block in completion.reasoning]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": completion.finish_reason.value,
                "logprobs": None,
            }
        ],
        "usage": _usage(completion.usage),
    }


def _pieces(text: str) -> Iterator[str]:
    # Word-aligned pieces so clients that render as they read see natural chunks.
    start = 0
    while start < len(text):
        end = min(len(text), start + _SSE_PIECE_CHARS)
        if end < len(text):
            space = text.rfind(" ", start + 1, end)
            end = space + 1 if space > start else end
        yield text[start:end]
        start = end


@dataclass(frozen=True, slots=True)
class ChunkRenderer:
    """The SSE pieces of one `chat.completion.chunk` stream, as OpenAI sends them: a role chunk, content
    chunks, a finish chunk, the usage chunk if asked for (`stream_options.include_usage`), `[DONE]`."""

    completion_id: str
    created: int
    model: str

    def _chunk(self, delta: Mapping[str, Any] | None, finish: str | None, usage: Usage | None = None) -> str:
        body: dict[str, Any] = {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": []
            if delta is None
            else [{"index": 0, "delta": dict(delta), "finish_reason": finish, "logprobs": None}],
        }
        if usage is not None:
            body["usage"] = _usage(usage)
        return _sse(body)

    def role(self) -> str:
        return self._chunk({"role": "assistant", "content": ""}, None)

    def content(self, text: str) -> str:
        return self._chunk({"content": text}, None)

    def reasoning(self, text: str) -> str:
        return self._chunk({"reasoning_content": text}, None)

    def thinking_block(self, index: int, block: Reasoning) -> str:
        """A reasoning block once it is whole (its signature arrived): what a client sends back."""
        return self._chunk({"thinking_blocks": [{"index": index, **thinking_block(block)}]}, None)

    def tool_call_start(self, index: int, call_id: str, name: str) -> str:
        """The first chunk of a tool call, as OpenAI sends it: id, type and name, empty arguments."""
        start = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        return self._chunk({"tool_calls": [start]}, None)

    def tool_call_arguments(self, index: int, arguments: str) -> str:
        """A piece of the arguments of the call at `index`; the pieces concatenate to the JSON text."""
        return self._chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]}, None)

    def tool_call(self, index: int, call: ToolCall) -> str:
        """A whole tool call as the chunks the openai SDK assembles: its start, then its arguments."""
        start = self.tool_call_start(index, call.id, call.name)
        return start + (self.tool_call_arguments(index, call.arguments) if call.arguments else "")

    def finish(self, reason: str) -> str:
        return self._chunk({}, reason)

    def usage(self, usage: Usage) -> str:
        return self._chunk(None, None, usage)

    @staticmethod
    def error(error: GatewayError) -> str:
        """Ends a stream that cannot finish: openai-python's `Stream` raises `APIError` on an event whose
        JSON has an `error` key, and other clients see OpenAI's error body; no `[DONE]` follows it."""
        return _sse(error_body(error))


DONE = "data: [DONE]\n\n"


def _sse(payload: Mapping[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


def _usage(usage: Usage) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cache_read_tokens or usage.cache_write_tokens:
        # OpenAI's fields (the openai SDK's PromptTokensDetails) for prompt tokens read from and
        # written to the prompt cache, both part of prompt_tokens; only present when the provider's
        # cache took part, so plain answers keep their usage object.
        rendered["prompt_tokens_details"] = {
            "cached_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        }
    return rendered


def sse_stream(renderer: ChunkRenderer, completion: Completion, include_usage: bool) -> str:
    """A completion that is whole already (a cache hit) as one SSE body: reasoning, text in
    word-aligned pieces, then tool calls, as a streamed answer sends them."""
    parts = [renderer.role()]
    for index, block in enumerate(completion.reasoning):
        parts.extend(renderer.reasoning(piece) for piece in _pieces(block.text))
        parts.append(renderer.thinking_block(index, block))
    parts.extend(renderer.content(piece) for piece in _pieces(completion.text))
    parts.extend(renderer.tool_call(index, call) for index, call in enumerate(completion.tool_calls))
    parts.append(renderer.finish(completion.finish_reason.value))
    if include_usage:
        parts.append(renderer.usage(completion.usage))
    parts.append(DONE)
    return "".join(parts)


def error_body(error: GatewayError) -> dict[str, Any]:
    return {
        "error": {
            "message": error.message,
            "type": error.error_type,
            "code": error.code,
            "param": error.param,
        }
    }


# A location part the caller chose (an unknown key, a `metadata` key) is echoed only if it looks like
# a parameter name: a key may hold anything, PII included, and errors are logged and shown.
_ECHOABLE_NAME = safe_regex.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_UNION_MEMBERS = frozenset({"str", "int", "float", "bool"})


def _param_from_location(loc: tuple[Any, ...]) -> tuple[str | None, bool]:
    """The parameter a location names, and whether it is named in full (see `_ECHOABLE_NAME`)."""
    path = [p for p in loc if p != "body"]
    # pydantic adds union member names (e.g. 'str', 'list[ContentPart]') to locations; drop them.
    path = [p for p in path if not (isinstance(p, str) and ("[" in p or p in _UNION_MEMBERS))]
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, str) and _ECHOABLE_NAME.fullmatch(part):
            text += f".{part}" if text else part
        else:
            return text or None, False  # named up to the part that may not be echoed
    return text or None, True


def _names_the_body(loc: tuple[Any, ...]) -> bool:
    """The error is about the body as a whole (empty, `null`, an array, a string), not a field."""
    return all(p == "body" for p in loc)


def validation_error(errors: list[Mapping[str, Any]]) -> GatewayError:
    """Maps the first pydantic error to an OpenAI-style 400, naming the offending parameter."""
    if not errors:
        return BadRequestError("Invalid request body.")
    first = errors[0]
    kind = str(first.get("type", ""))
    loc = tuple(first.get("loc", ()))
    if kind == "json_invalid":
        return BadRequestError("The request body is not valid JSON.", code="invalid_json")
    if _names_the_body(loc):
        return BadRequestError("The request body must be a JSON object.", code="invalid_json")
    param, in_full = _param_from_location(loc)
    if kind == "missing":
        return BadRequestError(
            f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
        )
    if kind == "extra_forbidden":
        if not in_full:
            where = f" in '{param}'" if param else ""
            return BadRequestError(
                f"Unrecognized request argument supplied{where}.", param=param, code="unknown_parameter"
            )
        return BadRequestError(
            f"Unrecognized request argument supplied: {param}", param=param, code="unknown_parameter"
        )
    if kind == "literal_error" and param and param.endswith(".role"):
        return BadRequestError(
            f"Invalid value for '{param}': supported roles are system, developer, user and assistant.",
            param=param,
            code="invalid_value",
        )
    message = str(first.get("msg", "invalid value"))
    return BadRequestError(f"Invalid value for '{param or 'body'}': {message}.", param=param, code="invalid_value")
