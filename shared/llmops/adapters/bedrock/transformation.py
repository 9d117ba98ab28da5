"""Pure mapping between the gateway's chat model and the Bedrock Converse API (no I/O, no botocore).

ConverseStream takes the same request as Converse (`to_converse_request`); its events, as botocore
parses them, map to `StreamEvent`s in `from_converse_stream`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from llmops.adapters.provider_errors import ServiceErrorTable
from llmops.domain.chat import ChatRequest, Completion, FinishReason, Message, Role, Usage
from llmops.domain.errors import ProviderError, ProviderFailureKind
from llmops.domain.guard import safe_regex
from llmops.domain.routing import Target
from llmops.domain.streaming import StreamEnd, StreamEvent, TextDelta

BEDROCK_MAX_TEMPERATURE = 1.0

__all__ = [
    "ERROR_KINDS",
    "ERROR_TABLE",
    "FINISH_REASONS",
    "from_converse_response",
    "from_converse_stream",
    "merge_consecutive_roles",
    "to_converse_request",
]

FINISH_REASONS: Mapping[str, FinishReason] = MappingProxyType(
    {
        "end_turn": FinishReason.STOP,
        "stop_sequence": FinishReason.STOP,
        "tool_use": FinishReason.STOP,
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


def merge_consecutive_roles(messages: Iterable[Message]) -> list[tuple[Role, list[str]]]:
    """Groups consecutive messages of one role, dropping blank ones.

    Converse requires user and assistant turns to alternate and rejects blank text blocks; OpenAI
    clients routinely send two user messages in a row (e.g. instructions, then the question).
    """
    turns: list[tuple[Role, list[str]]] = []
    for message in messages:
        if not message.content.strip():
            continue
        if turns and turns[-1][0] is message.role:
            turns[-1][1].append(message.content)
        else:
            turns.append((message.role, [message.content]))
    return turns


def to_converse_request(target: Target, request: ChatRequest) -> dict[str, Any]:
    """The keyword arguments for `bedrock-runtime.converse`."""
    converse: dict[str, Any] = {
        "modelId": target.model_id,
        "messages": [
            {"role": role.value, "content": [{"text": text} for text in texts]}
            for role, texts in merge_consecutive_roles(request.conversation)
        ],
    }
    system = [{"text": m.content} for m in request.messages if m.role is Role.SYSTEM and m.content.strip()]
    if system:
        converse["system"] = system
    inference: dict[str, Any] = {}
    if request.max_tokens is not None:
        inference["maxTokens"] = request.max_tokens
    if request.temperature is not None:
        # OpenAI's scale is 0..2, Converse's 0..1: above 1 is "as random as the model allows".
        inference["temperature"] = min(request.temperature, BEDROCK_MAX_TEMPERATURE)
    if request.top_p is not None:
        inference["topP"] = request.top_p
    if request.stop:
        inference["stopSequences"] = list(request.stop)
    if inference:
        converse["inferenceConfig"] = inference
    return converse


def from_converse_response(resp: Mapping[str, Any]) -> Completion:
    """Maps a Converse response; a response without a message is a provider fault, not a crash."""
    try:
        content = resp["output"]["message"]["content"]
        text = "".join(block["text"] for block in content if isinstance(block, Mapping) and "text" in block)
        usage = resp.get("usage") or {}
        stop_reason = str(resp.get("stopReason", "end_turn"))
        input_tokens = int(usage.get("inputTokens", 0))
        output_tokens = int(usage.get("outputTokens", 0))
    except (KeyError, TypeError, ValueError) as exc:
        raise ProviderError(ProviderFailureKind.UNAVAILABLE, "Bedrock returned a malformed Converse response") from exc
    extra: dict[str, Any] = {"stop_reason": stop_reason}
    latency = (resp.get("metrics") or {}).get("latencyMs")
    if latency is not None:
        extra["provider_latency_ms"] = latency
    return Completion(
        text=text,
        finish_reason=FINISH_REASONS.get(stop_reason, FinishReason.STOP),
        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
        extra=extra,
    )


def from_converse_stream(events: Iterable[Mapping[str, Any]], *, target_id: str = "") -> Iterator[StreamEvent]:
    """ConverseStream's events (botocore's dicts) as a `TextDelta` per text delta, then the `StreamEnd`.

    The end comes once the stream is over, so it carries metadata's usage, which Bedrock sends after
    messageStop. Non-text deltas (tool use, reasoning) are not part of the answer's text and are
    skipped. A stream that ends without messageStop was cut off: a provider fault.
    """
    stop_reason: str | None = None
    usage: Usage | None = None
    try:
        for event in events:
            if "contentBlockDelta" in event:
                text = (event["contentBlockDelta"].get("delta") or {}).get("text")
                if isinstance(text, str) and text:
                    yield TextDelta(text)
            elif "messageStop" in event:
                stop_reason = str(event["messageStop"].get("stopReason", "end_turn"))
            elif "metadata" in event:
                reported = event["metadata"].get("usage") or {}
                usage = Usage(int(reported.get("inputTokens", 0)), int(reported.get("outputTokens", 0)))
    except (AttributeError, TypeError, ValueError) as exc:
        raise ProviderError(
            ProviderFailureKind.UNAVAILABLE, "Bedrock sent a malformed ConverseStream event", target_id=target_id
        ) from exc
    if stop_reason is None:
        raise ProviderError(
            ProviderFailureKind.UNAVAILABLE, "Bedrock's stream ended before messageStop", target_id=target_id
        )
    yield StreamEnd(FINISH_REASONS.get(stop_reason, FinishReason.STOP), usage)
