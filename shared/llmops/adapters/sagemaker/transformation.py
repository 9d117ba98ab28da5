"""Pure mapping between the gateway's chat model and SageMaker InvokeEndpoint payloads (no I/O).

Two container dialects are supported (`PayloadFormat`):

* OPENAI: LMI, vLLM and TGI's Messages API take `{"messages": [...]}` and answer with an OpenAI
  `chat.completion` document. Everything a request can ask for travels: images as `image_url` parts
  holding `data:` URLs, assistant `tool_calls` and `tool` messages, `tools` / `tool_choice` /
  `parallel_tool_calls` (vLLM's tool parsers and guided decoding), `response_format` json_object and
  json_schema (vLLM's structured output), `reasoning_effort`. Answers' `tool_calls`, vLLM's reasoning
  parsers' `reasoning_content` (`reasoning` from vLLM 0.11) and prefix-cache hits
  (`usage.prompt_tokens_details.cached_tokens`) come back.
  Two things are deliberately not sent. Reasoning blocks of earlier assistant turns: vLLM's chat
  templates drop them from the prompt anyway (a reasoning model's earlier thinking is not part of
  its context, and vLLM's reasoning parsers sign nothing that would have to come back unchanged).
  Prompt-cache points: vLLM caches prefixes automatically (`--enable-prefix-caching`), with no hint.
* TGI: text-generation-inference's native `{"inputs", "parameters"}` with a prompt rendered from the
  model's chat template; it answers `[{"generated_text", "details"}]`. A prompt string has no slot
  for tools, images, tool turns, a response format or reasoning, so such a request is refused here
  (routing refuses it before, from the target's capabilities in routes.json; this is the backstop).

InvokeEndpointWithResponseStream takes the same body with `"stream": true`. The container then
writes server-sent events that SageMaker relays in PayloadPart events cut wherever it likes, so
`sse_data` re-assembles lines across parts: OpenAI `chat.completion.chunk`s ending with
`data: [DONE]`, or TGI's token events, whose last carries `generated_text` and `details`.
`from_response_stream` maps them to `StreamEvent`s.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from llmops.adapters.provider_errors import ServiceErrorTable
from llmops.adapters.sagemaker.chat_templates import UnknownChatTemplateError, render_prompt
from llmops.domain.chat import (
    Capability,
    ChatRequest,
    Completion,
    FinishReason,
    ImagePart,
    Message,
    Reasoning,
    ResponseFormat,
    Role,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolResult,
    ToolSpec,
    Usage,
)
from llmops.domain.errors import ProviderError, ProviderFailureKind
from llmops.domain.guard import safe_regex
from llmops.domain.routing import PayloadFormat, Target
from llmops.domain.streaming import ReasoningDelta, StreamEnd, StreamEvent, TextDelta, ToolCallDelta

__all__ = [
    "CARRIED_CAPABILITIES",
    "CONTENT_TYPE",
    "ERROR_KINDS",
    "ERROR_TABLE",
    "OPENAI_FINISH_REASONS",
    "TGI_FINISH_REASONS",
    "estimate_tokens",
    "from_invoke_endpoint_response",
    "from_response_stream",
    "openai_body",
    "sse_data",
    "tgi_body",
    "to_invoke_endpoint_request",
]

CONTENT_TYPE = "application/json"

OPENAI_FINISH_REASONS: Mapping[str, FinishReason] = MappingProxyType(
    {
        "stop": FinishReason.STOP,
        "eos": FinishReason.STOP,
        "eos_token": FinishReason.STOP,
        "tool_calls": FinishReason.TOOL_CALLS,
        "function_call": FinishReason.TOOL_CALLS,  # the legacy spelling some OpenAI-compatible servers keep
        "length": FinishReason.LENGTH,
        "content_filter": FinishReason.CONTENT_FILTER,
    }
)

TGI_FINISH_REASONS: Mapping[str, FinishReason] = MappingProxyType(
    {
        "eos_token": FinishReason.STOP,
        "stop_sequence": FinishReason.STOP,
        "length": FinishReason.LENGTH,
    }
)

# Error code (x-amzn-ErrorType, as botocore reports it) -> failure kind. ModelError and
# ValidationError need more than the code; see `ERROR_TABLE`.
ERROR_KINDS: Mapping[str, ProviderFailureKind] = MappingProxyType(
    {
        "ThrottlingException": ProviderFailureKind.THROTTLED,
        "ServiceUnavailable": ProviderFailureKind.UNAVAILABLE,
        "InternalFailure": ProviderFailureKind.UNAVAILABLE,
        "InternalDependencyException": ProviderFailureKind.UNAVAILABLE,
        # Serverless capacity still provisioning or a model still loading: HTTP 429 on the wire,
        # but it is the target that is not ready, so fall back rather than back off.
        "ModelNotReadyException": ProviderFailureKind.UNAVAILABLE,
        "ValidationError": ProviderFailureKind.INVALID_REQUEST,
        # InvokeEndpointWithResponseStream's exceptions inside the stream: the container's stream
        # broke off or timed out, or SageMaker's own relay failed.
        "ModelStreamError": ProviderFailureKind.UNAVAILABLE,
        "InternalStreamFailure": ProviderFailureKind.UNAVAILABLE,
    }
)

# "Endpoint foo of account 123 not found.", or a target variant the endpoint does not have: the
# target is misconfigured or was deleted (e.g. a finished canary), which is not the caller's fault,
# so the router must be free to fall back.
_MISSING_TARGET = safe_regex.compile(
    r"\b(endpoint|variant)\b.*\b(not found|not valid|does not exist)", safe_regex.IGNORECASE | safe_regex.DOTALL
)

# ModelError is the container's answer relayed (HTTP 424): its OriginalStatusCode says whose fault it
# was. Unknown codes fall back to their HTTP status class (`provider_errors.failure_kind`).
ERROR_TABLE = ServiceErrorTable(
    kinds=ERROR_KINDS,
    target_faults=MappingProxyType({"ValidationError": _MISSING_TARGET}),
    relayed_status_codes=frozenset({"ModelError"}),
)


def estimate_tokens(text: str) -> int:
    """A deliberately generous estimate (3 characters a token) used when the container reports none."""
    return math.ceil(len(text) / 3)


# What each dialect can carry beyond plain text. An OpenAI-format container takes all of it (whether
# the model behind it can use it is what routes.json's capabilities say); TGI's prompt string nothing.
CARRIED_CAPABILITIES: Mapping[PayloadFormat, frozenset[Capability]] = MappingProxyType(
    {PayloadFormat.OPENAI: frozenset(Capability), PayloadFormat.TGI: frozenset()}
)


def check_carried(target: Target, request: ChatRequest) -> None:
    """Refuses a request whose parts the target's payload cannot carry, rather than dropping them.

    Routing sends such a request only to targets with the capabilities, so reaching this means
    routes.json gives the target a capability its dialect lacks: the target is misconfigured, not
    the request wrong, so the failure is UNAVAILABLE and the router may fall back.
    """
    missing = request.required_capabilities - CARRIED_CAPABILITIES[target.payload_format]
    if missing:
        raise ProviderError(
            ProviderFailureKind.UNAVAILABLE,
            f"SageMaker target {target.id} takes the {target.payload_format.value} payload, which cannot carry "
            f"{', '.join(sorted(missing))}; routes.json must not list these capabilities for it",
            target_id=target.id,
            error_code="UnsupportedCapability",
        )


def openai_body(request: ChatRequest) -> dict[str, Any]:
    messages = [doc for m in request.messages for doc in _openai_messages(m)]
    body: dict[str, Any] = {"messages": messages}
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop"] = list(request.stop)
    if request.tools:
        body["tools"] = [_openai_tool(t) for t in request.tools]
        if request.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = request.parallel_tool_calls
        # Only beside tools: vLLM refuses any tool_choice but "none" without them.
        if request.tool_choice is not None:
            body["tool_choice"] = _openai_tool_choice(request.tool_choice)
    if request.response_format is not None:
        body["response_format"] = _openai_response_format(request.response_format)
    if request.reasoning_effort is not None:
        body["reasoning_effort"] = _VLLM_REASONING_EFFORT.get(request.reasoning_effort, request.reasoning_effort)
    return body


# vLLM's reasoning_effort (gpt-oss) takes low, medium or high and refuses anything else; OpenAI's
# "minimal" and "none" ask for the least reasoning, which on vLLM is "low".
_VLLM_REASONING_EFFORT: Mapping[str, str] = MappingProxyType({"minimal": "low", "none": "low"})


def _openai_messages(message: Message) -> list[dict[str, Any]]:
    """The turn as OpenAI messages: the turn itself, preceded by one `tool` message per tool result
    (OpenAI gives each result a message of its own, answering the assistant turn before it)."""
    results: list[dict[str, Any]] = []
    content: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            content.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            data = base64.b64encode(part.data).decode("ascii")
            content.append({"type": "image_url", "image_url": {"url": f"data:{part.media_type};base64,{data}"}})
        elif isinstance(part, ToolCall):
            calls.append(
                {"id": part.id, "type": "function", "function": {"name": part.name, "arguments": part.arguments}}
            )
        elif isinstance(part, ToolResult):
            results.append({"role": "tool", "tool_call_id": part.tool_call_id, "content": part.text})
        # Reasoning parts are not sent: see the module docstring.
    if message.role is Role.TOOL:
        # A tool turn is its results; text beside them belongs to the last one rather than being lost.
        if results and content:
            results[-1]["content"] += _joined_text(content)
        return results or [{"role": "tool", "content": _joined_text(content)}]
    doc: dict[str, Any] = {"role": message.role.value}
    has_images = any(c["type"] == "image_url" for c in content)
    # Text-only content goes as a string: every OpenAI-format container and chat template reads that,
    # while some templates (TGI's Messages API for text models) reject a list of parts.
    text = _joined_text(content)
    doc["content"] = content if has_images else (None if calls and not text else text)
    if calls:
        doc["tool_calls"] = calls
    return [*results, doc] if (content or calls or not results) else results


def _joined_text(content: Sequence[Mapping[str, Any]]) -> str:
    return "".join(str(c["text"]) for c in content if c["type"] == "text")


def _plain(value: Any) -> Any:
    """`value` with every mapping a dict and every sequence a list, so json.dumps takes it."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _openai_tool(tool: ToolSpec) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "parameters": _plain(tool.parameters)}
    if tool.description:
        function["description"] = tool.description
    if tool.strict:
        function["strict"] = True
    return {"type": "function", "function": function}


def _openai_tool_choice(choice: ToolChoice) -> Any:
    # vLLM takes all four: "auto" through its tool parser, "required" and a named function through
    # guided decoding on the tools' schemas, "none" by answering text.
    if choice.mode == "function":
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode


def _openai_response_format(response_format: ResponseFormat) -> dict[str, Any]:
    if response_format.kind == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {
                "name": response_format.name,
                "schema": _plain(response_format.schema or {}),
                "strict": response_format.strict,
            },
        }
    return {"type": "json_object"}


def tgi_body(target: Target, request: ChatRequest) -> dict[str, Any]:
    """TGI's native payload. Its validation differs from OpenAI's, so parameters are translated:

    * temperature must be > 0: 0 means greedy, i.e. `do_sample: false` and no temperature; any
      other value samples (TGI is greedy by default even at temperature 1.0).
    * top_p must lie in (0, 1): 1.0 (no nucleus cut) and 0 are omitted.
    * max_new_tokens is omitted when unset so the container applies its own limit for the prompt.
    """
    try:
        prompt = render_prompt(target.chat_template, request.messages)
    except UnknownChatTemplateError as exc:
        raise ProviderError(ProviderFailureKind.UNAVAILABLE, str(exc), target_id=target.id) from exc
    parameters: dict[str, Any] = {"details": True, "return_full_text": False}
    if request.max_tokens is not None:
        parameters["max_new_tokens"] = request.max_tokens
    if request.temperature is not None:
        if request.temperature <= 0:
            parameters["do_sample"] = False
        else:
            parameters["do_sample"] = True
            parameters["temperature"] = request.temperature
    if request.top_p is not None and 0 < request.top_p < 1:
        parameters["top_p"] = request.top_p
    if request.stop:
        parameters["stop"] = list(request.stop)
    return {"inputs": prompt, "parameters": parameters}


def to_invoke_endpoint_request(target: Target, request: ChatRequest, *, stream: bool = False) -> dict[str, Any]:
    """The keyword arguments for `sagemaker-runtime.invoke_endpoint`, or with `stream` for
    `invoke_endpoint_with_response_stream` (which answers server-sent events, so no JSON Accept)."""
    check_carried(target, request)
    is_tgi = target.payload_format is PayloadFormat.TGI
    body = tgi_body(target, request) if is_tgi else openai_body(request)
    if stream:
        body["stream"] = True
        if not is_tgi:
            # vLLM and LMI then end the stream with a chunk of token counts to settle on.
            body["stream_options"] = {"include_usage": True}
    kwargs: dict[str, Any] = {
        "EndpointName": target.endpoint_name,
        "Body": json.dumps(body, ensure_ascii=False).encode("utf-8"),
        "ContentType": CONTENT_TYPE,
    }
    if not stream:
        kwargs["Accept"] = CONTENT_TYPE
    if target.variant:
        kwargs["TargetVariant"] = target.variant
    return kwargs


def _from_openai(doc: Any, request: ChatRequest) -> Completion:
    choice = doc["choices"][0]
    message = choice.get("message") or {}
    text = str(message.get("content") or "")
    calls = tuple(_tool_call(call) for call in message.get("tool_calls") or ())
    thinking = message.get("reasoning_content") or message.get("reasoning")
    reasoning = (Reasoning(str(thinking)),) if thinking else ()
    usage = doc.get("usage") or {}
    input_tokens = usage.get("prompt_tokens")
    output_tokens = usage.get("completion_tokens")
    written = text + "".join(c.arguments for c in calls) + (str(thinking) if thinking else "")
    return Completion(
        text=text,
        finish_reason=_finish_reason(choice.get("finish_reason"), called=bool(calls)),
        usage=Usage(
            input_tokens=int(input_tokens)
            if input_tokens is not None
            else estimate_tokens("".join(m.content for m in request.messages)),
            output_tokens=int(output_tokens) if output_tokens is not None else estimate_tokens(written),
            cache_read_tokens=_cached_tokens(usage),
        ),
        raw_model=str(doc["model"]) if doc.get("model") else None,
        tool_calls=calls,
        reasoning=reasoning,
    )


def _finish_reason(raw: Any, *, called: bool) -> FinishReason:
    reason = OPENAI_FINISH_REASONS.get(str(raw), FinishReason.STOP)
    # vLLM answers "tool_calls" only for tool_choice "auto"; calls forced by "required" or a named
    # function end with "stop". Either way the turn ended to call tools, as Bedrock's "tool_use" says.
    return FinishReason.TOOL_CALLS if called and reason is FinishReason.STOP else reason


def _tool_call(call: Mapping[str, Any]) -> ToolCall:
    function = call["function"]
    arguments = function.get("arguments")
    # OpenAI's wire format has the arguments as JSON text; a few compatible servers send the object.
    text = arguments if isinstance(arguments, str) else json.dumps(arguments if arguments is not None else {})
    return ToolCall(id=str(call["id"]), name=str(function["name"]), arguments=text)


def _cached_tokens(usage: Mapping[str, Any]) -> int:
    """vLLM's prefix-cache hits (with --enable-prompt-tokens-details), as OpenAI reports them."""
    details = usage.get("prompt_tokens_details") or {}
    return int(details.get("cached_tokens") or 0)


def _from_tgi(doc: Any, request: ChatRequest, prompt: str) -> Completion:
    # TGI answers a list for a single input; some wrappers (LMI's TGI mode) answer the bare object.
    item = doc[0] if isinstance(doc, list) else doc
    text = str(item["generated_text"])
    details = item.get("details") or {}
    raw_reason = str(details.get("finish_reason", "eos_token"))
    if raw_reason == "stop_sequence":
        # TGI keeps the matched stop sequence in generated_text; OpenAI semantics exclude it.
        for stop in request.stop:
            if stop and text.endswith(stop):
                text = text[: -len(stop)]
                break
    prefill = details.get("prefill")
    generated = details.get("generated_tokens")
    return Completion(
        text=text,
        finish_reason=TGI_FINISH_REASONS.get(raw_reason, FinishReason.STOP),
        usage=Usage(
            input_tokens=len(prefill) if prefill else estimate_tokens(prompt),
            output_tokens=int(generated) if generated is not None else estimate_tokens(text),
        ),
        extra={"finish_reason": raw_reason},
    )


def from_invoke_endpoint_response(target: Target, request: ChatRequest, body: bytes) -> Completion:
    """Maps the response body; a body we cannot read is the provider's fault (UNAVAILABLE)."""
    try:
        doc = json.loads(body)
        if target.payload_format is PayloadFormat.TGI:
            prompt = render_prompt(target.chat_template, request.messages)
            return _from_tgi(doc, request, prompt)
        return _from_openai(doc, request)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ProviderError(
            ProviderFailureKind.UNAVAILABLE,
            f"SageMaker endpoint returned a response that is not {target.payload_format.value} JSON",
            target_id=target.id,
        ) from exc


def sse_data(parts: Iterable[bytes]) -> Iterator[str]:
    """The data of each server-sent event in `parts`, however the bytes were cut into parts.

    Lines (and UTF-8 characters) may split across parts, so bytes are buffered up to each newline.
    `data:` lines take an optional space; a bare JSON line (LMI's jsonlines output) is an event of
    its own; comments and other fields are ignored.
    """
    buffer = b""
    data: list[str] = []
    for part in parts:
        buffer += part
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8").removesuffix("\r")
            if not line:
                if data:
                    yield "\n".join(data)
                    data = []
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            elif line.startswith("{"):
                yield line
    if buffer.strip():
        line = buffer.decode("utf-8").strip()
        data.append(line[5:].removeprefix(" ") if line.startswith("data:") else line)
    if data:
        yield "\n".join(data)


def from_response_stream(target: Target, request: ChatRequest, parts: Iterable[bytes]) -> Iterator[StreamEvent]:
    """The container's stream (PayloadPart bytes) as `StreamEvent`s, in the target's dialect."""
    try:
        if target.payload_format is PayloadFormat.TGI:
            prompt = render_prompt(target.chat_template, request.messages)
            yield from _from_tgi_stream(request, prompt, sse_data(parts))
        else:
            yield from _from_openai_stream(sse_data(parts))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ProviderError(
            ProviderFailureKind.UNAVAILABLE,
            f"SageMaker endpoint streamed an event that is not {target.payload_format.value} JSON",
            target_id=target.id,
        ) from exc
    except _TruncatedStreamError as exc:
        raise ProviderError(ProviderFailureKind.UNAVAILABLE, str(exc), target_id=target.id) from exc


class _TruncatedStreamError(Exception):
    """The stream ended before the container said how the answer finished."""


def _from_openai_stream(events: Iterable[str]) -> Iterator[StreamEvent]:
    finish: str | None = None
    usage: Usage | None = None
    model: str | None = None
    done = False
    calls = _ToolCallIndexes()
    for data in events:
        if data.strip() == "[DONE]":
            done = True
            break
        doc = json.loads(data)
        model = str(doc["model"]) if doc.get("model") else model
        for choice in doc.get("choices") or []:
            delta = choice.get("delta") or {}
            # vLLM 0.11 renamed reasoning_content to reasoning and sent both for a while: one is read.
            thinking = delta.get("reasoning_content") or delta.get("reasoning")
            if thinking:
                yield ReasoningDelta(str(thinking))
            text = delta.get("content")
            if text:
                yield TextDelta(str(text))
            for call in delta.get("tool_calls") or ():
                yield calls.delta(call)
            finish = str(choice["finish_reason"]) if choice.get("finish_reason") else finish
        reported = doc.get("usage")
        if reported:
            usage = Usage(
                int(reported["prompt_tokens"]),
                int(reported["completion_tokens"]),
                cache_read_tokens=_cached_tokens(reported),
            )
    if finish is None and not done:
        raise _TruncatedStreamError("SageMaker endpoint's stream ended before its finish_reason")
    yield StreamEnd(_finish_reason(finish, called=calls.started), usage, raw_model=model)


class _ToolCallIndexes:
    """Streamed tool-call pieces as `ToolCallDelta`s, numbered 0, 1, ... in the order calls start.

    vLLM numbers calls itself; some OpenAI-compatible servers (ollama) send every call of a parallel
    batch at index 0, told apart only by a new id, which is then a new call rather than more of one.
    """

    def __init__(self) -> None:
        self._count = 0  # calls started so far
        self._slots: dict[int, int] = {}  # the server's index -> ours
        self._ids: dict[int, str] = {}  # the server's index -> the id of the call open at it

    @property
    def started(self) -> bool:
        return self._count > 0

    def delta(self, call: Mapping[str, Any]) -> ToolCallDelta:
        raw = int(call.get("index") or 0)
        call_id = str(call["id"]) if call.get("id") else None
        if raw not in self._slots or (call_id is not None and self._ids.get(raw, call_id) != call_id):
            self._slots[raw] = self._count
            self._count += 1
        if call_id is not None:
            self._ids[raw] = call_id
        function = call.get("function") or {}
        name = function.get("name")
        arguments = function.get("arguments")
        if arguments is not None and not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        return ToolCallDelta(self._slots[raw], arguments or "", id=call_id, name=str(name) if name else None)


def _from_tgi_stream(request: ChatRequest, prompt: str, events: Iterable[str]) -> Iterator[StreamEvent]:
    """TGI's token events. Special tokens (EOS) are not text. TGI keeps a matched stop sequence in its
    output, which OpenAI semantics exclude, so as many characters as the longest stop sequence are
    held back until the last event says whether the answer ended on one."""
    hold = max((len(s) for s in request.stop), default=0)
    pending = ""
    for data in events:
        doc = json.loads(data)
        token = doc.get("token") or {}
        if not token.get("special") and token.get("text"):
            pending += str(token["text"])
        if doc.get("generated_text") is not None:
            details = doc.get("details") or {}
            reason = str(details.get("finish_reason", "eos_token"))
            if reason == "stop_sequence":
                matched = next((s for s in request.stop if s and pending.endswith(s)), "")
                pending = pending[: len(pending) - len(matched)]
            if pending:
                yield TextDelta(pending)
            generated = details.get("generated_tokens")
            # Streamed details carry no prefill, so the input is estimated as without streaming.
            usage = Usage(estimate_tokens(prompt), int(generated)) if generated is not None else None
            yield StreamEnd(TGI_FINISH_REASONS.get(reason, FinishReason.STOP), usage)
            return
        if len(pending) > hold:
            cut = len(pending) - hold
            yield TextDelta(pending[:cut])
            pending = pending[cut:]
    raise _TruncatedStreamError("SageMaker endpoint's TGI stream ended before its last token")
