"""Pure mapping between the gateway's chat model and SageMaker InvokeEndpoint payloads (no I/O).

Two container dialects are supported (`PayloadFormat`):

* OPENAI: LMI, vLLM and TGI's Messages API take `{"messages": [...]}` and answer with an OpenAI
  `chat.completion` document.
* TGI: text-generation-inference's native `{"inputs", "parameters"}` with a prompt rendered from the
  model's chat template; it answers `[{"generated_text", "details"}]`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from llmops.adapters.provider_errors import ServiceErrorTable
from llmops.adapters.sagemaker.chat_templates import UnknownChatTemplateError, render_prompt
from llmops.domain.chat import ChatRequest, Completion, FinishReason, Usage
from llmops.domain.errors import ProviderError, ProviderFailureKind
from llmops.domain.guard import safe_regex
from llmops.domain.routing import PayloadFormat, Target

__all__ = [
    "CONTENT_TYPE",
    "ERROR_KINDS",
    "ERROR_TABLE",
    "OPENAI_FINISH_REASONS",
    "TGI_FINISH_REASONS",
    "estimate_tokens",
    "from_invoke_endpoint_response",
    "openai_body",
    "tgi_body",
    "to_invoke_endpoint_request",
]

CONTENT_TYPE = "application/json"

OPENAI_FINISH_REASONS: Mapping[str, FinishReason] = MappingProxyType(
    {
        "stop": FinishReason.STOP,
        "eos": FinishReason.STOP,
        "eos_token": FinishReason.STOP,
        "tool_calls": FinishReason.STOP,
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


def openai_body(request: ChatRequest) -> dict[str, Any]:
    messages = [{"role": m.role.value, "content": m.content} for m in request.messages]
    body: dict[str, Any] = {"messages": messages}
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop"] = list(request.stop)
    return body


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


def to_invoke_endpoint_request(target: Target, request: ChatRequest) -> dict[str, Any]:
    """The keyword arguments for `sagemaker-runtime.invoke_endpoint`."""
    is_tgi = target.payload_format is PayloadFormat.TGI
    body = tgi_body(target, request) if is_tgi else openai_body(request)
    kwargs: dict[str, Any] = {
        "EndpointName": target.endpoint_name,
        "Body": json.dumps(body, ensure_ascii=False).encode("utf-8"),
        "ContentType": CONTENT_TYPE,
        "Accept": CONTENT_TYPE,
    }
    if target.variant:
        kwargs["TargetVariant"] = target.variant
    return kwargs


def _from_openai(doc: Any, request: ChatRequest) -> Completion:
    choice = doc["choices"][0]
    text = choice["message"].get("content") or ""
    usage = doc.get("usage") or {}
    input_tokens = usage.get("prompt_tokens")
    output_tokens = usage.get("completion_tokens")
    return Completion(
        text=text,
        finish_reason=OPENAI_FINISH_REASONS.get(str(choice.get("finish_reason")), FinishReason.STOP),
        usage=Usage(
            input_tokens=int(input_tokens)
            if input_tokens is not None
            else estimate_tokens("".join(m.content for m in request.messages)),
            output_tokens=int(output_tokens) if output_tokens is not None else estimate_tokens(text),
        ),
        raw_model=str(doc["model"]) if doc.get("model") else None,
    )


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
