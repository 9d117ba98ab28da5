"""Pure mapping between the gateway's chat model and the Bedrock Converse API (no I/O, no botocore).

ConverseStream takes the same request as Converse (`to_converse_request`); its events, as botocore
parses them, map to `StreamEvent`s in `from_converse_stream`.

What maps to what:

- Parts become content blocks in order: text, `image` (raw bytes: botocore base64-encodes them on
  the wire), assistant `toolUse` (arguments parsed to an object), `toolResult` in a user turn (tool
  messages are user turns on Converse, so consecutive results merge into one turn, results first),
  `reasoningContent` (signed thinking, sent back unchanged), and a `cachePoint` after each part
  marked as a cache breakpoint (in system blocks too).
- `tool_choice`: auto sends no `toolChoice` (Converse's default, and the only choice some models
  accept), required is `any`, a function is `tool`. Converse has no "none": the tools are withheld,
  unless the history holds tool blocks, for which Bedrock requires a `toolConfig`; then the tools
  are sent with the default choice (the model may still call one; the caller asked it not to).
  History with tool calls but no tools offered declares the tools it called, with any-object inputs.
- `response_format` becomes a forced tool whose input schema is the format's schema (a permissive
  object schema for `json_object`); its `toolUse` comes back as the completion's text with finish
  reason stop, never as a tool call. Where thinking is on, Claude refuses forced tools, so the
  format goes to Converse's native structured output (`outputConfig.textFormat`) instead.
- `reasoning_effort` becomes the model family's reasoning fields: Claude's `thinking` budget (with
  `maxTokens` raised above it), Nova 2's `reasoningConfig`, gpt-oss's `reasoning_effort`; DeepSeek R1
  always reasons and takes none.
- `provider_options` (pass-through fields a tenant's policy allowed) are merged last and never
  replace what the gateway set.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from llmops.adapters.provider_errors import ServiceErrorTable
from llmops.domain.chat import (
    ChatRequest,
    Completion,
    FinishReason,
    ImagePart,
    Message,
    Part,
    Reasoning,
    ResponseFormat,
    Role,
    TextPart,
    ToolCall,
    ToolResult,
    Usage,
)
from llmops.domain.errors import BadRequestError, ProviderError, ProviderFailureKind
from llmops.domain.guard import safe_regex
from llmops.domain.model_ids import ModelFamily, model_family
from llmops.domain.routing import Quirk, Target
from llmops.domain.streaming import ReasoningDelta, StreamEnd, StreamEvent, TextDelta, ToolCallDelta

BEDROCK_MAX_TEMPERATURE = 1.0

__all__ = [
    "ERROR_KINDS",
    "ERROR_TABLE",
    "FINISH_REASONS",
    "THINKING_BUDGETS",
    "from_converse_response",
    "from_converse_stream",
    "merge_consecutive_roles",
    "structured_output_tool",
    "to_converse_request",
]

FINISH_REASONS: Mapping[str, FinishReason] = MappingProxyType(
    {
        "end_turn": FinishReason.STOP,
        "stop_sequence": FinishReason.STOP,
        "tool_use": FinishReason.TOOL_CALLS,
        "max_tokens": FinishReason.LENGTH,
        "model_context_window_exceeded": FinishReason.LENGTH,
        "guardrail_intervened": FinishReason.CONTENT_FILTER,
        "content_filtered": FinishReason.CONTENT_FILTER,
    }
)

# Error code (x-amzn-ErrorType, as botocore reports it in ClientError) -> what the router should do.
#
# AccessDeniedException and ResourceNotFoundException are UNAVAILABLE, not INVALID_REQUEST, on
# purpose: they mean *this target* is misconfigured (model access not granted in the region, an IAM
# policy missing, a retired model id or inference profile), not that the caller's request is wrong.
# The same request is valid for the route's other targets, so the router must fall back instead of
# answering the caller with a 400 that blames them; the breaker and the provider-error alarms then
# surface the misconfiguration to on-call.
ERROR_KINDS: Mapping[str, ProviderFailureKind] = MappingProxyType(
    {
        "ThrottlingException": ProviderFailureKind.THROTTLED,
        "ServiceQuotaExceededException": ProviderFailureKind.THROTTLED,
        "TooManyRequestsException": ProviderFailureKind.THROTTLED,
        "ModelNotReadyException": ProviderFailureKind.UNAVAILABLE,
        "ServiceUnavailableException": ProviderFailureKind.UNAVAILABLE,
        "InternalServerException": ProviderFailureKind.UNAVAILABLE,
        "ModelErrorException": ProviderFailureKind.UNAVAILABLE,
        "ModelTimeoutException": ProviderFailureKind.TIMEOUT,
        "AccessDeniedException": ProviderFailureKind.UNAVAILABLE,
        "ResourceNotFoundException": ProviderFailureKind.UNAVAILABLE,
        "ValidationException": ProviderFailureKind.INVALID_REQUEST,
        # ConverseStream's modeled exceptions inside the stream, spelled as its event members.
        "throttlingException": ProviderFailureKind.THROTTLED,
        "serviceUnavailableException": ProviderFailureKind.UNAVAILABLE,
        "internalServerException": ProviderFailureKind.UNAVAILABLE,
        "modelStreamErrorException": ProviderFailureKind.UNAVAILABLE,
        "validationException": ProviderFailureKind.INVALID_REQUEST,
    }
)


# ValidationExceptions that are about the target, not the request: an unknown model id, or a model
# that must be called through an inference profile. Like AccessDenied, they must allow fallback.
_MISCONFIGURED_TARGET = safe_regex.compile(
    r"model identifier is invalid|on-demand throughput isn.t supported|inference profile|end of its life",
    safe_regex.IGNORECASE,
)

# Unknown codes fall back to their HTTP status class (`provider_errors.failure_kind`).
ERROR_TABLE = ServiceErrorTable(
    kinds=ERROR_KINDS,
    target_faults=MappingProxyType({"ValidationException": _MISCONFIGURED_TARGET}),
)


# Thinking budgets (Claude's `budget_tokens`) per OpenAI `reasoning_effort`; Claude's minimum is 1024.
THINKING_BUDGETS: Mapping[str, int] = MappingProxyType({"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384})
_MIN_THINKING_BUDGET = 1024
# The answer's own room when the caller set no max_tokens but thinking needs maxTokens set above the budget.
_DEFAULT_ANSWER_TOKENS = 4096
# Nova 2 and gpt-oss know low/medium/high only; "minimal" is their lowest.
_EFFORT_LEVELS: Mapping[str, str] = MappingProxyType(
    {"minimal": "low", "low": "low", "medium": "medium", "high": "high"}
)
# What a `json_object` response format asks for, as a tool's input schema: any JSON object.
_ANY_OBJECT_SCHEMA: Mapping[str, Any] = MappingProxyType({"type": "object", "additionalProperties": True})
_EARLIER_TOOL = "A tool called earlier in this conversation."
_STRUCTURED_TOOL_DESCRIPTION = "Answer by calling this tool: its input is the whole response, in the required format."
# Converse's `ToolName` and `ToolUseId` patterns; OpenAI's are looser.
_TOOL_NAME_CHARS = safe_regex.compile(r"[^a-zA-Z0-9_-]")
_TOOL_USE_ID_CHARS = safe_regex.compile(r"[^a-zA-Z0-9_.:-]")
_MAX_NAME = 64
# Keys the gateway sets itself: pass-through options never replace them.
_GATEWAY_KEYS = frozenset({"modelId", "messages", "system", "inferenceConfig", "toolConfig", "outputConfig"})
# Converse rejects an empty tool-result content list and blank text blocks.
_EMPTY_TOOL_RESULT = "(empty)"

_CACHE_POINT: Mapping[str, Any] = MappingProxyType({"cachePoint": {"type": "default"}})


def merge_consecutive_roles(messages: Iterable[Message]) -> list[tuple[Role, list[Part]]]:
    """The conversation as Converse turns: tool results are user turns, consecutive turns of one
    role merge (keeping every part, in order), blank text parts and then empty turns are dropped.

    Converse requires user and assistant turns to alternate and rejects blank text blocks; OpenAI
    clients routinely send two user messages in a row (e.g. instructions, then the question), and
    several `tool` messages answer one assistant turn's parallel calls.
    """
    turns: list[tuple[Role, list[Part]]] = []
    for message in messages:
        role = Role.USER if message.role is Role.TOOL else message.role
        parts = [p for p in message.parts if not (isinstance(p, TextPart) and not p.text.strip())]
        if not parts:
            continue
        if turns and turns[-1][0] is role:
            turns[-1][1].extend(parts)
        else:
            turns.append((role, parts))
    return turns


def _converse_name(name: str) -> str:
    cleaned = _TOOL_NAME_CHARS.sub("_", name)[:_MAX_NAME]
    return cleaned or "response"


def _tool_use_id(call_id: str) -> str:
    """`call_id` as a valid Converse toolUseId; the same id always maps the same way, so a call and
    its result still pair up. Ids Converse accepts (Bedrock's own, OpenAI's) are unchanged."""
    cleaned = _TOOL_USE_ID_CHARS.sub("_", call_id)
    if cleaned == call_id and 0 < len(call_id) <= _MAX_NAME:
        return call_id
    digest = hashlib.sha256(call_id.encode()).hexdigest()[:16]
    return f"{cleaned[: _MAX_NAME - 17]}-{digest}" if cleaned else f"call-{digest}"


def _tool_input(call: ToolCall) -> Any:
    """An assistant's call arguments as Converse's `input` document (a JSON object)."""
    try:
        value = json.loads(call.arguments) if call.arguments.strip() else {}
    except ValueError:
        value = None
    if not isinstance(value, dict):
        # The caller's own text is not echoed (it may hold anything); the parameter is named.
        raise BadRequestError("An assistant tool call's 'arguments' must be a JSON object.", param="messages")
    return value


def _reasoning_block(part: Reasoning) -> dict[str, Any]:
    if part.redacted is not None:
        try:
            return {"reasoningContent": {"redactedContent": base64.b64decode(part.redacted, validate=True)}}
        except (binascii.Error, ValueError) as exc:
            raise BadRequestError("A redacted reasoning block is not valid base64.", param="messages") from exc
    text: dict[str, Any] = {"text": part.text}
    if part.signature is not None:
        text["signature"] = part.signature
    return {"reasoningContent": {"reasoningText": text}}


def _content_blocks(role: Role, parts: Iterable[Part]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for part in parts:
        target = blocks
        if isinstance(part, TextPart):
            block: dict[str, Any] = {"text": part.text}
        elif isinstance(part, ImagePart):
            block = {"image": {"format": part.format, "source": {"bytes": part.data}}}
        elif isinstance(part, ToolCall):
            block = {"toolUse": {"toolUseId": _tool_use_id(part.id), "name": part.name, "input": _tool_input(part)}}
        elif isinstance(part, ToolResult):
            # Claude requires a turn's tool results before its other blocks.
            target = results
            text = part.text if part.text.strip() else _EMPTY_TOOL_RESULT
            block = {"toolResult": {"toolUseId": _tool_use_id(part.tool_call_id), "content": [{"text": text}]}}
        elif role is Role.ASSISTANT:
            block = _reasoning_block(part)
        else:
            continue  # reasoning is the model's own; in a user turn it has no Converse block
        target.append(block)
        if getattr(part, "cache_point", False):
            target.append(dict(_CACHE_POINT))
    return results + blocks


def _system_blocks(request: ChatRequest) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role is not Role.SYSTEM:
            continue
        for part in message.parts:
            if isinstance(part, TextPart) and part.text.strip():
                blocks.append({"text": part.text})
                if part.cache_point:
                    blocks.append(dict(_CACHE_POINT))
    return blocks


def _called_tools(turns: Iterable[tuple[Role, list[Part]]]) -> list[str]:
    return [p.name for _, parts in turns for p in parts if isinstance(p, ToolCall)]


def _thinking(target: Target, request: ChatRequest) -> bool:
    """Whether this request turns on Claude's extended thinking (the mode with Claude's extra rules)."""
    return request.reasoning_effort is not None and _family(target) is ModelFamily.ANTHROPIC_CLAUDE


def _family(target: Target) -> ModelFamily:
    return model_family(target.model_id, target.foundation_model)


def structured_output_tool(target: Target, request: ChatRequest) -> str | None:
    """The name of the forced tool that carries `response_format`, if this request uses one (its
    `toolUse` is the answer's text, not a tool call); None without a format or when the format goes
    to Converse's native structured output."""
    if request.response_format is None or _thinking(target, request):
        return None
    return _converse_name(request.response_format.name)


def _format_schema(response_format: ResponseFormat) -> dict[str, Any]:
    if response_format.kind == "json_schema" and response_format.schema is not None:
        return dict(response_format.schema)
    return dict(_ANY_OBJECT_SCHEMA)


def _tool_config(target: Target, request: ChatRequest, called: Sequence[str]) -> dict[str, Any] | None:
    """`toolConfig` for the request; `called` names the tools the history's calls used, in order."""
    tools: list[dict[str, Any]] = []
    for spec in request.tools:
        tool: dict[str, Any] = {"name": _converse_name(spec.name), "inputSchema": {"json": dict(spec.parameters)}}
        if spec.description.strip():
            tool["description"] = spec.description
        tools.append({"toolSpec": tool})
    choice = request.tool_choice
    mode = choice.mode if choice is not None else "auto"
    withheld = mode == "none"
    if withheld:
        # No "none" on Converse: withhold the tools, but Bedrock wants a toolConfig whenever the
        # history holds toolUse/toolResult blocks, so then keep them with the default choice.
        if not called:
            tools = []
        mode = "auto"
    if called and not tools:
        # History with tool calls but no tools offered now (e.g. a summary of an agent's run):
        # Bedrock still wants the tools declared, so the ones called are, with any-object inputs.
        for name in dict.fromkeys(_converse_name(n) for n in called):
            tools.append(
                {
                    "toolSpec": {
                        "name": name,
                        "description": _EARLIER_TOOL,
                        "inputSchema": {"json": dict(_ANY_OBJECT_SCHEMA)},
                    }
                }
            )
    structured = structured_output_tool(target, request)
    tool_choice: dict[str, Any] | None = None
    if structured is not None:
        if mode != "function":
            tools.append(
                {
                    "toolSpec": {
                        "name": structured,
                        "description": _STRUCTURED_TOOL_DESCRIPTION,
                        "inputSchema": {"json": _format_schema(request.response_format)},  # type: ignore[arg-type]
                    }
                }
            )
        # Alone (or with the caller's tools withheld), the format's tool is forced; beside the
        # caller's tools, some tool must be called (one of theirs, or the format's with the answer).
        tool_choice = {"tool": {"name": structured}} if len(tools) == 1 or withheld else {"any": {}}
    if mode == "required":
        tool_choice = {"any": {}}
    elif mode == "function" and choice is not None and choice.name:
        tool_choice = {"tool": {"name": _converse_name(choice.name)}}
    if not tools:
        return None
    config: dict[str, Any] = {"tools": tools}
    if tool_choice is not None:
        config["toolChoice"] = tool_choice
    return config


def _reasoning_fields(target: Target, request: ChatRequest, inference: dict[str, Any]) -> dict[str, Any]:
    """The family's `additionalModelRequestFields` for `reasoning_effort` (adjusting `inference`)."""
    effort = request.reasoning_effort
    if effort is None:
        return {}
    family = _family(target)
    if family is ModelFamily.ANTHROPIC_CLAUDE:
        budget = max(
            _MIN_THINKING_BUDGET, min(THINKING_BUDGETS.get(effort, _MIN_THINKING_BUDGET), target.max_output_tokens - 1)
        )
        answer = request.max_tokens if request.max_tokens is not None else _DEFAULT_ANSWER_TOKENS
        # Claude counts thinking within maxTokens, which must exceed the budget.
        inference["maxTokens"] = max(min(budget + answer, target.max_output_tokens), budget + 1)
        return {"thinking": {"type": "enabled", "budget_tokens": budget}}
    if family is ModelFamily.AMAZON_NOVA_2:
        return {"reasoningConfig": {"type": "enabled", "maxReasoningEffort": _EFFORT_LEVELS.get(effort, "medium")}}
    if family is ModelFamily.OPENAI_GPT_OSS:
        return {"reasoning_effort": _EFFORT_LEVELS.get(effort, "medium")}
    # DeepSeek R1 always reasons and takes no setting; for other families routing has already
    # checked the target's `reasoning` capability, and the model reasons its own way.
    return {}


def _inference_config(target: Target, request: ChatRequest) -> dict[str, Any]:
    inference: dict[str, Any] = {}
    if request.max_tokens is not None:
        inference["maxTokens"] = request.max_tokens
    temperature, top_p = request.temperature, request.top_p
    if Quirk.TEMPERATURE_XOR_TOP_P in target.quirks and temperature is not None and top_p is not None:
        top_p = None  # the caller's temperature is the more common intent
    if Quirk.NO_SAMPLING_WHILE_REASONING in target.quirks and request.reasoning_effort is not None:
        temperature = top_p = None
    if temperature is not None:
        # OpenAI's scale is 0..2, Converse's 0..1: above 1 is "as random as the model allows".
        inference["temperature"] = min(temperature, BEDROCK_MAX_TEMPERATURE)
    if top_p is not None:
        inference["topP"] = top_p
    if request.stop:
        inference["stopSequences"] = list(request.stop)
    return inference


def to_converse_request(target: Target, request: ChatRequest) -> dict[str, Any]:
    """The keyword arguments for `bedrock-runtime.converse` (and `converse_stream`)."""
    turns = merge_consecutive_roles(request.conversation)
    converse: dict[str, Any] = {
        "modelId": target.model_id,
        "messages": [{"role": role.value, "content": _content_blocks(role, parts)} for role, parts in turns],
    }
    system = _system_blocks(request)
    if system:
        converse["system"] = system
    inference = _inference_config(target, request)
    additional = _reasoning_fields(target, request, inference)
    if inference:
        converse["inferenceConfig"] = inference
    tool_config = _tool_config(target, request, _called_tools(turns))
    if tool_config is not None:
        converse["toolConfig"] = tool_config
    if request.response_format is not None and structured_output_tool(target, request) is None:
        converse["outputConfig"] = {
            "textFormat": {
                "type": "json_schema",
                "structure": {
                    "jsonSchema": {
                        "schema": json.dumps(_format_schema(request.response_format)),
                        "name": _converse_name(request.response_format.name),
                    }
                },
            }
        }
    options = dict(request.provider_options)
    passed_fields = options.pop("additionalModelRequestFields", None)
    if isinstance(passed_fields, Mapping):
        additional = {**passed_fields, **additional}  # the gateway's own keys win
    if additional:
        converse["additionalModelRequestFields"] = additional
    for key, value in options.items():
        if key not in _GATEWAY_KEYS:
            converse.setdefault(key, value)
    return converse


def _arguments(value: Any) -> str:
    return json.dumps(value if value is not None else {}, separators=(",", ":"), ensure_ascii=False)


def _reasoning_of(block: Mapping[str, Any]) -> Reasoning:
    if "redactedContent" in block:
        return Reasoning(redacted=base64.b64encode(bytes(block["redactedContent"])).decode("ascii"))
    text = block.get("reasoningText") or {}
    signature = text.get("signature")
    return Reasoning(text=str(text.get("text", "")), signature=str(signature) if signature is not None else None)


def _usage(reported: Mapping[str, Any]) -> Usage:
    """Converse's `inputTokens` excludes the cached tokens; the gateway's `input_tokens` counts them."""
    cache_read = int(reported.get("cacheReadInputTokens") or 0)
    cache_write = int(reported.get("cacheWriteInputTokens") or 0)
    return Usage(
        input_tokens=int(reported.get("inputTokens", 0)) + cache_read + cache_write,
        output_tokens=int(reported.get("outputTokens", 0)),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def _finish(stop_reason: str, tool_calls: int) -> FinishReason:
    # tool_use from the format's forced tool alone is a finished answer, not a call for the caller.
    if stop_reason == "tool_use" and tool_calls == 0:
        return FinishReason.STOP
    return FINISH_REASONS.get(stop_reason, FinishReason.STOP)


def from_converse_response(resp: Mapping[str, Any], *, structured_tool: str | None = None) -> Completion:
    """Maps a Converse response; a response without a message is a provider fault, not a crash.

    `structured_tool` (from `structured_output_tool`) names the forced tool whose input is the text.
    """
    texts: list[str] = []
    tool_calls: list[ToolCall] = []
    reasoning: list[Reasoning] = []
    try:
        for block in resp["output"]["message"]["content"]:
            if not isinstance(block, Mapping):
                continue
            if "text" in block:
                texts.append(str(block["text"]))
            elif "toolUse" in block:
                use = block["toolUse"]
                if structured_tool is not None and use["name"] == structured_tool:
                    texts.append(_arguments(use.get("input")))
                else:
                    tool_calls.append(ToolCall(str(use["toolUseId"]), str(use["name"]), _arguments(use.get("input"))))
            elif "reasoningContent" in block:
                reasoning.append(_reasoning_of(block["reasoningContent"]))
        usage = _usage(resp.get("usage") or {})
        stop_reason = str(resp.get("stopReason", "end_turn"))
    except (KeyError, TypeError, ValueError) as exc:
        raise ProviderError(ProviderFailureKind.UNAVAILABLE, "Bedrock returned a malformed Converse response") from exc
    extra: dict[str, Any] = {"stop_reason": stop_reason}
    latency = (resp.get("metrics") or {}).get("latencyMs")
    if latency is not None:
        extra["provider_latency_ms"] = latency
    return Completion(
        text="".join(texts),
        finish_reason=_finish(stop_reason, len(tool_calls)),
        usage=usage,
        extra=extra,
        tool_calls=tuple(tool_calls),
        reasoning=tuple(reasoning),
    )


def _reasoning_delta(delta: Mapping[str, Any]) -> ReasoningDelta | None:
    if "redactedContent" in delta:
        return ReasoningDelta(redacted=base64.b64encode(bytes(delta["redactedContent"])).decode("ascii"))
    if delta.get("signature") is not None:
        return ReasoningDelta(signature=str(delta["signature"]))
    text = delta.get("text")
    return ReasoningDelta(text=str(text)) if text else None


def from_converse_stream(
    events: Iterable[Mapping[str, Any]], *, target_id: str = "", structured_tool: str | None = None
) -> Iterator[StreamEvent]:
    """ConverseStream's events (botocore's dicts) as `StreamEvent`s, then the `StreamEnd`.

    Text deltas are `TextDelta`s; a `toolUse` block is a `ToolCallDelta` with its id and name at its
    contentBlockStart, then one per input piece (indexed by the order the calls started, as OpenAI
    clients assemble them, not by Converse's block index, which counts text and reasoning too);
    reasoning deltas are `ReasoningDelta`s. The forced tool of `structured_tool` streams its input
    as text. The end comes once the stream is over, so it carries metadata's usage, which Bedrock
    sends after messageStop. A stream that ends without messageStop was cut off: a provider fault.
    """
    stop_reason: str | None = None
    usage: Usage | None = None
    # contentBlockIndex -> the tool call's ordinal, or None for the structured-output tool's block.
    tool_blocks: dict[int, int | None] = {}
    calls = 0
    try:
        for event in events:
            if "contentBlockStart" in event:
                start = event["contentBlockStart"]
                use = (start.get("start") or {}).get("toolUse")
                if use is not None:
                    index = int(start.get("contentBlockIndex", 0))
                    if structured_tool is not None and use.get("name") == structured_tool:
                        tool_blocks[index] = None
                    else:
                        tool_blocks[index] = calls
                        yield ToolCallDelta(calls, "", str(use["toolUseId"]), str(use["name"]))
                        calls += 1
            elif "contentBlockDelta" in event:
                block = event["contentBlockDelta"]
                delta = block.get("delta") or {}
                index = int(block.get("contentBlockIndex", 0))
                if isinstance(delta.get("text"), str):
                    if delta["text"]:
                        yield TextDelta(delta["text"])
                elif "toolUse" in delta:
                    piece = str((delta["toolUse"] or {}).get("input") or "")
                    if index in tool_blocks and piece:
                        ordinal = tool_blocks[index]
                        yield TextDelta(piece) if ordinal is None else ToolCallDelta(ordinal, piece)
                elif "reasoningContent" in delta:
                    reasoning = _reasoning_delta(delta["reasoningContent"] or {})
                    if reasoning is not None:
                        yield reasoning
            elif "messageStop" in event:
                stop_reason = str(event["messageStop"].get("stopReason", "end_turn"))
            elif "metadata" in event:
                usage = _usage(event["metadata"].get("usage") or {})
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ProviderError(
            ProviderFailureKind.UNAVAILABLE, "Bedrock sent a malformed ConverseStream event", target_id=target_id
        ) from exc
    if stop_reason is None:
        raise ProviderError(
            ProviderFailureKind.UNAVAILABLE, "Bedrock's stream ended before messageStop", target_id=target_id
        )
    yield StreamEnd(_finish(stop_reason, calls), usage)
