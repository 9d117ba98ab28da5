"""A local Bedrock Runtime that speaks the Converse wire protocol, for unchanged boto3 clients.

`POST /model/{modelId}/converse` validates the request the way Bedrock does (`converse.parse_converse`:
turns, content blocks, tools, images, reasoning, cache points, each model's features and rules) and
answers the real Converse document (text, toolUse, reasoningContent blocks; usage with the prompt
cache's counts). Errors carry `x-amzn-ErrorType` and `{"message"}`, which is what botocore's
rest-json parser turns into ClientError codes.

`POST /model/{modelId}/converse-stream` validates and fails before the stream the same way, then
answers ConverseStream's event stream: messageStart; per content block its contentBlockStart (for
toolUse), contentBlockDelta events (one per token or JSON piece) and contentBlockStop; messageStop
and metadata (usage, latency). A failure injected mid-stream is a modeled exception event
(throttlingException, modelStreamErrorException, ...), as Bedrock sends it.

A `guardrailConfig` is applied as Bedrock applies it, by the guardrail emulator's own logic
(`guardrail_services.ConverseGuardrail`, over `guardrails`, the same mapping the ApplyGuardrail
emulator is given): a guardrail id or version that does not exist is a ValidationException; a
blocked input is answered with the guardrail's blocked message without calling the model; a
blocked or masked answer is replaced or masked; either ends with stopReason `guardrail_intervened`,
and with `trace` enabled the answer (or ConverseStream's metadata event) carries `trace.guardrail`.
A stream is assessed whole before its first delta (what `streamProcessingMode: sync` promises).

What a model supports and which family's rules apply come from the route table
(`from_route_table`: a target's `capabilities`, and its model id or `foundation_model`); an emulator
built from model ids alone lets every model do everything.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from llmops.domain.chat import Capability
from llmops.domain.model_ids import model_family
from llmops.domain.routing import Provider, RouteTable
from llmops.local.emulators import converse, embedding_models
from llmops.local.emulators.answers import EmulatedFinish, Generation
from llmops.local.emulators.base import EmulatorApp, MidStreamFaultError, json_response, stream_response
from llmops.local.emulators.converse import ConverseAnswer, ConverseCall, ConverseError, ConverseItems, ModelTraits
from llmops.local.emulators.eventstream import event_message, exception_message
from llmops.local.emulators.faults import FaultDecision, FaultPlan, Outcome
from llmops.local.emulators.forwarding import ForwardingError, OpenAICompatibleForwarder
from llmops.local.emulators.guardrail_services import ConverseGuardrail, EmulatedGuardrail

__all__ = ["BedrockRuntimeEmulator"]

# Bedrock's own suffix on error types; botocore strips everything after ':'.
_ERROR_NAMESPACE = ":http://internal.amazon.com/coral/com.amazon.bedrock/"


class BedrockRuntimeEmulator(EmulatorApp):
    def __init__(
        self,
        *,
        known_models: Iterable[str] | None = None,
        faults: FaultPlan | None = None,
        forwarder: OpenAICompatibleForwarder | None = None,
        traits: Mapping[str, ModelTraits] | None = None,
        prompt_cache: converse.PromptCache | None = None,
        guardrails: Mapping[str, EmulatedGuardrail] | None = None,
    ) -> None:
        super().__init__(faults=faults, forwarder=forwarder)
        # guardrailConfig's guardrails by id, as GuardrailServicesEmulator's; None: any id, the default one.
        self.guardrails = dict(guardrails) if guardrails is not None else None
        # None accepts any model id; a set rejects others as Bedrock does for unknown identifiers.
        self.known_models: set[str] | None = set(known_models) if known_models is not None else None
        # Per model id: its family and features; a model not listed gets its family from its id.
        self.traits: dict[str, ModelTraits] = dict(traits or {})
        self.prompt_cache = prompt_cache or converse.PromptCache()
        self.signer = converse.ThinkingSigner()
        # The path converter keeps ARNs (whose '/' botocore sends as %2F) in one model id.
        self._routes = Map(
            [
                Rule("/model/<path:model_id>/converse", methods=["POST"], endpoint="converse"),
                Rule("/model/<path:model_id>/converse-stream", methods=["POST"], endpoint="converse_stream"),
                # InvokeModel, for the embedding models (`embedding_models`).
                Rule("/model/<path:model_id>/invoke", methods=["POST"], endpoint="invoke"),
            ]
        )

    @classmethod
    def from_route_table(cls, table: RouteTable, **kwargs: Any) -> BedrockRuntimeEmulator:
        targets = [t for t in table.targets.values() if t.provider is Provider.BEDROCK]
        features: dict[str, set[Capability]] = {}
        for target in targets:
            features.setdefault(target.model_id, set()).update(target.capabilities)
        traits = {
            t.model_id: ModelTraits(model_family(t.model_id, t.foundation_model), frozenset(features[t.model_id]))
            for t in targets
        }
        return cls(known_models={t.model_id for t in targets}, traits=traits, **kwargs)

    def traits_of(self, model_id: str) -> ModelTraits:
        return self.traits.get(model_id) or ModelTraits(model_family(model_id))

    def service_error(self, status: int, code: str, message: str, **fields: Any) -> Response:
        return json_response({"message": message, **fields}, status, {"x-amzn-ErrorType": f"{code}{_ERROR_NAMESPACE}"})

    def register(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        model_id = doc.get("model_id")
        if not isinstance(model_id, str) or not model_id:
            raise ValueError('register a Bedrock model with {"model_id": ...}')
        if self.known_models is not None:
            self.known_models.add(model_id)
        return {"known_models": sorted(self.known_models) if self.known_models is not None else None}

    def handle(self, request: Request) -> Response:
        operation, args = self._routes.bind_to_environ(request.environ).match()
        model_id = str(args["model_id"])
        if self.known_models is not None and model_id not in self.known_models:
            return self.service_error(400, "ValidationException", "The provided model identifier is invalid.")
        if operation in ("converse", "converse_stream"):
            return self._converse(request, model_id, streaming=operation == "converse_stream")
        if operation == "invoke":
            return self._invoke_embedding_model(request, model_id)
        raise AssertionError(f"unrouted operation {operation}")

    def _invoke_embedding_model(self, request: Request, model_id: str) -> Response:
        """InvokeModel on Titan Text Embeddings v2 or Cohere Embed: their bodies, validated as Bedrock
        does, with the input token count in Bedrock's header (`embedding_models`)."""
        started = time.monotonic()
        try:
            call = embedding_models.parse_bedrock_embedding(model_id, request.get_data())
        except embedding_models.InvalidEmbeddingRequestError as exc:
            return self.service_error(400, "ValidationException", str(exc))
        decision = self.apply_faults([model_id])
        if decision.outcome is Outcome.THROTTLED:
            return self.service_error(429, "ThrottlingException", "Too many requests, please wait before trying again.")
        if decision.outcome is Outcome.ERROR:
            return self._fault_error(decision.error_status, model_id)
        try:
            answer = embedding_models.answer_bedrock_embedding(call, self.forwarder)
        except ForwardingError as exc:
            return self._forwarding_error(exc, model_id)
        headers = {
            embedding_models.INPUT_TOKEN_HEADER: str(answer.input_tokens),
            "X-Amzn-Bedrock-Invocation-Latency": str(int((time.monotonic() - started) * 1000)),
        }
        return json_response(answer.body, 200, headers)

    def _converse(self, request: Request, model_id: str, *, streaming: bool) -> Response:
        started = time.monotonic()
        try:
            call = converse.parse_converse(request.get_data(), model_id, self.traits_of(model_id), self.signer)
            converse.check_guardrail_config(call.body.get("guardrailConfig"), streaming=streaming)
            guardrail = ConverseGuardrail.of(self.guardrails, call.body.get("guardrailConfig"))
        except ConverseError as exc:
            return self.service_error(400, "ValidationException", str(exc))
        except LookupError:
            return self.service_error(
                400,
                "ValidationException",
                "The guardrail identifier or version provided in the request does not exist.",
            )

        decision = self.apply_faults([model_id], streaming=streaming)
        if not (streaming and decision.fails_mid_stream()):
            if decision.outcome is Outcome.THROTTLED:
                return self.service_error(
                    429, "ThrottlingException", "Too many requests, please wait before trying again."
                )
            if decision.outcome is Outcome.ERROR:
                return self._fault_error(decision.error_status, model_id)

        # The cache is Bedrock's own: it counts the same whether the answer is emulated or forwarded.
        cache = self.prompt_cache.account(model_id, call.body)
        blocked = guardrail.blocked_input(call.body.get("messages") or ()) if guardrail is not None else None
        if streaming:
            try:
                items = converse.stream_items(_intervened(blocked)) if blocked is not None else self._stream(call)
            except ForwardingError as exc:
                return self._forwarding_error(exc, model_id)
            if guardrail is not None and blocked is None:
                items = _guarded_stream(items, guardrail)
            frames = self._converse_stream(self.pace(items, decision), cache, started, guardrail)
            return stream_response(frames, "application/vnd.amazon.eventstream")
        try:
            answer = converse.with_cache(_intervened(blocked) if blocked is not None else self._answer(call), cache)
        except ForwardingError as exc:
            return self._forwarding_error(exc, model_id)
        if guardrail is not None and blocked is None:
            answer = _guarded(answer, guardrail)
        self.pause(decision.generation_s(answer.output_tokens))
        doc: dict[str, Any] = {
            "output": {"message": {"role": "assistant", "content": list(answer.content)}},
            "stopReason": answer.stop_reason,
            "usage": converse.usage(answer),
            "metrics": {"latencyMs": int((time.monotonic() - started) * 1000)},
        }
        trace = guardrail.trace() if guardrail is not None else None
        return json_response({**doc, "trace": trace} if trace is not None else doc)

    def _converse_stream(
        self,
        items: Generator[tuple[str, dict[str, Any]] | Generation],
        cache: tuple[int, int] | None,
        started: float,
        guardrail: ConverseGuardrail | None = None,
    ) -> Iterator[bytes]:
        """ConverseStream's events for `items`; a failure mid-stream is the stream's last event.

        Blocks come one after another, so a block is stopped when the next one starts (or the answer ends).
        """
        yield event_message("messageStart", {"role": "assistant"})
        open_block: int | None = None
        try:
            for item in items:
                if isinstance(item, Generation):
                    answer = converse.with_cache(item, cache)
                    break
                event_type, payload = item
                index = int(payload["contentBlockIndex"])
                if open_block is not None and index != open_block:
                    yield event_message("contentBlockStop", {"contentBlockIndex": open_block})
                open_block = index
                yield event_message(event_type, payload)
            else:
                raise ForwardingError(502, "the token stream ended without its generation")
        except MidStreamFaultError as fault:
            yield _stream_exception(fault.decision)
            return
        except ForwardingError as exc:
            yield exception_message(
                "modelStreamErrorException",
                {"message": f"The forwarded model failed: {exc.message}", "originalStatusCode": exc.status},
            )
            return
        finally:
            items.close()
        if open_block is not None:
            yield event_message("contentBlockStop", {"contentBlockIndex": open_block})
        yield event_message("messageStop", {"stopReason": answer.stop_reason})
        metadata = {"usage": converse.usage(answer), "metrics": {"latencyMs": int((time.monotonic() - started) * 1000)}}
        trace = guardrail.trace() if guardrail is not None else None
        yield event_message("metadata", {**metadata, "trace": trace} if trace is not None else metadata)

    def _stream(self, call: ConverseCall) -> ConverseItems:
        forwarder = self.forwarder
        if forwarder is None:
            return converse.stream_items(converse.emulate(call, self.signer))
        chunks = forwarder.stream_chat_body(model=call.model_id, body=converse.openai_body(call))
        return _forwarded_items(call, chunks)

    def _answer(self, call: ConverseCall) -> ConverseAnswer:
        forwarder = self.forwarder
        if forwarder is None:
            return converse.emulate(call, self.signer)
        doc = forwarder.chat_body(model=call.model_id, body=converse.openai_body(call))
        try:
            return converse.answer_from_openai(call, doc)
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise ForwardingError(502, "upstream answered an unexpected chat document") from exc

    def _fault_error(self, status: int, model_id: str) -> Response:
        if status == 503:
            return self.service_error(503, "ServiceUnavailableException", "Service unavailable. Try again.")
        if status == 424:
            return self.service_error(
                424,
                "ModelErrorException",
                "The model failed to process the request.",
                originalStatusCode=500,
                resourceName=model_id,
            )
        return self.service_error(500, "InternalServerException", "The server encountered an internal error.")

    def _forwarding_error(self, exc: ForwardingError, model_id: str) -> Response:
        if exc.status == 429:
            return self.service_error(429, "ThrottlingException", "Too many requests, please wait before trying again.")
        if exc.status == 504:
            return self.service_error(408, "ModelTimeoutException", "The model timed out.")
        if 400 <= exc.status < 500:
            return self.service_error(
                400, "ValidationException", f"The forwarded model rejected the request: {exc.message}"
            )
        return self.service_error(
            424,
            "ModelErrorException",
            f"The forwarded model failed: {exc.message}",
            originalStatusCode=exc.status,
            resourceName=model_id,
        )


def _stream_exception(decision: FaultDecision) -> bytes:
    """The modeled exception event for a failure injected mid-stream, as `_fault_error` picks them."""
    if decision.outcome is Outcome.THROTTLED:
        return exception_message("throttlingException", {"message": "Too many requests, please wait."})
    if decision.error_status == 503:
        return exception_message("serviceUnavailableException", {"message": "Service unavailable. Try again."})
    if decision.error_status == 424:
        return exception_message(
            "modelStreamErrorException",
            {"message": "The model failed while streaming.", "originalStatusCode": 500},
        )
    return exception_message("internalServerException", {"message": "The server encountered an internal error."})


_INTERVENED = "guardrail_intervened"


def _intervened(blocked_message: str) -> ConverseAnswer:
    """The answer to an input the guardrail blocked: its message, and no model call."""
    return ConverseAnswer(
        text=blocked_message,
        finish=EmulatedFinish.END,
        input_tokens=0,
        output_tokens=0,
        content=({"text": blocked_message},),
        stop_reason=_INTERVENED,
    )


def _guarded(answer: ConverseAnswer, guardrail: ConverseGuardrail) -> ConverseAnswer:
    content = guardrail.guarded_output(answer.content)
    if content is None:
        return answer
    text = "".join(str(b["text"]) for b in content if "text" in b)
    return replace(answer, text=text, content=content, stop_reason=_INTERVENED)


def _guarded_stream(items: ConverseItems, guardrail: ConverseGuardrail) -> ConverseItems:
    """The answer assessed whole, then streamed as the guardrail lets it out (sync processing)."""
    for item in items:
        if isinstance(item, Generation):
            yield from converse.stream_items(_guarded(converse.with_cache(item, None), guardrail))
            return
    raise ForwardingError(502, "the token stream ended without its generation")


def _forwarded_items(call: ConverseCall, chunks: Iterator[Mapping[str, Any]]) -> ConverseItems:
    """The upstream's chunks as Converse items; an unexpected chunk is a forwarding failure."""
    try:
        yield from converse.openai_stream_items(call, chunks)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        raise ForwardingError(502, "upstream sent an unexpected stream chunk") from exc
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
