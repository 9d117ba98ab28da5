"""A local SageMaker Runtime: `POST /endpoints/{EndpointName}/invocations`, for unchanged boto3 clients.

Each endpoint answers in the dialect of the container it stands for: OpenAI chat completions (LMI,
vLLM, TGI Messages API; `openai_chat` has the dialect: tools, images, tool turns, response_format) or
TGI's native `[{"generated_text", "details"}]`. Unless configured, the dialect is detected from the
body ("messages" or "inputs"). An endpoint configured from routes.json knows what its model can do
(`EndpointConfig.capabilities`): one without "images" refuses images, as a text-only vLLM model does,
and one without "tools" has no tool parser, so it refuses "auto" tool choice. Container-level
rejections (TGI's 422 on `temperature: 0`, say) come back as SageMaker does it: HTTP 424
`ModelError` carrying the container's `OriginalStatusCode` and `OriginalMessage`.

`POST /endpoints/{EndpointName}/invocations-response-stream` fails before the stream the same way,
then relays the container's stream in PayloadPart events: vLLM/LMI's OpenAI SSE
(`data: {chat.completion.chunk}` ... `data: [DONE]`) or TGI's token events (`data:{"token": ...}`, the
last with `generated_text` and `details`), one SSE event a part. A failure injected mid-stream ends
it with a ModelStreamError (InternalStreamFailure for a 503) exception event. A body that does not
ask for a stream gets its one document in one part, as a container that does not stream answers.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from llmops.domain.chat import Capability
from llmops.domain.routing import PayloadFormat, Provider, RouteTable
from llmops.local.emulators import embedding_models, openai_chat
from llmops.local.emulators.answers import EmulatedFinish, Generation, TokenStream, generate_answer, token_stream
from llmops.local.emulators.base import EmulatorApp, MidStreamFaultError, json_response, stream_response
from llmops.local.emulators.eventstream import event_message, exception_message
from llmops.local.emulators.faults import FaultDecision, FaultPlan, Outcome
from llmops.local.emulators.forwarding import ForwardingError, OpenAICompatibleForwarder
from llmops.local.emulators.openai_chat import ChatCall
from llmops.local.emulators.openai_chat import ContainerError as _ContainerError

__all__ = ["DEFAULT_VARIANT", "EndpointConfig", "SageMakerRuntimeEmulator"]

DEFAULT_VARIANT = "AllTraffic"
_ACCOUNT = "000000000000"
_REGION = "us-east-1"
_VARIANT_HEADER = "X-Amzn-SageMaker-Target-Variant"

_TGI_FINISH = {
    EmulatedFinish.END: "eos_token",
    EmulatedFinish.LENGTH: "length",
    EmulatedFinish.STOP_SEQUENCE: "stop_sequence",
}

# The last user turn of the prompt formats the gateway renders (chatml, llama3, mistral), so the
# emulated TGI answer echoes the question rather than template tokens.
_USER_TURN = re.compile(
    r"(?:<\|im_start\|>user\n(?P<chatml>.*?)<\|im_end\|>)"
    r"|(?:<\|start_header_id\|>user<\|end_header_id\|>\n\n(?P<llama3>.*?)<\|eot_id\|>)"
    r"|(?:\[INST\](?P<mistral>.*?)\[/INST\])",
    re.S,
)


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    payload_format: PayloadFormat | None = None  # None detects the dialect from each request body
    variants: tuple[str, ...] = ()  # empty accepts any TargetVariant; the first is the default
    # What the endpoint's model can do (routes.json capabilities); None, for an endpoint nobody
    # described, can do everything, so ad-hoc endpoints take any request.
    capabilities: frozenset[Capability] | None = None

    def can(self, capability: Capability) -> bool:
        return self.capabilities is None or capability in self.capabilities


@dataclass(frozen=True, slots=True)
class _Sampling:
    max_tokens: int | None
    temperature: float | None
    top_p: float | None
    stop: list[str]

    def as_kwargs(self) -> dict[str, Any]:
        return {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "stop": self.stop,
        }


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise _ContainerError(422, "Input validation error: sampling parameters must be numbers") from exc


class SageMakerRuntimeEmulator(EmulatorApp):
    def __init__(
        self,
        *,
        endpoints: Mapping[str, EndpointConfig] | None = None,
        faults: FaultPlan | None = None,
        forwarder: OpenAICompatibleForwarder | None = None,
        embedding_endpoints: Mapping[str, embedding_models.EmbeddingEndpoint] | None = None,
    ) -> None:
        super().__init__(faults=faults, forwarder=forwarder)
        # Endpoints whose container embeds (TEI, DJL): answered by `embedding_models`.
        self._embedding_endpoints = dict(embedding_endpoints or {})
        # None accepts any endpoint name; a mapping makes the emulator reject the others, as
        # SageMaker does for endpoints that do not exist (or were deleted after a canary).
        self._endpoints: dict[str, EndpointConfig] | None = dict(endpoints) if endpoints is not None else None
        self._endpoints_lock = threading.Lock()
        self._routes = Map(
            [
                Rule("/endpoints/<endpoint_name>/invocations", methods=["POST"], endpoint="invoke"),
                Rule(
                    "/endpoints/<endpoint_name>/invocations-response-stream", methods=["POST"], endpoint="invoke_stream"
                ),
            ]
        )

    @classmethod
    def from_route_table(cls, table: RouteTable, **kwargs: Any) -> SageMakerRuntimeEmulator:
        """Endpoints, dialects, variants and capabilities as the route table's SageMaker targets describe them."""
        formats: dict[str, PayloadFormat] = {}
        variants: dict[str, list[str]] = {}
        capabilities: dict[str, set[Capability]] = {}
        for target in table.targets.values():
            if target.provider is not Provider.SAGEMAKER:
                continue
            formats[target.endpoint_name] = target.payload_format
            names = variants.setdefault(target.endpoint_name, [])
            if target.variant and target.variant not in names:
                names.append(target.variant)
            # Variants of one endpoint serve one model, so the endpoint can do what any of them can.
            capabilities.setdefault(target.endpoint_name, set()).update(target.capabilities)
        endpoints = {
            name: EndpointConfig(
                payload_format=fmt, variants=tuple(variants[name]), capabilities=frozenset(capabilities[name])
            )
            for name, fmt in formats.items()
        }
        kwargs.setdefault("embedding_endpoints", embedding_models.embedding_endpoints(table))
        return cls(endpoints=endpoints, **kwargs)

    def register(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """`POST /_emulator/endpoints {"name", "payload_format"?, "variants"?, "capabilities"?}` adds or
        replaces one (no "capabilities": the model can do everything)."""
        name = doc.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError('register an endpoint with {"name": ..., "payload_format"?, "variants"?, "capabilities"?}')
        fmt = doc.get("payload_format")
        raw_variants = doc.get("variants", [])
        if not isinstance(raw_variants, list):
            raise ValueError("'variants' must be a list of names")
        raw_capabilities = doc.get("capabilities")
        if raw_capabilities is not None and not isinstance(raw_capabilities, list):
            raise ValueError("'capabilities' must be a list of capability names")
        config = EndpointConfig(
            payload_format=PayloadFormat(fmt) if fmt else None,
            variants=tuple(str(v) for v in raw_variants),
            capabilities=None if raw_capabilities is None else frozenset(Capability(c) for c in raw_capabilities),
        )
        with self._endpoints_lock:
            if self._endpoints is None:
                self._endpoints = {}
            self._endpoints[name] = config
            return {"endpoints": sorted(self._endpoints)}

    def handle(self, request: Request) -> Response:
        operation, args = self._routes.bind_to_environ(request.environ).match()
        streaming = operation == "invoke_stream"
        endpoint = str(args["endpoint_name"])
        requested_variant = request.headers.get(_VARIANT_HEADER) or None
        with self._endpoints_lock:
            known = self._endpoints
            config = known.get(endpoint) if known is not None else EndpointConfig()
        if config is None:
            return self.service_error(400, "ValidationError", f"Endpoint {endpoint} of account {_ACCOUNT} not found.")
        if requested_variant and config.variants and requested_variant not in config.variants:
            return self.service_error(
                400,
                "ValidationError",
                f"Variant {requested_variant} not found for endpoint {endpoint} of account {_ACCOUNT}.",
            )
        variant = requested_variant or (config.variants[0] if config.variants else DEFAULT_VARIANT)
        headers = {"x-Amzn-Invoked-Production-Variant": variant}

        decision = self.apply_faults([f"{endpoint}/{variant}", endpoint], streaming=streaming)
        if not (streaming and decision.fails_mid_stream()):
            if decision.outcome is Outcome.THROTTLED:
                return self.service_error(429, "ThrottlingException", "Rate exceeded")
            if decision.outcome is Outcome.ERROR:
                if decision.error_status == 503:
                    return self.service_error(503, "ServiceUnavailable", "The service is unavailable. Try again.")
                return self._model_error(endpoint, variant, decision.error_status, "Internal server error")

        embedding = self._embedding_endpoints.get(endpoint)
        if embedding is not None and not streaming:
            return self._embed(embedding, endpoint, variant, request.get_data(), headers)
        try:
            call = self._parse(f"{endpoint}/{variant}", config, request.get_data())
            if isinstance(call, ChatCall):
                return self._chat(call, streaming, decision, headers)
            return self._tgi(call, streaming, decision, headers)
        except _ContainerError as exc:
            return self._model_error(endpoint, variant, exc.status, exc.message)

    def _embed(
        self,
        embedding: embedding_models.EmbeddingEndpoint,
        endpoint: str,
        variant: str,
        raw: bytes,
        headers: dict[str, str],
    ) -> Response:
        try:
            vectors = embedding_models.answer_embedding_container(
                embedding, f"{endpoint}/{variant}", raw, self.forwarder
            )
        except embedding_models.ContainerRefusalError as exc:
            return self._model_error(endpoint, variant, exc.status, exc.message)
        return json_response(vectors, 200, headers)

    def _chat(self, call: ChatCall, streaming: bool, decision: FaultDecision, headers: dict[str, str]) -> Response:
        if streaming and call.streams:
            # The items are made (and a forwarded upstream asked) before the response starts.
            items = self._chat_stream(call)
            frames = _parts(openai_chat.chunks(call, self.pace(items, decision)))
            return stream_response(frames, _EVENT_STREAM, {**headers, _CONTENT_TYPE_HEADER: "text/event-stream"})
        answer = self._chat_answer(call)
        self.pause(decision.generation_s(answer.output_tokens))
        return _document_response(openai_chat.document(call, answer), streaming, headers)

    def _tgi(self, call: _TgiCall, streaming: bool, decision: FaultDecision, headers: dict[str, str]) -> Response:
        if streaming and call.streams:
            frames = _parts(_tgi_events(call, self.pace(_last_marked(self._tokens(call)), decision)))
            return stream_response(frames, _EVENT_STREAM, {**headers, _CONTENT_TYPE_HEADER: "text/event-stream"})
        generation = self._generate(call)
        self.pause(decision.generation_s(generation.output_tokens))
        return _document_response(_tgi_document(call, generation), streaming, headers)

    def service_error(self, status: int, code: str, message: str, **fields: Any) -> Response:
        # SageMaker Runtime spells the message field with a capital M.
        return json_response({"Message": message, **fields}, status, {"x-amzn-ErrorType": code})

    def _model_error(self, endpoint: str, variant: str, status: int, message: str) -> Response:
        side = "client" if 400 <= status < 500 else "server"
        log_group = f"/aws/sagemaker/Endpoints/{endpoint}"
        return self.service_error(
            424,
            "ModelError",
            f'Received {side} error ({status}) from {variant} with message "{message}". See '
            f"https://{_REGION}.console.aws.amazon.com/cloudwatch/home?region={_REGION}"
            f"#logEventViewer:group={log_group} in account {_ACCOUNT} for more information.",
            ErrorCode="CLIENT_ERROR_FROM_MODEL" if side == "client" else "INTERNAL_FAILURE_FROM_MODEL",
            OriginalStatusCode=status,
            OriginalMessage=message,
            LogStreamArn=f"arn:aws:logs:{_REGION}:{_ACCOUNT}:log-group:{log_group}",
        )

    def _parse(self, label: str, config: EndpointConfig, raw: bytes) -> ChatCall | _TgiCall:
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise _ContainerError(400, "Failed to parse the request body as JSON") from exc
        if not isinstance(body, dict):
            raise _ContainerError(400, "The request body must be a JSON object")
        fmt = config.payload_format
        if fmt is None:
            fmt = PayloadFormat.TGI if "inputs" in body else PayloadFormat.OPENAI
        if fmt is PayloadFormat.TGI:
            return _tgi_call(label, body)
        return openai_chat.parse_chat(
            label, body, vision=config.can(Capability.IMAGES), tool_parser=config.can(Capability.TOOLS)
        )

    def _chat_answer(self, call: ChatCall) -> openai_chat.ChatAnswer:
        forwarder = self.forwarder
        if forwarder is None:
            return openai_chat.emulate(call)
        body = openai_chat.forwarded_body(call)
        doc = _forwarded(lambda: forwarder.chat_body(model=call.label, body=body))
        return openai_chat.answer_from_document(call, doc)

    def _chat_stream(self, call: ChatCall) -> openai_chat.ChatStream:
        forwarder = self.forwarder
        if forwarder is None:
            return openai_chat.deltas(openai_chat.emulate(call))
        body = openai_chat.forwarded_body(call)
        upstream = _forwarded(lambda: forwarder.stream_chat_body(model=call.label, body=body))
        return openai_chat.forwarded_deltas(call, upstream)

    def _generate(self, call: _TgiCall) -> Generation:
        forwarder = self.forwarder
        if forwarder is not None:
            return _forwarded(
                lambda: forwarder.complete_prompt(model=call.label, prompt=call.prompt, **call.sampling.as_kwargs())
            )
        turns = [next(g for g in m.groups() if g is not None) for m in _USER_TURN.finditer(call.prompt)]
        # Templates without a system role (Mistral) prepend the system text to the first user turn,
        # separated by a blank line: answer the user's own words, as a model would.
        last_user = turns[-1].strip().split("\n\n")[-1] if turns else call.prompt
        return generate_answer(
            model=call.label,
            last_user_text=last_user,
            prompt_text=call.prompt,
            max_tokens=call.sampling.max_tokens,
            stop=call.sampling.stop,
        )

    def _tokens(self, call: _TgiCall) -> TokenStream:
        """The TGI answer's tokens; a forwarded upstream is opened here, before the response starts."""
        forwarder = self.forwarder
        if forwarder is None:
            return token_stream(self._generate(call))
        return _forwarded(
            lambda: forwarder.stream_prompt(model=call.label, prompt=call.prompt, **call.sampling.as_kwargs())
        )


_EVENT_STREAM = "application/vnd.amazon.eventstream"
_CONTENT_TYPE_HEADER = "X-Amzn-SageMaker-Content-Type"


@dataclass(frozen=True, slots=True)
class _TgiCall:
    """One parsed TGI invocation: the templated prompt, its parameters and whether it streams."""

    label: str  # endpoint/variant, the emulated model's name
    sampling: _Sampling
    streams: bool  # the body asked the container for a stream ("stream": true)
    prompt: str
    details: bool = False  # parameters.details
    return_full_text: bool = False


def _document_response(doc: Any, streaming: bool, headers: Mapping[str, str]) -> Response:
    if streaming:
        # A container asked for no stream answers one document, which SageMaker relays as one part.
        part = iter([_payload_part(json.dumps(doc).encode())])
        return stream_response(part, _EVENT_STREAM, {**headers, _CONTENT_TYPE_HEADER: "application/json"})
    return json_response(doc, 200, headers)


def _tgi_call(label: str, body: Mapping[str, Any]) -> _TgiCall:
    prompt = body.get("inputs")
    if not isinstance(prompt, str) or not prompt:
        raise _ContainerError(422, "Input validation error: `inputs` cannot be empty")
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        raise _ContainerError(422, "Failed to deserialize the JSON body: `parameters` must be an object")
    # TGI's own validation, which is stricter than OpenAI's; the gateway must translate for it.
    temperature = _number(params.get("temperature"))
    if temperature is not None and temperature <= 0:
        raise _ContainerError(422, "Input validation error: `temperature` must be strictly positive")
    top_p = _number(params.get("top_p"))
    if top_p is not None and not 0 < top_p < 1:
        raise _ContainerError(422, "Input validation error: `top_p` must be > 0.0 and < 1.0")
    max_new = params.get("max_new_tokens")
    if max_new is not None and (not isinstance(max_new, int) or max_new < 1):
        raise _ContainerError(422, "Input validation error: `max_new_tokens` must be strictly positive")
    stop = [str(s) for s in params.get("stop") or []]
    if len(stop) > 4:
        raise _ContainerError(422, "Input validation error: `stop` supports up to 4 stop sequences")
    return _TgiCall(
        label=label,
        sampling=_Sampling(max_new, temperature, top_p, stop),
        streams=body.get("stream") is True,
        prompt=prompt,
        details=bool(params.get("details")),
        return_full_text=bool(params.get("return_full_text")),
    )


def _tgi_generated_text(call: _TgiCall, generation: Generation) -> str:
    text = generation.text
    if generation.finish is EmulatedFinish.STOP_SEQUENCE and generation.stop_sequence:
        text += generation.stop_sequence  # TGI keeps the matched stop sequence in the output
    return call.prompt + text if call.return_full_text else text


def _tgi_document(call: _TgiCall, generation: Generation) -> Any:
    item: dict[str, Any] = {"generated_text": _tgi_generated_text(call, generation)}
    if call.details:
        item["details"] = {
            "finish_reason": _TGI_FINISH[generation.finish],
            "generated_tokens": generation.output_tokens,
            "seed": None,
            "prefill": [],
            "tokens": [],
        }
    return [item]


def _payload_part(data: bytes) -> bytes:
    return event_message("PayloadPart", data, content_type="application/octet-stream")


def _parts(sse_events: Iterator[bytes]) -> Iterator[bytes]:
    """Each SSE event in a PayloadPart; a failure mid-stream ends the stream with SageMaker's exception."""
    try:
        for event in sse_events:
            yield _payload_part(event)
    except MidStreamFaultError as fault:
        if fault.decision.outcome is Outcome.ERROR and fault.decision.error_status == 503:
            yield exception_message("InternalStreamFailure", {"Message": "The stream failed inside SageMaker."})
        else:
            yield exception_message(
                "ModelStreamError", {"Message": "The model's stream broke off.", "ErrorCode": "StreamBroken"}
            )
    except (ForwardingError, _ContainerError) as exc:
        yield exception_message(
            "ModelStreamError", {"Message": f"The forwarded model failed: {exc.message}", "ErrorCode": "StreamBroken"}
        )
    finally:
        close = getattr(sse_events, "close", None)
        if close is not None:
            close()


def _sse(doc: Any) -> bytes:
    # TGI's server writes "data:{...}" with no space (vLLM and LMI write "data: {...}").
    return b"data:" + json.dumps(doc).encode() + b"\n\n"


def _last_marked(tokens: TokenStream) -> Iterator[tuple[str, bool] | Generation]:
    """Each token with whether it is the answer's last, which TGI's final event must carry.

    It looks one token ahead: free for an emulated answer, one token's delay for a forwarded one.
    """
    held: str | None = None
    try:
        for item in tokens:
            if isinstance(item, Generation):
                if held is not None:
                    yield held, True
                yield item
                return
            if held is not None:
                yield held, False
            held = item
    finally:
        close = getattr(tokens, "close", None)
        if close is not None:
            close()


def _tgi_events(call: _TgiCall, tokens: Generator[tuple[str, bool] | Generation]) -> Generator[bytes]:
    """TGI's token stream. The last event carries generated_text and details: with the last word when
    the answer was cut at max_new_tokens, else with the EOS token or the matched stop sequence."""

    def event(index: int, text: str, *, special: bool = False, final: Generation | None = None) -> bytes:
        details = None
        if final is not None and call.details:
            details = {
                "finish_reason": _TGI_FINISH[final.finish],
                "generated_tokens": final.output_tokens,
                "seed": None,
            }
        return _sse(
            {
                "index": index,
                "token": {"id": index, "text": text, "logprob": 0.0, "special": special},
                "top_tokens": None,
                "generated_text": _tgi_generated_text(call, final) if final is not None else None,
                "details": details,
            }
        )

    index, last_word = 0, None
    try:
        for item in tokens:
            if isinstance(item, Generation):
                if item.finish is EmulatedFinish.LENGTH and last_word is not None:
                    yield event(index, last_word, final=item)
                    return
                if last_word is not None:
                    yield event(index, last_word)
                    index += 1
                if item.finish is EmulatedFinish.STOP_SEQUENCE and item.stop_sequence:
                    yield event(index, item.stop_sequence, final=item)
                else:
                    yield event(index, "</s>", special=True, final=item)
                return
            text, is_last = item
            if is_last:
                last_word = text  # held until the generation says how the answer ended
                continue
            yield event(index, text)
            index += 1
        raise _ContainerError(502, "the token stream ended without its generation")
    finally:
        tokens.close()


_Answer = TypeVar("_Answer")


def _forwarded(call: Callable[[], _Answer]) -> _Answer:
    """What the forwarder returns; its failure is the container's (a ModelError with its status)."""
    try:
        return call()
    except ForwardingError as exc:
        raise _ContainerError(exc.status, exc.message) from exc
