"""Gateway Lambda: the OpenAI-compatible API. Thin: parse, call the application layer, respond."""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from llmops.application.feedback_api import FeedbackRequest, record_feedback
from llmops.application.guardrails_api import ScanRequest, scan
from llmops.application.lambda_deadline import deadline_of
from llmops.application.model_catalogue import model_list
from llmops.application.openai_embeddings_schema import EmbeddingsRequest
from llmops.application.openai_schema import ChatCompletionRequest, ModelList
from llmops.application.proxy_events import (
    UnparsableBodyError,
    oversize_error,
    parse_json_body,
    request_id_of,
    tenant_of,
    with_header,
)
from llmops.application.proxy_router import BodyValidationError, ProxyRouter
from llmops.application.rendering import validation_error
from llmops.application.responses import ApiResponse, StreamingResponse, streaming_response, with_after_response
from llmops.application.server_timing import provider_ms_in, server_timing, with_server_timing
from llmops.config.env import Settings
from llmops.config.timeouts import BUFFERED_ANSWER_TIMEOUT_S
from llmops.domain.errors import BadRequestError, GatewayError
from llmops.domain.keys import InvalidApiKeyError
from llmops.domain.request_trace import RequestTrace
from llmops.domain.stages import RequestStage
from llmops.domain.tenancy import TenantContext
from llmops.observability.emit import emit_after_response_failures, emit_feedback_metrics, emit_request_metrics
from llmops.observability.powertools_env import tracing_enabled

if TYPE_CHECKING:
    from llmops.application.wiring import GatewayRuntime

# Request metrics are flushed by llmops.observability.emit, so the decorator's own set (kept for
# the ColdStart metric) is usually empty, and Powertools would warn about that on every request.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger()
metrics = Metrics()
# Built on the first invocation, and only when tracing is on (`tracing_enabled`): a Tracer imports
# the X-Ray SDK, about 100 ms of cold start, even when it is disabled.
_tracer: Tracer | None = None
app = ProxyRouter(parse_body=parse_json_body)
_runtime: GatewayRuntime | None = None
# The request traces answered during the current invocation (a buffered answer's, a refusal's): their
# provider time goes into Server-Timing. Cleared at the start of each invocation.
_finished_traces: list[RequestTrace] = []


def tracer() -> Tracer | None:
    global _tracer  # noqa: PLW0603 - one tracer per Lambda container, built on first use
    if _tracer is None and tracing_enabled():
        _tracer = Tracer()
    return _tracer


def runtime() -> GatewayRuntime:
    global _runtime  # noqa: PLW0603 - one composition root per Lambda container, built on first use
    if _runtime is None:
        # Imported here, not at module load: the adapters bring botocore (a few hundred ms of cold
        # init); the first invocation builds the clients anyway.
        from llmops.application.wiring import build_gateway  # noqa: PLC0415

        traced = tracer()
        spans = traced.provider.in_subsegment if traced is not None else None
        _runtime = build_gateway(
            Settings.from_env(), on_finished=_emit_metrics, on_answered=_finished_traces.append, spans=spans
        )
    return _runtime


_Handler = Callable[[dict[str, Any], LambdaContext], "dict[str, Any] | StreamingResponse"]


def _traced(handle: _Handler) -> _Handler:
    """`handle` under Powertools' `capture_lambda_handler` when tracing is on, decided on the first call."""
    chosen: list[_Handler] = []

    @functools.wraps(handle)
    def call(event: dict[str, Any], context: LambdaContext) -> dict[str, Any] | StreamingResponse:
        if not chosen:
            traced = tracer()
            chosen.append(handle if traced is None else traced.capture_lambda_handler(handle, capture_response=False))
        return chosen[0](event, context)

    return call


def _emit_metrics(trace: RequestTrace) -> None:
    emit_request_metrics(metrics, trace, attempts=trace.provider_attempts)


def _refuse(error: GatewayError) -> ApiResponse:
    logger.info("request refused", extra={"status": error.status, "error_code": error.code})
    return ApiResponse.error(error)


def _request_id() -> str:
    return request_id_of(app.event)


def _tenant() -> TenantContext:
    tenant = tenant_of(app.event)
    if tenant is None:
        # Only reachable if the route was deployed without the authorizer: refuse, never guess.
        raise InvalidApiKeyError()
    return tenant


# Model calls refused before their endpoint ran (schema, size) are audited too.
_AUDITED_PATHS = ("/chat/completions", "/embeddings")


def _audit_refusal(event: Mapping[str, Any], request_id: str, refusal: GatewayError) -> None:
    tenant = tenant_of(event)
    if tenant is not None and str(event.get("path", "")).endswith(_AUDITED_PATHS):
        runtime().chat.record_refusal(tenant, request_id, refusal)


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/v1/openapi.json")
def openapi() -> ApiResponse:
    # Public (llmops.config.public_routes): the same document for everyone, so no tenant is read.
    # Imported on first use: Powertools' OpenAPI models are ~100 ms of pydantic work at import.
    from llmops.application.openapi import openapi_json  # noqa: PLC0415

    return ApiResponse(200, openapi_json(app))


@app.get("/v1/models")
def list_models() -> ModelList:
    return model_list(runtime().routes.current(), _tenant().allowed_models)


@app.post("/v1/chat/completions")
def chat_completions(body: ChatCompletionRequest) -> ApiResponse:
    deadline = deadline_of(app.context, within_s=None if body.stream else BUFFERED_ANSWER_TIMEOUT_S)
    return runtime().chat.handle(body, _tenant(), _request_id(), app.headers, deadline)


@app.post("/v1/embeddings")
def embeddings(body: EmbeddingsRequest) -> ApiResponse:
    deadline = deadline_of(app.context, within_s=BUFFERED_ANSWER_TIMEOUT_S)
    return runtime().embeddings.handle(body, _tenant(), _request_id(), deadline)


@app.post("/v1/feedback")
def feedback(body: FeedbackRequest) -> dict[str, Any]:
    tenant, rt = _tenant(), runtime()
    recorded = record_feedback(body, tenant, rt.audit_lookup, rt.feedback, rt.guards(tenant.policy))
    emit_feedback_metrics(metrics, recorded)
    return recorded.to_public_dict()


@app.post("/v1/guardrails/scan")
def guardrails_scan(body: ScanRequest) -> dict[str, Any]:
    return scan(runtime().guards(_tenant().policy), body)


@app.get("/v1/usage")
def usage() -> dict[str, Any]:
    tenant = _tenant()
    windows = runtime().ledger.usage(tenant, time.time())
    return {
        "object": "usage",
        "tenant": tenant.tenant_id,
        "key": tenant.key_id,
        "windows": [w.to_json() for w in windows],
    }


@app.exception_handler(GatewayError)
def gateway_error(error: GatewayError) -> ApiResponse:
    return _refuse(error)


@app.exception_handler(BodyValidationError)
def invalid_request(error: BodyValidationError) -> ApiResponse:
    refusal = validation_error(error.errors())
    _audit_refusal(app.event, _request_id(), refusal)
    return _refuse(refusal)


@app.exception_handler(RecursionError, UnicodeDecodeError, UnparsableBodyError)
def unparsable_body(error: Exception) -> ApiResponse:
    # Raised while the resolver decodes or parses the body, before any route runs: nesting beyond
    # the JSON parser's depth, bytes that are not UTF-8, or what `parse_json_body` refuses.
    refusal = (
        error
        if isinstance(error, UnparsableBodyError)
        else BadRequestError(
            "The request body is not valid JSON (invalid UTF-8 or nested too deeply).", code="invalid_json"
        )
    )
    _audit_refusal(app.event, _request_id(), refusal)
    return _refuse(refusal)


@app.not_found
def not_found() -> ApiResponse:
    return ApiResponse.error(GatewayError("Unknown route.", status=404, code="not_found"))


@app.exception_handler(Exception)
def unexpected(error: Exception) -> ApiResponse:
    # The type name is safe to log; the message may echo user input, so it is not logged.
    logger.error("unhandled error", extra={"error_type": type(error).__name__})
    return ApiResponse.error(GatewayError("The gateway failed to process the request."))


def _with_timing(result: dict[str, Any], started: float, *, streamed: bool) -> dict[str, Any]:
    """Server-Timing on every answer (llmops.application.server_timing): a stream's provider time
    comes from its endpoint (its trace ends after the body), a buffered answer's from its trace."""
    provider_ms = provider_ms_in(result)
    if provider_ms is None:
        # Only traces that called a model: a cache hit's provider stage is a zero, not a model call.
        timed = [t.stage_ms.get(RequestStage.PROVIDER, 0.0) for t in _finished_traces if t.attempts]
        provider_ms = sum(timed) if timed else None
    total_ms = (time.perf_counter() - started) * 1000
    return with_server_timing(result, server_timing(total_ms, provider_ms, streamed=streamed))


@logger.inject_lambda_context
@_traced
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any] | StreamingResponse:
    # The audit record with its settle, the cache store and config refreshes run after the answer
    # is sent under our runtime loop, before it is returned to any other caller (with_after_response).
    # That work fails after Lambda has counted the invocation a success: it has a metric of its own.
    return with_after_response(
        context,
        functools.partial(_respond, event, context),
        functools.partial(emit_after_response_failures, metrics, invocation_id=context.aws_request_id),
    )


def _respond(event: dict[str, Any], context: LambdaContext) -> dict[str, Any] | StreamingResponse:
    started = time.perf_counter()
    _finished_traces.clear()
    request_id = request_id_of(event)
    # Set here rather than by `correlation_id_path`, which runs a JMESPath search on every event.
    logger.set_correlation_id(request_id)
    too_large = oversize_error(event, runtime().settings.max_body_bytes)
    if too_large is not None:
        _audit_refusal(event, request_id, too_large)
        response = ApiResponse.error(too_large)
    else:
        response = app.resolve(event, context)
    stream = response.stream
    # Added here, not per route: JSON returned by a route, a refusal and the router's 404 all carry
    # the request id.
    result = with_header(response.to_proxy_result(), "x-request-id", request_id)
    result = _with_timing(result, started, streamed=stream is not None)
    if stream is not None:
        # Written chunk by chunk by llmops.lambda_runtime.loop, the function's runtime.
        return streaming_response(result, stream)
    return result
