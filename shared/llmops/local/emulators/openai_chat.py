"""The OpenAI chat dialect as a vLLM (or LMI) container on a SageMaker endpoint speaks it.

`parse_chat` validates a request body the way vLLM's OpenAI server does: messages with string or
part-list content (`text` and `image_url` parts; images as base64 `data:` URLs, decoded and
checked), assistant `tool_calls` (arguments must be JSON objects, since chat templates parse them),
`tool` messages with their `tool_call_id`, `tools`, `tool_choice` (none / auto / required / a named
function, with vLLM's rules: `tool_choice` needs `tools`, "auto" needs a tool parser), and
`response_format` (text / json_object / json_schema). What the endpoint's model cannot do is refused
as vLLM refuses it: images on a model without vision ("... is not a multimodal model"), "auto" tool
choice on a server started without a tool parser. Refusals are 400s that never quote the request.

`emulate` answers deterministically, on the real wire shapes. With tools offered and either the
last turn the user's or `tool_choice` forcing a call, the answer is tool calls whose arguments are
instances of each tool's JSON schema (the tools named in the user's text, in the order named, or
the first tool; one unless `parallel_tool_calls`). After tool results the answer is text that
quotes them. With `response_format` the text is a JSON instance of the schema, or a JSON object.
As vLLM does, only "auto" tool choice ends with finish_reason "tool_calls"; forced calls end "stop".

`document` and `chunks` write the `chat.completion` document and the `chat.completion.chunk` stream
(tool calls as vLLM streams them: a first delta with the call's index, id and name, then pieces of
its arguments). With a forwarder, the body goes upstream as it is and `answer_from_document` /
`forwarded_deltas` map the upstream's answer back into the same shapes.

The emulators' token is one word (`answers.word_tokens`); a tool call costs one more for its name,
and an image `IMAGE_TOKENS` prompt tokens (vision encoders turn an image into a few hundred).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
import uuid
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from llmops.local.emulators.answers import EmulatedFinish, Generation, estimate_tokens, generate_answer, word_tokens
from llmops.local.emulators.schema_instances import instance_for

__all__ = [
    "IMAGE_TOKENS",
    "ChatAnswer",
    "ChatCall",
    "ContainerError",
    "EmulatedToolCall",
    "Tool",
    "Turn",
    "answer_from_document",
    "chunks",
    "deltas",
    "document",
    "emulate",
    "forwarded_body",
    "forwarded_deltas",
    "parse_chat",
]

IMAGE_TOKENS = 256

_FINISH = {EmulatedFinish.END: "stop", EmulatedFinish.LENGTH: "length", EmulatedFinish.STOP_SEQUENCE: "stop"}
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
_TOOL_CHOICES = frozenset({"none", "auto", "required"})
# What image bytes begin with, per format the gateway sends (PNG, JPEG, GIF, WebP at offset 8).
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")
_NO_PARAMETERS: Mapping[str, Any] = {"type": "object", "properties": {}}


class ContainerError(Exception):
    """What the model container would answer with a non-2xx status (SageMaker relays it as ModelError)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Turn:
    role: str
    text: str = ""
    images: tuple[bytes, ...] = ()
    tool_call_id: str | None = None  # a `tool` turn: the call it answers


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ChatCall:
    """One parsed chat request: what the emulated model is asked, and the body as it came."""

    label: str  # endpoint/variant, the emulated model's name
    body: Mapping[str, Any]
    turns: tuple[Turn, ...]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    streams: bool = False  # "stream": true
    include_usage: bool = False  # stream_options.include_usage
    tools: tuple[Tool, ...] = ()
    tool_choice: str = "none"  # none | auto | required | function
    tool_name: str | None = None  # tool_choice "function": the function
    parallel_tool_calls: bool = True
    response_format: str | None = None  # json_object | json_schema
    schema: Mapping[str, Any] | None = None  # json_schema's schema


@dataclass(frozen=True, slots=True)
class EmulatedToolCall:
    id: str
    name: str
    arguments: str  # JSON text


@dataclass(frozen=True, slots=True)
class ChatAnswer(Generation):
    """A `Generation` with what chat answers carry besides text. Being one, it ends a token stream
    the way every emulated stream ends (`EmulatorApp.pace` relies on that)."""

    tool_calls: tuple[EmulatedToolCall, ...] = ()
    reasoning: str = ""
    finish_reason: str = "stop"  # as the wire says it
    cached_tokens: int | None = None  # prompt_tokens_details.cached_tokens, when the server reports it


# A streamed chat answer: `delta` objects of chat.completion.chunks, then the `ChatAnswer`.
ChatStream = Iterator[dict[str, Any] | Generation]


def parse_chat(label: str, body: Mapping[str, Any], *, vision: bool, tool_parser: bool) -> ChatCall:
    """`body` validated as vLLM validates it; `vision` and `tool_parser` say what the model can do."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ContainerError(400, "'messages' is required and must be a non-empty list")
    turns = tuple(_turn(m, label, vision=vision) for m in messages)
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise ContainerError(400, "max_tokens must be at least 1")
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else [str(s) for s in stop]
    options = body.get("stream_options") or {}
    tools = _tools(body.get("tools"))
    tool_choice, tool_name = _tool_choice(body, tools, tool_parser=tool_parser)
    parallel = body.get("parallel_tool_calls", True)
    if not isinstance(parallel, bool):
        raise ContainerError(400, "parallel_tool_calls must be a boolean")
    response_format, schema = _response_format(body.get("response_format"))
    return ChatCall(
        label=label,
        body=body,
        turns=turns,
        max_tokens=max_tokens,
        temperature=_number(body.get("temperature")),
        top_p=_number(body.get("top_p")),
        stop=tuple(stop),
        streams=body.get("stream") is True,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        tools=tools,
        tool_choice=tool_choice,
        tool_name=tool_name,
        parallel_tool_calls=parallel,
        response_format=response_format,
        schema=schema,
    )


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ContainerError(400, "sampling parameters must be numbers") from exc


def _turn(message: Any, label: str, *, vision: bool) -> Turn:
    if not isinstance(message, dict) or message.get("role") not in _ROLES:
        raise ContainerError(400, "each message must be an object with a role of system, user, assistant or tool")
    role = str(message["role"])
    text, images = _content(message.get("content"), label, vision=vision)
    if role == "assistant":
        _check_tool_calls(message.get("tool_calls"))
    if role == "tool":
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise ContainerError(400, "a tool message needs the tool_call_id of the call it answers")
        return Turn(role, text, images, tool_call_id=call_id)
    return Turn(role, text, images)


def _content(raw: Any, label: str, *, vision: bool) -> tuple[str, tuple[bytes, ...]]:
    if raw is None or isinstance(raw, str):
        return raw or "", ()
    if not isinstance(raw, list):
        raise ContainerError(400, "message content must be a string or a list of content parts")
    texts: list[str] = []
    images: list[bytes] = []
    for part in raw:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url":
            if not vision:
                raise ContainerError(400, f"{label} is not a multimodal model")
            image = part.get("image_url")
            images.append(_image(image.get("url") if isinstance(image, dict) else image))
        else:
            raise ContainerError(400, "content parts must be text or image_url parts")
    return "".join(texts), tuple(images)


def _image(url: Any) -> bytes:
    """The bytes of a base64 `data:` image URL, or a 400 naming what is wrong (never the URL)."""
    if not isinstance(url, str):
        raise ContainerError(400, "an image_url part needs a url")
    if url.startswith(("http://", "https://")):
        # vLLM would fetch it; the emulated container has no network, and the gateway sends data URLs.
        raise ContainerError(400, "the emulated container does not fetch remote images; send a data URL")
    if not url.startswith("data:"):
        raise ContainerError(400, "The URL must be either a HTTP, data or file URL.")
    header, comma, payload = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not comma or encoding != "base64":
        raise ContainerError(400, "Only base64 data URLs are supported")
    if not media_type.startswith("image/"):
        raise ContainerError(400, "an image data URL must have an image/* media type")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ContainerError(400, "Failed to load image: the data URL is not valid base64") from exc
    if not (data.startswith(_IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")):
        raise ContainerError(400, "Failed to load image: cannot identify image file")
    return data


def _check_tool_calls(raw: Any) -> None:
    if raw is None:
        return
    if not isinstance(raw, list):
        raise ContainerError(400, "an assistant message's tool_calls must be a list")
    for call in raw:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(call.get("id"), str) or not function.get("name"):
            raise ContainerError(400, "each tool call needs an id and a function with a name")
        # Chat templates render the arguments as an object, so vLLM parses them.
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except (TypeError, ValueError) as exc:
            raise ContainerError(400, "a tool call's arguments in the conversation are not valid JSON") from exc
        if not isinstance(arguments, dict):
            raise ContainerError(400, "a tool call's arguments in the conversation must be a JSON object")


def _tools(raw: Any) -> tuple[Tool, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ContainerError(400, "tools must be a list of function tools")
    tools: list[Tool] = []
    for tool in raw:
        function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise ContainerError(400, "each tool must be a function tool with a name")
        parameters = function.get("parameters", _NO_PARAMETERS)
        if not isinstance(parameters, dict):
            raise ContainerError(400, "a function's parameters must be a JSON Schema object")
        tools.append(Tool(function["name"], parameters))
    return tuple(tools)


def _tool_choice(body: Mapping[str, Any], tools: tuple[Tool, ...], *, tool_parser: bool) -> tuple[str, str | None]:
    """vLLM's rules: tools without a choice mean "auto"; any choice but "none" needs tools."""
    raw = body.get("tool_choice")
    name: str | None = None
    if raw is None:
        mode = "auto" if tools else "none"
    elif isinstance(raw, str) and raw in _TOOL_CHOICES:
        mode = raw
    elif (
        isinstance(raw, dict) and isinstance(raw.get("function"), dict) and isinstance(raw["function"].get("name"), str)
    ):
        mode, name = "function", raw["function"]["name"]
    else:
        raise ContainerError(400, 'Only named tools, "none", "auto" or "required" are supported as tool_choice.')
    if mode == "none":
        return mode, None
    if not tools:
        raise ContainerError(400, "When using `tool_choice`, `tools` must be set.")
    if name is not None and name not in {t.name for t in tools}:
        raise ContainerError(400, "The tool specified in `tool_choice` does not match any of the specified `tools`")
    if mode == "auto" and not tool_parser:
        raise ContainerError(
            400, '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'
        )
    return mode, name


def _response_format(raw: Any) -> tuple[str | None, Mapping[str, Any] | None]:
    if raw is None:
        return None, None
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind == "text":
        return None, None
    if kind == "json_object":
        return kind, None
    if kind == "json_schema":
        spec = raw.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise ContainerError(400, "response_format json_schema needs json_schema.schema, a JSON Schema object")
        return kind, schema
    raise ContainerError(400, "response_format type must be text, json_object or json_schema")


# --- emulated answers -------------------------------------------------------------------------


def emulate(call: ChatCall) -> ChatAnswer:
    """The deterministic answer to `call`: a pure function of the label and everything in the prompt."""
    prompt_text = _prompt_text(call)
    input_tokens = estimate_tokens(prompt_text) + IMAGE_TOKENS * sum(len(t.images) for t in call.turns)
    names = _tools_to_call(call)
    if names:
        return _tool_calls_answer(call, names, prompt_text, input_tokens)
    return _text_answer(call, prompt_text, input_tokens)


def _prompt_text(call: ChatCall) -> str:
    """What the model reads: every turn's text, image digests (so answers differ by image) and the
    tool definitions (vLLM renders them into the prompt, so they cost input tokens too)."""
    texts = [t.text + "".join(f"<image {hashlib.sha256(i).hexdigest()[:16]}>" for i in t.images) for t in call.turns]
    tools = json.dumps([{"name": t.name, "parameters": t.parameters} for t in call.tools]) if call.tools else ""
    return "".join(texts) + tools


def _last_turn(call: ChatCall) -> Turn | None:
    return next((t for t in reversed(call.turns) if t.role not in ("system", "developer")), None)


def _tools_to_call(call: ChatCall) -> tuple[Tool, ...]:
    if not call.tools or call.tool_choice == "none":
        return ()
    if call.tool_choice == "function":
        return tuple(t for t in call.tools if t.name == call.tool_name)[:1]
    last = _last_turn(call)
    if call.tool_choice == "auto" and (last is None or last.role != "user"):
        return ()  # after tool results the model answers with text
    asked = next((t.text.lower() for t in reversed(call.turns) if t.role == "user"), "")
    named = sorted((asked.find(t.name.lower()), i) for i, t in enumerate(call.tools) if t.name.lower() in asked)
    chosen = tuple(call.tools[i] for _, i in named) or call.tools[:1]
    return chosen if call.parallel_tool_calls else chosen[:1]


def _tool_calls_answer(call: ChatCall, tools: tuple[Tool, ...], prompt_text: str, input_tokens: int) -> ChatAnswer:
    calls: list[EmulatedToolCall] = []
    used, cut = 0, False
    for index, tool in enumerate(tools):
        seed = f"{call.label}\n{prompt_text}\n{index}"
        arguments = json.dumps(instance_for(tool.parameters, seed), ensure_ascii=False)
        call_id = f"chatcmpl-tool-{hashlib.sha256(seed.encode()).hexdigest()[:32]}"
        words = word_tokens(arguments)
        left = None if call.max_tokens is None else call.max_tokens - used
        if left is not None and left < 1 + len(words):
            # Cut at max_tokens mid-arguments, as a decoder is: the JSON is left unfinished.
            if left > 0:
                calls.append(EmulatedToolCall(call_id, tool.name, "".join(words[: left - 1])))
                used += left
            cut = True
            break
        calls.append(EmulatedToolCall(call_id, tool.name, arguments))
        used += 1 + len(words)
    # vLLM says "tool_calls" only when its tool parser found the calls ("auto"); forced calls end "stop".
    finish_reason = "length" if cut else "tool_calls" if call.tool_choice == "auto" else "stop"
    return ChatAnswer(
        text="",
        finish=EmulatedFinish.LENGTH if cut else EmulatedFinish.END,
        input_tokens=input_tokens,
        output_tokens=used,
        tool_calls=tuple(calls),
        finish_reason=finish_reason,
    )


def _text_answer(call: ChatCall, prompt_text: str, input_tokens: int) -> ChatAnswer:
    last = _last_turn(call)
    if last is not None and last.role == "tool":
        # Answer from the results of the latest round of calls (the tool turns after the last assistant turn).
        results: list[str] = []
        for turn in reversed(call.turns):
            if turn.role != "tool":
                break
            results.insert(0, turn.text)
        subject = "Tool results: " + " ".join(results)
    else:
        user = next((t for t in reversed(call.turns) if t.role == "user"), None)
        subject = user.text if user is not None else ""
        if user is not None and user.images:
            subject += f" [{len(user.images)} image{'s' if len(user.images) > 1 else ''}]"
    if call.response_format is None:
        answer = generate_answer(
            model=call.label,
            last_user_text=subject,
            prompt_text=prompt_text,
            max_tokens=call.max_tokens,
            stop=call.stop,
        )
        return ChatAnswer(
            text=answer.text,
            finish=answer.finish,
            input_tokens=input_tokens,
            output_tokens=answer.output_tokens,
            stop_sequence=answer.stop_sequence,
            finish_reason=_FINISH[answer.finish],
        )
    if call.response_format == "json_schema" and call.schema is not None:
        content = json.dumps(instance_for(call.schema, f"{call.label}\n{prompt_text}"), ensure_ascii=False)
    else:
        full = generate_answer(model=call.label, last_user_text=subject, prompt_text=prompt_text, max_tokens=None)
        content = json.dumps({"answer": full.text}, ensure_ascii=False)
    words = word_tokens(content)
    finish = EmulatedFinish.END
    if call.max_tokens is not None and len(words) > call.max_tokens:
        # Structured output is cut at max_tokens like any text (its JSON then unfinished).
        words, finish = words[: call.max_tokens], EmulatedFinish.LENGTH
    return ChatAnswer(
        text="".join(words),
        finish=finish,
        input_tokens=input_tokens,
        output_tokens=len(words),
        finish_reason=_FINISH[finish],
    )


def deltas(answer: ChatAnswer) -> ChatStream:
    """The emulated answer as vLLM streams it: reasoning, text, then each tool call (a first delta
    with index, id and name, then its arguments piece by piece), then the answer itself."""
    for piece in word_tokens(answer.reasoning):
        yield {"reasoning_content": piece}
    for piece in word_tokens(answer.text):
        yield {"content": piece}
    for index, call in enumerate(answer.tool_calls):
        yield {"tool_calls": [{"index": index, "id": call.id, "type": "function", "function": {"name": call.name}}]}
        for piece in word_tokens(call.arguments):
            yield {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
    yield answer


# --- the wire documents -------------------------------------------------------------------------


def document(call: ChatCall, answer: ChatAnswer) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": answer.text if answer.text or not answer.tool_calls else None,
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in answer.tool_calls
        ],
    }
    if answer.reasoning:
        message["reasoning_content"] = answer.reasoning
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": call.label,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": answer.finish_reason}],
        "usage": usage(answer),
    }


def usage(generation: Generation) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "prompt_tokens": generation.input_tokens,
        "completion_tokens": generation.output_tokens,
        "total_tokens": generation.input_tokens + generation.output_tokens,
    }
    if isinstance(generation, ChatAnswer) and generation.cached_tokens is not None:
        doc["prompt_tokens_details"] = {"cached_tokens": generation.cached_tokens}
    return doc


def chunks(call: ChatCall, items: Generator[dict[str, Any] | Generation]) -> Generator[bytes]:
    """vLLM's chat.completion.chunk stream: role, the deltas, finish reason, usage if asked, [DONE]."""
    chunk_id, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    head = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": call.label}

    def chunk(delta: Mapping[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": dict(delta), "logprobs": None, "finish_reason": finish}
        return _sse({**head, "choices": [choice]})

    try:
        yield chunk({"role": "assistant", "content": ""})
        answer: Generation | None = None
        for item in items:
            if isinstance(item, Generation):
                answer = item
                break
            yield chunk(item)
        if answer is None:
            raise ContainerError(502, "the token stream ended without its generation")
        finish = answer.finish_reason if isinstance(answer, ChatAnswer) else _FINISH[answer.finish]
        yield chunk({}, finish)
        if call.include_usage:
            yield _sse({**head, "choices": [], "usage": usage(answer)})
        yield b"data: [DONE]\n\n"
    finally:
        items.close()


def _sse(doc: Any) -> bytes:
    return b"data: " + json.dumps(doc).encode() + b"\n\n"


# --- forwarded answers ------------------------------------------------------------------------


def forwarded_body(call: ChatCall) -> dict[str, Any]:
    """The body for the upstream as it came (tools, images, response_format and all); the forwarder
    sets the model and whether it streams."""
    return {k: v for k, v in call.body.items() if k not in ("model", "stream", "stream_options")}


def answer_from_document(call: ChatCall, doc: Any) -> ChatAnswer:
    """The upstream's chat.completion as a `ChatAnswer`, to be written back in vLLM's shape."""
    try:
        choice = doc["choices"][0]
        message = choice.get("message") or {}
        text = str(message.get("content") or "")
        calls = tuple(
            EmulatedToolCall(str(c["id"]), str(c["function"]["name"]), _arguments(c["function"].get("arguments")))
            for c in message.get("tool_calls") or ()
        )
        reasoning = str(message.get("reasoning_content") or message.get("reasoning") or "")
        finish_reason = str(choice.get("finish_reason") or "stop")
        return _forwarded_answer(call, text, calls, reasoning, finish_reason, doc.get("usage") or {})
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        raise ContainerError(502, "the forwarded model answered an unexpected chat document") from exc


def forwarded_deltas(call: ChatCall, upstream: Iterator[Mapping[str, Any]]) -> ChatStream:
    """The upstream's chunks as deltas (text, reasoning and tool-call pieces as they come), then the
    `ChatAnswer` they add up to; closing this closes the upstream."""
    texts: list[str] = []
    thoughts: list[str] = []
    calls: dict[int, list[Any]] = {}  # index -> [id, name, argument pieces]
    finish_reason: str | None = None
    reported: Mapping[str, Any] = {}
    try:
        for doc in upstream:
            for choice in doc.get("choices") or ():
                delta = choice.get("delta") or {}
                thinking = delta.get("reasoning_content") or delta.get("reasoning")
                if thinking:
                    thoughts.append(str(thinking))
                    yield {"reasoning_content": str(thinking)}
                if delta.get("content"):
                    texts.append(str(delta["content"]))
                    yield {"content": str(delta["content"])}
                for piece in delta.get("tool_calls") or ():
                    yield {"tool_calls": [_tool_piece(piece, calls)]}
                finish_reason = str(choice.get("finish_reason") or "") or finish_reason
            reported = doc.get("usage") or reported
        tool_calls = tuple(EmulatedToolCall(i or "", n or "", "".join(a)) for i, n, a in calls.values())
        answer = _forwarded_answer(
            call, "".join(texts), tool_calls, "".join(thoughts), finish_reason or "stop", reported
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ContainerError(502, "the forwarded model streamed an unexpected chunk") from exc
    finally:
        close = getattr(upstream, "close", None)
        if close is not None:
            close()
    yield answer


def _tool_piece(piece: Mapping[str, Any], calls: dict[int, list[Any]]) -> dict[str, Any]:
    index = int(piece.get("index") or 0)
    function = piece.get("function") or {}
    entry = calls.setdefault(index, [None, None, []])
    out: dict[str, Any] = {"index": index}
    if piece.get("id"):
        entry[0] = out["id"] = str(piece["id"])
        out["type"] = "function"
    fields: dict[str, str] = {}
    if function.get("name"):
        entry[1] = fields["name"] = str(function["name"])
    if function.get("arguments") is not None:
        fields["arguments"] = _arguments(function["arguments"])
        entry[2].append(fields["arguments"])
    out["function"] = fields
    return out


def _arguments(raw: Any) -> str:
    # Some OpenAI-compatible servers send the arguments as an object rather than JSON text.
    return raw if isinstance(raw, str) else json.dumps(raw if raw is not None else {})


def _forwarded_answer(
    call: ChatCall,
    text: str,
    tool_calls: tuple[EmulatedToolCall, ...],
    reasoning: str,
    finish_reason: str,
    reported: Mapping[str, Any],
) -> ChatAnswer:
    written = text + reasoning + "".join(c.arguments for c in tool_calls)
    details = reported.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") if isinstance(details, Mapping) else None
    answer = ChatAnswer(
        text=text,
        finish=EmulatedFinish.LENGTH if finish_reason == "length" else EmulatedFinish.END,
        input_tokens=int(reported.get("prompt_tokens") or estimate_tokens(_prompt_text(call))),
        output_tokens=int(reported.get("completion_tokens") or len(written.split())),
        tool_calls=tool_calls,
        reasoning=reasoning,
        finish_reason=finish_reason,
    )
    return replace(answer, cached_tokens=int(cached)) if cached is not None else answer
