"""OpenAI Chat Completions request and response models (the API tier).

Pydantic validates the wire format; `to_domain` turns it into the provider-neutral ChatRequest,
checking what a JSON schema cannot say (tool-call bookkeeping across messages, images, the tenant's
content policy). Every refusal is a 400 in OpenAI's error shape naming the parameter; messages never
echo the caller's strings. Fields we do not support are declared so we can reject them with a precise
400 naming the parameter, instead of silently ignoring what the caller asked for.

What is accepted beyond text (README, "Tools, images, structured output, reasoning"):

* `tools` (function tools, at most 128 and the policy's `content.max_tools`), `tool_choice`,
  `parallel_tool_calls`; assistant `tool_calls` and `tool` messages, checked as Bedrock needs them
  (each call answered by a `tool` message before the next user or assistant turn). The legacy
  `functions` / `function_call` are refused with a 400 that says to use `tools`: mapping them would
  need the legacy response shape too, which no current SDK asks for.
* `image_url` parts in user messages: `data:` URLs (`domain.images`), or http(s) URLs when the
  policy allows them, fetched through the `ImageFetcher` port. `cache_control: {"type": "ephemeral"}`
  on a part is a prompt-cache breakpoint after it.
* `response_format` (`text`, `json_object`, `json_schema`), `reasoning_effort`.
* Bedrock pass-through fields, top level as the OpenAI SDKs send `extra_body`: `guardrailConfig`,
  `serviceTier`, `performanceConfig`, `additionalModelRequestFields`, each only where the tenant's
  policy lists it (`content.allowed_passthrough_fields`), into `ChatRequest.provider_options` under
  the same names. `additionalModelRequestFields` may not set what the gateway sets itself
  (`RESERVED_MODEL_FIELDS`: reasoning, token limits, stop sequences, sampling, tools, output format)
  nor carry prompt text past the input guard (`system`, `messages`, `prompt`...).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, field_validator

from llmops.domain.chat import (
    ChatRequest,
    ImagePart,
    Message,
    Part,
    Reasoning,
    ResponseFormat,
    Role,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolResult,
    ToolSpec,
)
from llmops.domain.errors import BadRequestError
from llmops.domain.guard.normalization import without_lone_surrogates
from llmops.domain.images import ImageFetchError, image_from_bytes, is_remote_url, parse_data_url

if TYPE_CHECKING:
    # Types only: the guard policy module and the ports are a good part of the gateway's cold init,
    # and the handler imports this module at load.
    from llmops.domain.guard.policy import ContentPolicy
    from llmops.domain.ports import ImageFetcher

__all__ = [
    "MAX_TOOLS",
    "RESERVED_MODEL_FIELDS",
    "ChatCompletionRequest",
    "ChatMessageIn",
    "ModelList",
    "require_conversation",
]

MAX_STOP_SEQUENCES = 4
MAX_TOOLS: Final = 128  # OpenAI's limit
MAX_REMOTE_URL_CHARS: Final = 8192
# A pass-through field's JSON size: these are a few settings, never documents.
MAX_PASSTHROUGH_BYTES: Final = 16_384
_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
# `additionalModelRequestFields` keys (compared lower-cased, without '_' and '-') the gateway sets
# itself from the OpenAI parameters, or that would carry text to the model past the input guard.
RESERVED_MODEL_FIELDS: Final = frozenset(
    {
        "thinking",
        "reasoning",
        "reasoningconfig",
        "reasoningeffort",
        "maxtokens",
        "maxtokenstosample",
        "maxcompletiontokens",
        "maxnewtokens",
        "stop",
        "stopsequences",
        "temperature",
        "topp",
        "tools",
        "toolchoice",
        "toolconfig",
        "responseformat",
        "outputformat",
        "outputconfig",
        "system",
        "messages",
        "prompt",
        "inputtext",
        "documents",
    }
)

# Numbers and flags are strict, as OpenAI's are: `true` is not a token count and "10" is not a
# number. A strict float still takes a JSON integer (`"temperature": 1` is 1.0).
#
# The parts of a request are `defer_build`: requests are validated by ChatCompletionRequest's
# validator, which includes theirs, so building a validator and serializer of their own for each at
# import (a cold start's work) would only serve code that builds a part directly, and it still can.


class CacheControl(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    type: Literal["ephemeral"]


class ImageUrl(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    url: Annotated[
        str, Field(min_length=1, description="A data: URL (base64 png/jpeg/gif/webp) or, if allowed, http(s).")
    ]
    detail: Literal["auto", "low", "high"] | None = None


class ContentPart(BaseModel):
    # Other part types (input_audio, file...) are let through here so `to_domain` can refuse them
    # with one clear message naming the part.
    model_config = ConfigDict(defer_build=True, extra="allow")

    type: str = Field(description="'text' or 'image_url' (images in user messages only).")
    text: str | None = None
    image_url: ImageUrl | None = None
    cache_control: CacheControl | None = None


class FunctionCallIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=64)]
    arguments: str = Field(description="The call's arguments: a JSON object, as text.")


class ToolCallIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    id: Annotated[str, Field(min_length=1, max_length=256)]
    type: Literal["function"] = "function"
    function: FunctionCallIn


class ThinkingBlockIn(BaseModel):
    """A reasoning block of an earlier assistant turn, carried back with its signature."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    type: Literal["thinking", "redacted_thinking"]
    thinking: str | None = None
    signature: str | None = None
    data: str | None = None  # redacted_thinking: the provider's opaque block
    index: StrictInt | None = None  # as streamed; a client assembling the deltas may keep it


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    # Required except on an assistant message that makes tool calls (checked in `to_domain`). The
    # list comes first so that a bad part's error (pydantic reports members in order) names the part.
    content: list[ContentPart] | str | None = None
    name: str | None = Field(default=None, max_length=64)
    tool_calls: Annotated[list[ToolCallIn] | None, Field(max_length=MAX_TOOLS)] = None
    tool_call_id: Annotated[str | None, Field(min_length=1, max_length=256)] = None
    # What SDKs send back when an application appends the assistant message it received.
    refusal: str | None = None
    annotations: list[Any] | None = None
    reasoning_content: str | None = None
    thinking_blocks: Annotated[list[ThinkingBlockIn] | None, Field(max_length=64)] = None
    # Legacy or unsupported; refused unless null.
    function_call: Any | None = None
    audio: Any | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    include_usage: StrictBool = False


class FunctionDefinition(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=64, description="^[a-zA-Z0-9_-]{1,64}$")]
    description: str | None = None
    parameters: dict[str, Any] | None = Field(default=None, description="A JSON Schema object.")
    strict: StrictBool | None = None


class ToolIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    type: Literal["function"]
    function: FunctionDefinition


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    model: Annotated[str, Field(min_length=1, max_length=256)]
    # May be empty only when `prompt` names a registered template that supplies the messages.
    messages: Annotated[list[ChatMessageIn], Field(max_length=2048)]
    temperature: Annotated[StrictFloat | None, Field(ge=0, le=2)] = None
    top_p: Annotated[StrictFloat | None, Field(gt=0, le=1)] = None
    max_tokens: Annotated[StrictInt | None, Field(ge=1)] = None
    max_completion_tokens: Annotated[StrictInt | None, Field(ge=1)] = None
    # maxItems in the schema for clients and fuzzers; the before-validator keeps the message plain.
    stop: str | Annotated[list[str], Field(max_length=MAX_STOP_SEQUENCES)] | None = None
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    user: Annotated[str | None, Field(max_length=256)] = None
    metadata: dict[str, str] | None = None
    n: Annotated[StrictInt | None, Field(ge=1, le=128)] = None
    # Accepted for SDK compatibility; providers ignore them.
    seed: StrictInt | None = None
    presence_penalty: Annotated[StrictFloat | None, Field(ge=-2, le=2)] = None
    frequency_penalty: Annotated[StrictFloat | None, Field(ge=-2, le=2)] = None
    tools: Annotated[list[ToolIn] | None, Field(max_length=MAX_TOOLS)] = None
    # "auto" | "none" | "required" | {"type": "function", "function": {"name": ...}} (checked in to_domain).
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: StrictBool | None = None
    response_format: dict[str, Any] | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None
    # Declared only so that using them yields a clear "not supported" error.
    functions: list[Any] | None = None
    function_call: Any | None = None
    logprobs: StrictBool | None = None
    # Bedrock pass-through fields (the SDKs' `extra_body`), where the tenant's policy allows each.
    guardrail_config: dict[str, Any] | None = Field(default=None, alias="guardrailConfig")
    service_tier: str | dict[str, Any] | None = Field(default=None, alias="serviceTier")
    performance_config: str | dict[str, Any] | None = Field(default=None, alias="performanceConfig")
    additional_model_request_fields: dict[str, Any] | None = Field(default=None, alias="additionalModelRequestFields")
    # llmops extensions (see README): a registered prompt template, and grounding documents for
    # the output guard.
    prompt: dict[str, Any] | None = None
    context: Annotated[list[str] | None, Field(max_length=64)] = None

    @field_validator("stop", mode="before")
    @classmethod
    def _bounded_stop(cls, value: object) -> object:
        if isinstance(value, list) and len(value) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences are allowed")
        return value

    def to_domain(self, content_policy: ContentPolicy, fetcher: ImageFetcher | None = None) -> ChatRequest:
        """The domain request, within the tenant's `content_policy`; remote image URLs (when the
        policy allows them) are fetched with `fetcher`, all of them within the policy's time limit."""
        self._reject_unsupported()
        tools = self._tools(content_policy)
        images = _Images(content_policy, fetcher)
        messages = [self._message(index, message, images) for index, message in enumerate(self.messages)]
        if not messages and self.prompt is None:
            raise BadRequestError("messages must not be empty.", param="messages")
        first_turn = next((m for m in messages if m.role is not Role.SYSTEM), None)
        if first_turn is not None and first_turn.role is not Role.USER:
            # Bedrock and most chat templates require the conversation to open with the user.
            raise BadRequestError("The first non-system message must be from the user.", param="messages")
        _check_tool_turns(messages)
        stops = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        return ChatRequest(
            model=self.model,
            messages=tuple(messages),
            max_tokens=self.max_completion_tokens or self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            stop=tuple(_valid_text(s) for s in stops if s),  # an empty stop sequence would stop at once
            user=self.user,
            stream=self.stream,
            metadata=dict(self.metadata or {}),
            tools=tools,
            tool_choice=self._tool_choice(tools),
            parallel_tool_calls=self.parallel_tool_calls if tools else None,
            response_format=_response_format(self.response_format),
            reasoning_effort=None if self.reasoning_effort in (None, "none") else self.reasoning_effort,
            provider_options=self._provider_options(content_policy),
        )

    def _reject_unsupported(self) -> None:
        if self.n is not None and self.n > 1:
            raise BadRequestError("n > 1 is not supported; send separate requests.", param="n")
        for name in ("functions", "function_call"):
            if getattr(self, name) is not None:
                raise BadRequestError(
                    f"'{name}' is deprecated and not supported by this gateway; use 'tools' and 'tool_choice'.",
                    param=name,
                )
        if self.logprobs:
            raise BadRequestError("logprobs are not supported.", param="logprobs")

    def _tools(self, policy: ContentPolicy) -> tuple[ToolSpec, ...]:
        if not self.tools:
            return ()
        if len(self.tools) > policy.max_tools:
            raise BadRequestError(
                f"At most {policy.max_tools} tools are allowed for this API key.", param="tools", code="invalid_value"
            )
        specs: list[ToolSpec] = []
        seen: set[str] = set()
        for index, tool in enumerate(self.tools):
            function = tool.function
            _check_name(function.name, f"tools[{index}].function.name")
            if function.name in seen:
                raise BadRequestError(
                    "Tool names must be unique; this name is used by an earlier tool.",
                    param=f"tools[{index}].function.name",
                    code="invalid_value",
                )
            seen.add(function.name)
            specs.append(
                ToolSpec(
                    name=function.name,
                    description=_valid_text(function.description or ""),
                    parameters=_object_schema(function.parameters, f"tools[{index}].function.parameters"),
                    strict=bool(function.strict),
                )
            )
        return tuple(specs)

    def _tool_choice(self, tools: Sequence[ToolSpec]) -> ToolChoice | None:
        choice = self.tool_choice
        if choice is None:
            return None
        if isinstance(choice, str):
            if choice not in ("auto", "none", "required"):
                raise BadRequestError(
                    "tool_choice must be 'auto', 'none', 'required' or "
                    "{'type': 'function', 'function': {'name': ...}}.",
                    param="tool_choice",
                    code="invalid_value",
                )
            if not tools:
                if choice == "none":
                    return None  # nothing to call either way
                raise BadRequestError(_CHOICE_WITHOUT_TOOLS, param="tool_choice")
            return ToolChoice(choice)
        function = choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        if (
            set(choice) != {"type", "function"}
            or choice.get("type") != "function"
            or not isinstance(function, Mapping)
            or set(function) != {"name"}
            or not isinstance(name, str)
        ):
            raise BadRequestError(
                "A named tool_choice is {'type': 'function', 'function': {'name': ...}}.",
                param="tool_choice",
                code="invalid_value",
            )
        if not tools:
            raise BadRequestError(_CHOICE_WITHOUT_TOOLS, param="tool_choice")
        if name not in {t.name for t in tools}:
            raise BadRequestError(
                "tool_choice names a function that is not among 'tools'.", param="tool_choice", code="invalid_value"
            )
        return ToolChoice("function", name)

    def _message(self, index: int, message: ChatMessageIn, images: _Images) -> Message:
        where = f"messages[{index}]"
        role = Role.SYSTEM if message.role == "developer" else Role(message.role)
        if message.function_call is not None:
            raise BadRequestError(
                "'function_call' is deprecated and not supported; use 'tool_calls'.", param=f"{where}.function_call"
            )
        if message.audio is not None:
            raise BadRequestError("Audio is not supported.", param=f"{where}.audio")
        if message.tool_calls is not None and role is not Role.ASSISTANT:
            raise BadRequestError("Only assistant messages may have tool_calls.", param=f"{where}.tool_calls")
        if message.thinking_blocks is not None and role is not Role.ASSISTANT:
            raise BadRequestError(
                "Only assistant messages may carry thinking_blocks.", param=f"{where}.thinking_blocks"
            )
        if role is Role.TOOL:
            return _tool_message(index, message)
        if message.tool_call_id is not None:
            raise BadRequestError("Only tool messages may have a tool_call_id.", param=f"{where}.tool_call_id")
        calls = _tool_calls(index, message.tool_calls or [])
        if message.content is None and not calls:
            raise BadRequestError(
                f"Missing required parameter: '{where}.content'.",
                param=f"{where}.content",
                code="missing_required_parameter",
            )
        parts: list[Part] = [*_reasoning(message.thinking_blocks or [])]
        parts += _content_parts(index, role, message.content, images)
        parts += calls
        if not any(isinstance(p, TextPart | ImagePart | ToolCall) for p in parts):
            raise BadRequestError(f"{where}.content must not be empty.", param=f"{where}.content")
        return Message(role, parts)

    def _provider_options(self, policy: ContentPolicy) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "guardrailConfig": self.guardrail_config,
            "serviceTier": self.service_tier,
            "performanceConfig": self.performance_config,
            "additionalModelRequestFields": self.additional_model_request_fields,
        }
        options: dict[str, Any] = {}
        for name, value in fields.items():
            if value is None:
                continue
            if name not in policy.allowed_passthrough_fields:
                raise BadRequestError(
                    f"'{name}' is not allowed for this API key (its guard policy's "
                    "content.allowed_passthrough_fields does not list it).",
                    param=name,
                )
            if len(json.dumps(value, ensure_ascii=False).encode("utf-8")) > MAX_PASSTHROUGH_BYTES:
                raise BadRequestError(
                    f"'{name}' is larger than {MAX_PASSTHROUGH_BYTES} bytes.", param=name, code="invalid_value"
                )
            options[name] = _PASSTHROUGH[name](value)
        return options


_CHOICE_WITHOUT_TOOLS: Final = "'tool_choice' is only allowed when 'tools' are specified."


def require_conversation(request: ChatRequest) -> None:
    """After any prompt template is applied, there must be something for the model to answer."""
    if not any(m.role is not Role.SYSTEM for m in request.messages):
        raise BadRequestError("messages must contain at least one user or assistant message.", param="messages")


def _valid_text(text: str) -> str:
    """JSON may carry lone UTF-16 surrogates ("\\ud800") that no UTF-8 encoder accepts: they become
    U+FFFD, as a UTF-8 decoder would render them, so hashing, token counting and providers work."""
    return without_lone_surrogates(text)


def _check_name(name: str, param: str) -> None:
    if not 1 <= len(name) <= 64 or not _NAME_CHARS.issuperset(name):
        raise BadRequestError(
            "Names are 1-64 letters, digits, '_' or '-' (^[a-zA-Z0-9_-]{1,64}$).", param=param, code="invalid_value"
        )


def _object_schema(schema: Mapping[str, Any] | None, param: str) -> Mapping[str, Any]:
    """A tool's `parameters`: a JSON Schema of an object (none or {}: a function of no arguments)."""
    if not schema:
        return {"type": "object", "properties": {}}
    kind = schema.get("type", "object")
    if kind != "object":
        raise BadRequestError(
            'The schema must describe a JSON object ("type": "object").', param=param, code="invalid_value"
        )
    return {**schema, "type": "object"}


class _Images:
    """Images of one request: count limit over all messages, decoding, remote fetches in one time budget."""

    def __init__(self, policy: ContentPolicy, fetcher: ImageFetcher | None) -> None:
        self.policy = policy
        self.fetcher = fetcher
        self.count = 0
        self._fetch_deadline: float | None = None

    def part(self, part: ContentPart, param: str) -> ImagePart:
        policy = self.policy
        if not policy.allow_images:
            raise BadRequestError("Images are not allowed for this API key.", param=param)
        self.count += 1
        if self.count > policy.max_images:
            raise BadRequestError(
                f"At most {policy.max_images} images are allowed per request.", param=param, code="invalid_value"
            )
        if part.image_url is None:
            raise BadRequestError(
                f"Missing required parameter: '{param}.image_url'.",
                param=f"{param}.image_url",
                code="missing_required_parameter",
            )
        param = f"{param}.image_url"
        url, cache_point = part.image_url.url, part.cache_control is not None
        if url[:5].lower() == "data:":
            return parse_data_url(url, max_bytes=policy.max_image_bytes, param=param, cache_point=cache_point)
        if not is_remote_url(url):
            raise BadRequestError(
                "The image URL must be a data: URL (data:image/png;base64,...) or an http(s) URL.",
                param=param,
                code="invalid_value",
            )
        return self._remote(url, param, cache_point)

    def _remote(self, url: str, param: str, cache_point: bool) -> ImagePart:
        if not self.policy.allow_remote_image_urls:
            raise BadRequestError(
                "Remote image URLs are not allowed for this API key; send the image as a data: URL "
                "(data:image/png;base64,...).",
                param=param,
            )
        if self.fetcher is None:
            raise BadRequestError("Remote image URLs cannot be fetched by this gateway; use a data: URL.", param=param)
        if len(url) > MAX_REMOTE_URL_CHARS:
            raise BadRequestError(
                f"The image URL is longer than {MAX_REMOTE_URL_CHARS} characters.", param=param, code="invalid_value"
            )
        now = time.monotonic()
        if self._fetch_deadline is None:
            self._fetch_deadline = now + self.policy.remote_image_timeout_s
        remaining = self._fetch_deadline - now
        if remaining <= 0:
            raise BadRequestError(_FETCH_FAILED + "the time for fetching this request's images ran out.", param=param)
        try:
            fetched = self.fetcher.fetch(url, max_bytes=self.policy.max_image_bytes, timeout_s=remaining)
        except ImageFetchError as error:
            raise BadRequestError(_FETCH_FAILED + error.reason, param=param) from None
        return image_from_bytes(
            fetched.data,
            fetched.content_type,
            max_bytes=self.policy.max_image_bytes,
            param=param,
            cache_point=cache_point,
        )


_FETCH_FAILED: Final = "The image URL could not be fetched: "


def _content_parts(
    index: int, role: Role, content: str | list[ContentPart] | None, images: _Images
) -> list[TextPart | ImagePart]:
    """The message's parts in order; adjacent text parts are joined (as one text, as before parts
    existed), a cache breakpoint ending the run it closes."""
    if content is None:
        return []
    if isinstance(content, str):
        return [TextPart(_valid_text(content))] if content else []
    parts: list[TextPart | ImagePart] = []
    run: list[str] = []

    def close_run(cache_point: bool) -> None:
        text = _valid_text("".join(run))
        run.clear()
        if text.strip():
            parts.append(TextPart(text, cache_point))
        elif cache_point and parts:
            # Bedrock refuses blank text blocks: the breakpoint moves to the part before it.
            parts[-1] = replace(parts[-1], cache_point=True)

    for part_index, part in enumerate(content):
        param = f"messages[{index}].content[{part_index}]"
        if part.type == "text" and part.text is not None:
            run.append(part.text)
            if part.cache_control is not None:
                close_run(True)
        elif part.type == "image_url":
            if role is not Role.USER:
                raise BadRequestError("Images are only allowed in user messages.", param=param)
            close_run(False)
            parts.append(images.part(part, param))
        else:
            # The part's type is not echoed: it is the caller's string and may hold anything.
            raise BadRequestError("This content part type is not supported; use text or image_url parts.", param=param)
    close_run(False)
    return parts


def _tool_calls(index: int, calls: Sequence[ToolCallIn]) -> list[ToolCall]:
    out: list[ToolCall] = []
    ids: set[str] = set()
    for call_index, call in enumerate(calls):
        where = f"messages[{index}].tool_calls[{call_index}]"
        if call.id in ids:
            raise BadRequestError("Tool call ids must be unique within a message.", param=f"{where}.id")
        ids.add(call.id)
        _check_name(call.function.name, f"{where}.function.name")
        arguments = _valid_text(call.function.arguments)
        if not _is_json_object(arguments):
            raise BadRequestError(
                "The arguments must be a JSON object encoded as a string.",
                param=f"{where}.function.arguments",
                code="invalid_value",
            )
        out.append(ToolCall(call.id, call.function.name, arguments))
    return out


def _reject_constant(_name: str) -> Any:
    raise ValueError("NaN and Infinity are not JSON")


def _is_json_object(text: str) -> bool:
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError, as is an overlong integer
        return False
    return isinstance(value, dict)


def _reasoning(blocks: Sequence[ThinkingBlockIn]) -> list[Reasoning]:
    """Reasoning blocks of an earlier assistant turn, as the provider signed them. A bare
    `reasoning_content` (no signature) is not sent back: providers refuse unsigned reasoning."""
    out: list[Reasoning] = []
    for block in blocks:
        if block.type == "redacted_thinking":
            if block.data:
                out.append(Reasoning(redacted=block.data))
        elif block.signature:
            out.append(Reasoning(text=block.thinking or "", signature=block.signature))
    return out


def _tool_message(index: int, message: ChatMessageIn) -> Message:
    where = f"messages[{index}]"
    if message.tool_call_id is None:
        raise BadRequestError(
            f"Missing required parameter: '{where}.tool_call_id'.",
            param=f"{where}.tool_call_id",
            code="missing_required_parameter",
        )
    if message.content is None:
        raise BadRequestError(
            f"Missing required parameter: '{where}.content'.",
            param=f"{where}.content",
            code="missing_required_parameter",
        )
    if isinstance(message.content, str):
        text = message.content
    else:
        texts: list[str] = []
        for part_index, part in enumerate(message.content):
            if part.type != "text" or part.text is None:
                raise BadRequestError(
                    "A tool message's content parts must be text parts.", param=f"{where}.content[{part_index}]"
                )
            texts.append(part.text)
        text = "".join(texts)
    return Message(Role.TOOL, [ToolResult(message.tool_call_id, _valid_text(text))])


def _check_tool_turns(messages: Sequence[Message]) -> None:
    """Each tool message answers a call of the assistant turn before it, once; and every call of
    an assistant turn is answered before the next user or assistant turn (Bedrock requires both)."""
    pending: dict[str, None] = {}
    caller = -1
    for index, message in enumerate(messages):
        if message.role is Role.TOOL:
            call_id = message.parts[0].tool_call_id if isinstance(message.parts[0], ToolResult) else ""
            if call_id not in pending:
                raise BadRequestError(
                    "This tool message does not answer a tool call of the assistant message before it "
                    "(or that call was answered already).",
                    param=f"messages[{index}].tool_call_id",
                )
            del pending[call_id]
        elif message.role in (Role.USER, Role.ASSISTANT):
            if pending:
                raise _unanswered(caller)
            if message.tool_calls:
                pending = dict.fromkeys(call.id for call in message.tool_calls)
                caller = index
    if pending:
        raise _unanswered(caller)


def _unanswered(caller: int) -> BadRequestError:
    return BadRequestError(
        f"Each tool call of messages[{caller}] must be answered by a tool message (with its "
        "tool_call_id) before the next user or assistant message.",
        param=f"messages[{caller}].tool_calls",
    )


def _response_format(value: Mapping[str, Any] | None) -> ResponseFormat | None:
    if value is None:
        return None
    kind = value.get("type")
    if kind == "text" and set(value) == {"type"}:
        return None
    if kind == "json_object" and set(value) == {"type"}:
        return ResponseFormat("json_object")
    if kind != "json_schema" or set(value) != {"type", "json_schema"} or not isinstance(value["json_schema"], Mapping):
        raise BadRequestError(
            "response_format must be {'type': 'text'}, {'type': 'json_object'} or "
            "{'type': 'json_schema', 'json_schema': {'name', 'schema', 'strict'?, 'description'?}}.",
            param="response_format",
            code="invalid_value",
        )
    spec = value["json_schema"]
    if not set(spec) <= {"name", "schema", "strict", "description"}:
        raise BadRequestError(
            "json_schema takes name, schema, strict and description only.",
            param="response_format",
            code="invalid_value",
        )
    name, schema, strict = spec.get("name"), spec.get("schema"), spec.get("strict", False)
    if not isinstance(name, str):
        raise BadRequestError("json_schema.name is required.", param="response_format", code="invalid_value")
    _check_name(name, "response_format")
    if not isinstance(schema, Mapping) or schema.get("type", "object") != "object":
        raise BadRequestError(
            'json_schema.schema must be a JSON Schema of an object ("type": "object").',
            param="response_format",
            code="invalid_value",
        )
    if not isinstance(strict, bool | None) or not isinstance(spec.get("description", ""), str):
        raise BadRequestError(
            "json_schema.strict is a boolean and json_schema.description a string.",
            param="response_format",
            code="invalid_value",
        )
    return ResponseFormat(
        "json_schema",
        schema=dict(schema),
        name=name,
        strict=bool(strict),
        description=_valid_text(spec.get("description") or ""),
    )


def _choice(value: Any, name: str, key: str, choices: tuple[str, ...]) -> dict[str, str]:
    """A Bedrock `{key: choice}` setting, also accepted as the bare choice string."""
    if isinstance(value, str):
        value = {key: value}
    if not isinstance(value, Mapping) or set(value) != {key} or value[key] not in choices:
        raise BadRequestError(
            f"'{name}' is {{'{key}': {' | '.join(repr(c) for c in choices)}}}.", param=name, code="invalid_value"
        )
    return {key: value[key]}


_GUARDRAIL_CHOICES: Final[Mapping[str, tuple[str, ...]]] = {
    "trace": ("enabled", "disabled", "enabled_full"),
    "streamProcessingMode": ("sync", "async"),
}


def _guardrail_config(value: Any) -> dict[str, Any]:
    name = "guardrailConfig"
    required = {"guardrailIdentifier", "guardrailVersion"}
    if (
        not isinstance(value, Mapping)
        or not required <= set(value) <= required | set(_GUARDRAIL_CHOICES)
        or not all(isinstance(value[k], str) and 1 <= len(value[k]) <= 2048 for k in required)
        or any(k in value and value[k] not in choices for k, choices in _GUARDRAIL_CHOICES.items())
    ):
        raise BadRequestError(
            "guardrailConfig is {guardrailIdentifier, guardrailVersion, trace?: enabled|disabled|enabled_full, "
            "streamProcessingMode?: sync|async}.",
            param=name,
            code="invalid_value",
        )
    return dict(value)


def _model_fields(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise BadRequestError("'additionalModelRequestFields' must be an object.", param="additionalModelRequestFields")
    for key in value:
        if key.lower().replace("_", "").replace("-", "") in RESERVED_MODEL_FIELDS:
            # The key is not echoed: it is the caller's string.
            raise BadRequestError(
                "additionalModelRequestFields may not set what the gateway sets itself (reasoning, token "
                "limits, stop sequences, temperature/top_p, tools, output format) or prompt text "
                "(system, messages, prompt); use the OpenAI parameters.",
                param="additionalModelRequestFields",
            )
    return dict(value)


_PASSTHROUGH: Final[Mapping[str, Any]] = {
    "guardrailConfig": _guardrail_config,
    "serviceTier": lambda v: _choice(v, "serviceTier", "type", ("default", "priority", "flex", "reserved")),
    "performanceConfig": lambda v: _choice(v, "performanceConfig", "latency", ("standard", "optimized")),
    "additionalModelRequestFields": _model_fields,
}


class ModelCard(BaseModel):
    # Only GET /v1/models builds these: their validators are built then, not on every cold start.
    model_config = ConfigDict(defer_build=True)

    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "llmops-gateway"
    # Gateway fields (the OpenAI SDKs keep unknown fields): which endpoint serves the model, and what
    # every target of its route supports (so fallbacks included), e.g. ["images", "tools"].
    kind: Literal["chat", "embedding"] = "chat"
    capabilities: list[str] = Field(default_factory=list)


class ModelList(BaseModel):
    model_config = ConfigDict(defer_build=True)

    object: Literal["list"] = "list"
    data: list[ModelCard]
