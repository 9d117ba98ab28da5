"""A local SageMaker Runtime: `POST /endpoints/{EndpointName}/invocations`, for unchanged boto3 clients.

Each endpoint answers in the dialect of the container it stands for: OpenAI chat completions (LMI,
vLLM, TGI Messages API) or TGI's native `[{"generated_text", "details"}]`. Unless configured, the
dialect is detected from the body ("messages" or "inputs"). Container-level rejections (TGI's 422 on
`temperature: 0`, say) come back as SageMaker does it: HTTP 424 `ModelError` carrying the
container's `OriginalStatusCode` and `OriginalMessage`.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from llmops.domain.routing import PayloadFormat, Provider, RouteTable
from llmops.local.emulators.answers import EmulatedFinish, Generation, generate_answer
from llmops.local.emulators.base import EmulatorApp, json_response
from llmops.local.emulators.faults import FaultPlan, Outcome
from llmops.local.emulators.forwarding import ForwardingError, OpenAICompatibleForwarder

__all__ = ["DEFAULT_VARIANT", "EndpointConfig", "SageMakerRuntimeEmulator"]

DEFAULT_VARIANT = "AllTraffic"
_ACCOUNT = "000000000000"
_REGION = "us-east-1"
_VARIANT_HEADER = "X-Amzn-SageMaker-Target-Variant"

_OPENAI_FINISH = {
    EmulatedFinish.END: "stop",
    EmulatedFinish.LENGTH: "length",
    EmulatedFinish.STOP_SEQUENCE: "stop",
}
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


class _ContainerError(Exception):
    """What the model container would answer with a non-2xx status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SageMakerRuntimeEmulator(EmulatorApp):
    def __init__(
        self,
        *,
        endpoints: Mapping[str, EndpointConfig] | None = None,
        faults: FaultPlan | None = None,
        forwarder: OpenAICompatibleForwarder | None = None,
    ) -> None:
        super().__init__(faults=faults, forwarder=forwarder)
        # None accepts any endpoint name; a mapping makes the emulator reject the others, as
        # SageMaker does for endpoints that do not exist (or were deleted after a canary).
        self._endpoints: dict[str, EndpointConfig] | None = dict(endpoints) if endpoints is not None else None
        self._endpoints_lock = threading.Lock()
        self._routes = Map([Rule("/endpoints/<endpoint_name>/invocations", methods=["POST"], endpoint="invoke")])

    @classmethod
    def from_route_table(cls, table: RouteTable, **kwargs: Any) -> SageMakerRuntimeEmulator:
        """Endpoints, dialects and variants as the route table's SageMaker targets describe them."""
        formats: dict[str, PayloadFormat] = {}
        variants: dict[str, list[str]] = {}
        for target in table.targets.values():
            if target.provider is not Provider.SAGEMAKER:
                continue
            formats[target.endpoint_name] = target.payload_format
            names = variants.setdefault(target.endpoint_name, [])
            if target.variant and target.variant not in names:
                names.append(target.variant)
        endpoints = {
            name: EndpointConfig(payload_format=fmt, variants=tuple(variants[name])) for name, fmt in formats.items()
        }
        return cls(endpoints=endpoints, **kwargs)

    def register(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """`POST /_emulator/endpoints {"name", "payload_format"?, "variants"?}` adds or replaces one."""
        name = doc.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError('register an endpoint with {"name": ..., "payload_format"?, "variants"?}')
        fmt = doc.get("payload_format")
        raw_variants = doc.get("variants", [])
        if not isinstance(raw_variants, list):
            raise ValueError("'variants' must be a list of names")
        config = EndpointConfig(
            payload_format=PayloadFormat(fmt) if fmt else None, variants=tuple(str(v) for v in raw_variants)
        )
        with self._endpoints_lock:
            if self._endpoints is None:
                self._endpoints = {}
            self._endpoints[name] = config
            return {"endpoints": sorted(self._endpoints)}

    def handle(self, request: Request) -> Response:
        _, args = self._routes.bind_to_environ(request.environ).match()
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

        decision = self.apply_faults([f"{endpoint}/{variant}", endpoint])
        if decision.outcome is Outcome.THROTTLED:
            return self.service_error(429, "ThrottlingException", "Rate exceeded")
        if decision.outcome is Outcome.ERROR:
            if decision.error_status == 503:
                return self.service_error(503, "ServiceUnavailable", "The service is unavailable. Try again.")
            return self._model_error(endpoint, variant, decision.error_status, "Internal server error")

        try:
            doc = self._invoke(endpoint, variant, config, request.get_data())
        except _ContainerError as exc:
            return self._model_error(endpoint, variant, exc.status, exc.message)
        return json_response(doc, 200, headers)

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

    def _invoke(self, endpoint: str, variant: str, config: EndpointConfig, raw: bytes) -> Any:
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise _ContainerError(400, "Failed to parse the request body as JSON") from exc
        if not isinstance(body, dict):
            raise _ContainerError(400, "The request body must be a JSON object")
        fmt = config.payload_format
        if fmt is None:
            fmt = PayloadFormat.TGI if "inputs" in body else PayloadFormat.OPENAI
        label = f"{endpoint}/{variant}"
        if fmt is PayloadFormat.TGI:
            return self._tgi(label, body)
        return self._openai(label, body)

    def _openai(self, label: str, body: Mapping[str, Any]) -> Any:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _ContainerError(400, "'messages' is required and must be a non-empty list")
        max_tokens = body.get("max_tokens")
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise _ContainerError(400, "max_tokens must be at least 1")
        stop = body.get("stop") or []
        stop = [stop] if isinstance(stop, str) else [str(s) for s in stop]
        contents = [(str(m.get("role")), str(m.get("content") or "")) for m in messages if isinstance(m, dict)]
        sampling = _Sampling(max_tokens, _number(body.get("temperature")), _number(body.get("top_p")), stop)
        generation = self._generate_chat(label, contents, sampling)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": label,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": generation.text},
                    "logprobs": None,
                    "finish_reason": _OPENAI_FINISH[generation.finish],
                }
            ],
            "usage": {
                "prompt_tokens": generation.input_tokens,
                "completion_tokens": generation.output_tokens,
                "total_tokens": generation.input_tokens + generation.output_tokens,
            },
        }

    def _tgi(self, label: str, body: Mapping[str, Any]) -> Any:
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
        sampling = _Sampling(max_new, temperature, top_p, stop)
        generation = self._generate_prompt(label, prompt, sampling)
        text = generation.text
        if generation.finish is EmulatedFinish.STOP_SEQUENCE and generation.stop_sequence:
            text += generation.stop_sequence  # TGI keeps the matched stop sequence in the output
        if params.get("return_full_text"):
            text = prompt + text
        item: dict[str, Any] = {"generated_text": text}
        if params.get("details"):
            item["details"] = {
                "finish_reason": _TGI_FINISH[generation.finish],
                "generated_tokens": generation.output_tokens,
                "seed": None,
                "prefill": [],
                "tokens": [],
            }
        return [item]

    def _generate_chat(self, label: str, contents: list[tuple[str, str]], sampling: _Sampling) -> Generation:
        forwarder = self.forwarder
        if forwarder is not None:
            messages = [{"role": r, "content": c} for r, c in contents]
            return _forwarded(lambda: forwarder.chat(model=label, messages=messages, **sampling.as_kwargs()))
        last_user = next((c for r, c in reversed(contents) if r == "user"), "")
        return generate_answer(
            model=label,
            last_user_text=last_user,
            prompt_text="".join(c for _, c in contents),
            max_tokens=sampling.max_tokens,
            stop=sampling.stop,
        )

    def _generate_prompt(self, label: str, prompt: str, sampling: _Sampling) -> Generation:
        forwarder = self.forwarder
        if forwarder is not None:
            return _forwarded(lambda: forwarder.complete_prompt(model=label, prompt=prompt, **sampling.as_kwargs()))
        turns = [next(g for g in m.groups() if g is not None) for m in _USER_TURN.finditer(prompt)]
        # Templates without a system role (Mistral) prepend the system text to the first user turn,
        # separated by a blank line: answer the user's own words, as a model would.
        last_user = turns[-1].strip().split("\n\n")[-1] if turns else prompt
        return generate_answer(
            model=label,
            last_user_text=last_user,
            prompt_text=prompt,
            max_tokens=sampling.max_tokens,
            stop=sampling.stop,
        )


def _forwarded(call: Callable[[], Generation]) -> Generation:
    try:
        return call()
    except ForwardingError as exc:
        raise _ContainerError(exc.status, exc.message) from exc
