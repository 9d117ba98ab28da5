"""A local Bedrock Runtime that speaks the Converse wire protocol, for unchanged boto3 clients.

`POST /model/{modelId}/converse` validates the request the way Bedrock does (a conversation starts
with a user turn, roles alternate, text blocks are not blank) and answers the real Converse
document. Errors carry `x-amzn-ErrorType` and `{"message"}`, which is what botocore's rest-json
parser turns into ClientError codes.

`POST /model/{modelId}/converse-stream` validates and fails before the stream the same way, then
answers ConverseStream's event stream: messageStart, one contentBlockDelta per token,
contentBlockStop, messageStop and metadata (usage, latency). A failure injected mid-stream is a
modeled exception event (throttlingException, modelStreamErrorException, ...), as Bedrock sends it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator, Iterable, Iterator, Mapping
from typing import Any

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from llmops.domain.routing import Provider, RouteTable
from llmops.local.emulators.answers import EmulatedFinish, Generation, TokenStream, generate_answer, token_stream
from llmops.local.emulators.base import EmulatorApp, MidStreamFaultError, json_response, stream_response
from llmops.local.emulators.eventstream import event_message, exception_message
from llmops.local.emulators.faults import FaultDecision, FaultPlan, Outcome
from llmops.local.emulators.forwarding import ForwardingError, OpenAICompatibleForwarder

__all__ = ["BedrockRuntimeEmulator"]

# Bedrock's own suffix on error types; botocore strips everything after ':'.
_ERROR_NAMESPACE = ":http://internal.amazon.com/coral/com.amazon.bedrock/"

_STOP_REASONS = {
    EmulatedFinish.END: "end_turn",
    EmulatedFinish.LENGTH: "max_tokens",
    EmulatedFinish.STOP_SEQUENCE: "stop_sequence",
}


class _InvalidRequestError(Exception):
    """A request Bedrock would reject with ValidationException."""


class BedrockRuntimeEmulator(EmulatorApp):
    def __init__(
        self,
        *,
        known_models: Iterable[str] | None = None,
        faults: FaultPlan | None = None,
        forwarder: OpenAICompatibleForwarder | None = None,
    ) -> None:
        super().__init__(faults=faults, forwarder=forwarder)
        # None accepts any model id; a set rejects others as Bedrock does for unknown identifiers.
        self.known_models: set[str] | None = set(known_models) if known_models is not None else None
        # The path converter keeps ARNs (whose '/' botocore sends as %2F) in one model id.
        self._routes = Map(
            [
                Rule("/model/<path:model_id>/converse", methods=["POST"], endpoint="converse"),
                Rule("/model/<path:model_id>/converse-stream", methods=["POST"], endpoint="converse_stream"),
            ]
        )

    @classmethod
    def from_route_table(cls, table: RouteTable, **kwargs: Any) -> BedrockRuntimeEmulator:
        models = {t.model_id for t in table.targets.values() if t.provider is Provider.BEDROCK}
        return cls(known_models=models, **kwargs)

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
        streaming = operation == "converse_stream"
        started = time.monotonic()
        model_id = str(args["model_id"])
        if self.known_models is not None and model_id not in self.known_models:
            return self.service_error(400, "ValidationException", "The provided model identifier is invalid.")
        try:
            body = _parse_converse(request.get_data())
        except _InvalidRequestError as exc:
            return self.service_error(400, "ValidationException", str(exc))

        decision = self.apply_faults([model_id], streaming=streaming)
        if not (streaming and decision.fails_mid_stream()):
            if decision.outcome is Outcome.THROTTLED:
                return self.service_error(
                    429, "ThrottlingException", "Too many requests, please wait before trying again."
                )
            if decision.outcome is Outcome.ERROR:
                return self._fault_error(decision.error_status, model_id)

        if streaming:
            try:
                tokens = self._stream(model_id, body)
            except ForwardingError as exc:
                return self._forwarding_error(exc, model_id)
            frames = self._converse_stream(self.pace(tokens, decision), started)
            return stream_response(frames, "application/vnd.amazon.eventstream")
        try:
            generation = self._generate(model_id, body)
        except ForwardingError as exc:
            return self._forwarding_error(exc, model_id)
        self.pause(decision.generation_s(generation.output_tokens))
        return json_response(
            {
                "output": {"message": {"role": "assistant", "content": [{"text": generation.text}]}},
                "stopReason": _STOP_REASONS[generation.finish],
                "usage": _usage(generation),
                "metrics": {"latencyMs": int((time.monotonic() - started) * 1000)},
            }
        )

    def _converse_stream(self, tokens: Generator[str | Generation], started: float) -> Iterator[bytes]:
        """ConverseStream's events for `tokens`; a failure mid-stream is the stream's last event."""
        yield event_message("messageStart", {"role": "assistant"})
        try:
            for item in tokens:
                if isinstance(item, Generation):
                    generation = item
                    break
                yield event_message("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": item}})
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
            tokens.close()
        yield event_message("contentBlockStop", {"contentBlockIndex": 0})
        yield event_message("messageStop", {"stopReason": _STOP_REASONS[generation.finish]})
        yield event_message(
            "metadata",
            {"usage": _usage(generation), "metrics": {"latencyMs": int((time.monotonic() - started) * 1000)}},
        )

    def _stream(self, model_id: str, body: Mapping[str, Any]) -> TokenStream:
        if self.forwarder is not None:
            return self.forwarder.stream_chat(model=model_id, **_forwarded_chat(body))
        return token_stream(self._generate(model_id, body))

    def _generate(self, model_id: str, body: Mapping[str, Any]) -> Generation:
        if self.forwarder is not None:
            return self.forwarder.chat(model=model_id, **_forwarded_chat(body))
        system, turns = _system_and_turns(body)
        config = body.get("inferenceConfig") or {}
        stop = [str(s) for s in config.get("stopSequences", [])]
        last_user = next((text for role, text in reversed(turns) if role == "user"), "")
        return generate_answer(
            model=model_id,
            last_user_text=last_user,
            prompt_text=system + "".join(text for _, text in turns),
            max_tokens=config.get("maxTokens"),
            stop=stop,
        )

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


def _usage(generation: Generation) -> dict[str, int]:
    return {
        "inputTokens": generation.input_tokens,
        "outputTokens": generation.output_tokens,
        "totalTokens": generation.input_tokens + generation.output_tokens,
    }


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


def _system_and_turns(body: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    system = "\n\n".join(block["text"] for block in body.get("system", []) if "text" in block)
    turns = [(m["role"], "\n\n".join(b["text"] for b in m["content"] if "text" in b)) for m in body["messages"]]
    return system, turns


def _forwarded_chat(body: Mapping[str, Any]) -> dict[str, Any]:
    """The forwarder's chat arguments for a Converse body: system blocks become a system message."""
    system, turns = _system_and_turns(body)
    config = body.get("inferenceConfig") or {}
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": role, "content": text} for role, text in turns
    ]
    return {
        "messages": messages,
        "max_tokens": config.get("maxTokens"),
        "temperature": config.get("temperature"),
        "top_p": config.get("topP"),
        "stop": [str(s) for s in config.get("stopSequences", [])],
    }


_MALFORMED = "Malformed input request, please reformat your input and try again."
_STARTS_WITH_USER = (
    "A conversation must start with a user message. Try again with a conversation that starts with a user message."
)
_ALTERNATE = (
    "A conversation must alternate between user and assistant roles. "
    "Make sure the conversation alternates between user and assistant roles and try again."
)


def _parse_converse(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        raise _InvalidRequestError(_MALFORMED) from exc
    if not isinstance(body, dict):
        raise _InvalidRequestError(_MALFORMED)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _InvalidRequestError(_STARTS_WITH_USER)
    previous = None
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise _InvalidRequestError(
                f"Value at 'messages.{i + 1}.member.role' failed to satisfy constraint: "
                "Member must satisfy enum value set: [user, assistant]"
            )
        if i == 0 and role != "user":
            raise _InvalidRequestError(_STARTS_WITH_USER)
        if role == previous:
            raise _InvalidRequestError(_ALTERNATE)
        previous = role
        content = message.get("content")
        if not isinstance(content, list) or not content:
            raise _InvalidRequestError(
                f"The content field in the Message object at messages.{i} is empty. "
                "Add a ContentBlock object to the content field and try again."
            )
        for j, block in enumerate(content):
            if isinstance(block, dict) and "text" in block and not str(block["text"]).strip():
                raise _InvalidRequestError(
                    f"The text field in the ContentBlock object at messages.{i}.content.{j} is blank. "
                    "Add text to the text field, and try again."
                )
    config = body.get("inferenceConfig") or {}
    max_tokens = config.get("maxTokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise _InvalidRequestError("The maximum tokens you requested exceeds the model limit or is below 1.")
    for name in ("temperature", "topP"):
        value = config.get(name)
        if value is not None and not 0 <= float(value) <= 1:
            raise _InvalidRequestError(f"{name} must be between 0 and 1.")
    return body
