"""Turns a finished request (or a feedback rating) into CloudWatch EMF records via Powertools.

Each EMF record is one JSON log line holding metrics that share their dimension sets; a request
produces a handful (request, tokens by type, provider calls per target, guard verdicts, stages),
because a record can hold only one value per dimension name. Every record is built on its own
`AmazonCloudWatchEMFProvider`, so the handler's shared `Metrics` set (cold start and the like) is
neither flushed early nor given our dimensions.

What is written: catalogue metric names and units, bounded dimension values, and as properties
(for Logs Insights) the record kind, request id, status, error code, attempt count, duration,
per-stage milliseconds, cache status and (streamed requests) TTFT. Never prompt or
completion text, finding values, tenant or key ids: the trace's text fields are not read at all.

Emission never fails a request: an error here is logged by type and swallowed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from llmops.domain.completions import Attempt
from llmops.domain.errors import ProviderFailureKind
from llmops.domain.feedback import Feedback
from llmops.domain.guard.findings import NON_ENTITY_TYPES, PII_TYPES, SECRET_TYPES, FindingType
from llmops.domain.guard.service_detectors import SERVICE_DETECTORS
from llmops.domain.request_trace import RequestTrace
from llmops.domain.stages import RequestStage
from llmops.observability.metrics import (
    AFTER_RESPONSE_FAILURES,
    CACHE_HITS,
    CACHE_MISSES,
    COST_USD,
    ERRORS,
    FALLBACKS,
    FEEDBACK,
    FEEDBACK_NEGATIVE,
    GATEWAY_SERVICE,
    GUARD_BLOCKS,
    GUARD_BUDGET_EXCEEDED,
    GUARD_BYPASSES,
    GUARD_DETECTOR_FAILURES,
    GUARD_FINDINGS,
    GUARD_REDACTIONS,
    NAMESPACE,
    OPERATION_DURATION,
    PROVIDER_CALLS,
    PROVIDER_ERRORS,
    PROVIDER_THROTTLES,
    QUOTA_REJECTIONS,
    REQUEST_DURATION,
    REQUESTS,
    ROUTING_FAILURES,
    STAGE_DURATION,
    TIME_PER_OUTPUT_TOKEN,
    TIME_TO_FIRST_TOKEN,
    TOKEN_USAGE,
    Dim,
    GuardStage,
    GuardType,
    MetricSpec,
    QuotaReason,
    StatusClass,
    TokenType,
    status_class,
)

__all__ = [
    "AFTER_RESPONSE_RECORD",
    "FEEDBACK_RECORD",
    "REQUEST_RECORD",
    "emit_after_response_failures",
    "emit_feedback_metrics",
    "emit_request_metrics",
    "guard_type",
]

# The `record` property of the per-request, per-rating and after-response EMF lines, for Logs
# Insights filters (`filter record = "request"`); metric values are arrays in EMF, so filter on
# properties instead.
REQUEST_RECORD = "request"
FEEDBACK_RECORD = "feedback"
AFTER_RESPONSE_RECORD = "after_response"

_log = logging.getLogger(__name__)

_REDACTING_ACTIONS = frozenset({"redact", "pseudonymize"})
_CACHE_OUTCOMES = frozenset({"hit", "miss"})
_THROTTLED_CODES = frozenset({"upstream_throttled"})
# A rejected request (invalid_request) is the caller's fault, not the provider's: a call, not an error.
_PROVIDER_ERROR_OUTCOMES = frozenset({ProviderFailureKind.UNAVAILABLE.value, ProviderFailureKind.TIMEOUT.value})
_GUARD_TYPES = {t.value for t in GuardType}
_QUOTA_REASONS = {r.value for r in QuotaReason}
_STAGES = {s.value for s in RequestStage}
_GUARD_STAGES = {s.value for s in GuardStage}
_SERVICE_DETECTORS = SERVICE_DETECTORS  # the detector dimension's values: bounded by construction


def guard_type(finding_type: str) -> GuardType:
    """The bounded guard family of a finding type (custom detectors' types become `other`)."""
    if finding_type in PII_TYPES:
        return GuardType.PII
    if finding_type in SECRET_TYPES:
        return GuardType.SECRET
    if finding_type in NON_ENTITY_TYPES and finding_type.lower() in _GUARD_TYPES:
        return GuardType(finding_type.lower())
    return GuardType.OTHER


@dataclass(frozen=True, slots=True)
class _Call:
    """One model call; `target` is empty when only the count of failed calls is known."""

    target: str
    outcome: str  # "ok" or a ProviderFailureKind value
    latency_ms: float | None


class _Records:
    """Writes EMF records under one namespace, checking each against the catalogue."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def write(
        self,
        values: Mapping[MetricSpec, float | Sequence[float]],
        dimension_sets: Sequence[Mapping[Dim, str]],
        properties: Mapping[str, object] | None = None,
    ) -> None:
        for spec in values:
            for dims in dimension_sets:
                if not spec.has_dimensions({d.value for d in dims}):
                    raise ValueError(f"{spec.name} is not catalogued with dimensions {sorted(dims)}")
        provider = AmazonCloudWatchEMFProvider(namespace=self.namespace, service=GATEWAY_SERVICE)
        for spec, value in values.items():
            for item in value if isinstance(value, Sequence) else (value,):
                provider.add_metric(name=spec.name, unit=spec.unit.value, value=item)
        first, *more = dimension_sets
        for name, dim_value in first.items():
            provider.add_dimension(name=name.value, value=dim_value)
        for dims in more:
            provider.add_dimensions(**{name.value: dim_value for name, dim_value in dims.items()})
        for key, prop in (properties or {}).items():
            provider.add_metadata(key=key, value=prop)
        provider.flush_metrics()


def _namespace(metrics: Metrics) -> str:
    return metrics.provider.namespace or NAMESPACE


def _scopes(base: Mapping[Dim, str], alias: str, target: str) -> list[dict[Dim, str]]:
    """The catalogue's (service), (service, alias), (service, target) sets, each extended by `base`."""
    service = {Dim.SERVICE: GATEWAY_SERVICE, **base}
    scopes = [service]
    if alias:
        scopes.append({**service, Dim.ALIAS: alias})
    if target:
        scopes.append({**service, Dim.TARGET: target})
    return scopes


def _calls(trace: RequestTrace, attempts: Sequence[Attempt]) -> list[_Call]:
    if attempts:
        return [_Call(a.target_id, a.outcome, a.latency_ms) for a in attempts]
    # Without the attempt list only the count is known: the served target (if any) came last and
    # the calls before it failed somewhere unknown.
    if trace.attempts <= 0:
        return []
    failed_kind = (
        ProviderFailureKind.THROTTLED.value
        if trace.error_code in _THROTTLED_CODES
        else ProviderFailureKind.UNAVAILABLE.value
    )
    if trace.target:
        failures = [_Call("", failed_kind, None) for _ in range(trace.attempts - 1)]
        latency = trace.stage_ms.get(RequestStage.PROVIDER) if trace.attempts == 1 else None
        return [*failures, _Call(trace.target, "ok", latency)]
    return [_Call("", failed_kind, None) for _ in range(trace.attempts)]


def _provider_records(records: _Records, calls: Sequence[_Call]) -> None:
    by_target: dict[str, list[_Call]] = {}
    for call in calls:
        by_target.setdefault(call.target, []).append(call)
    for target, group in by_target.items():
        values: dict[MetricSpec, float | Sequence[float]] = {
            PROVIDER_CALLS: len(group),
            PROVIDER_ERRORS: sum(1 for c in group if c.outcome in _PROVIDER_ERROR_OUTCOMES),
            PROVIDER_THROTTLES: sum(1 for c in group if c.outcome == ProviderFailureKind.THROTTLED.value),
        }
        latencies = [c.latency_ms / 1000 for c in group if c.latency_ms is not None]
        if latencies:
            values[OPERATION_DURATION] = latencies
        records.write(values, _scopes({}, "", target))


def _guard_records(records: _Records, trace: RequestTrace, alias: str) -> None:
    for verdict in trace.guard:
        if verdict.stage not in _GUARD_STAGES:
            continue
        blocked = verdict.action == "block"
        stage = {Dim.GUARD_STAGE: verdict.stage}
        # Per target only for the output guard: that is the verdict on what the target wrote.
        target = trace.target if verdict.stage == GuardStage.OUTPUT else ""
        records.write(
            {GUARD_BLOCKS: int(blocked), GUARD_REDACTIONS: int(verdict.action in _REDACTING_ACTIONS)},
            [*_scopes({}, alias, target), *_scopes(stage, "", "")],
        )
        if FindingType.GUARD_BUDGET_EXCEEDED in verdict.findings:
            records.write({GUARD_BUDGET_EXCEEDED: 1}, [*_scopes({}, "", ""), *_scopes(stage, "", "")])
        failures = {name: n for name, n in verdict.unavailable.items() if name in _SERVICE_DETECTORS}
        if failures:
            records.write(
                {GUARD_DETECTOR_FAILURES: sum(failures.values())}, [*_scopes({}, "", ""), *_scopes(stage, "", "")]
            )
            for name, count in sorted(failures.items()):
                records.write({GUARD_DETECTOR_FAILURES: count}, _scopes({Dim.DETECTOR: name}, "", ""))
        counts: dict[GuardType, int] = {}
        for finding_type, count in verdict.findings.items():
            family = guard_type(finding_type)
            counts[family] = counts.get(family, 0) + count
        for family, count in sorted(counts.items()):
            records.write(
                {GUARD_FINDINGS: count, GUARD_BLOCKS: int(blocked)},
                _scopes({**stage, Dim.GUARD_TYPE: family.value}, "", ""),
            )


def _request_values(trace: RequestTrace, duration_s: float) -> dict[MetricSpec, float]:
    served = bool(trace.target) and trace.status < 400
    has_output_verdict = any(v.stage == GuardStage.OUTPUT for v in trace.guard)
    values: dict[MetricSpec, float] = {
        REQUESTS: 1,
        REQUEST_DURATION: duration_s,
        COST_USD: trace.cost_usd,
        FALLBACKS: int(bool(trace.target) and trace.attempts > 1),
        ROUTING_FAILURES: int(not trace.target and trace.attempts > 0),
        GUARD_BYPASSES: int(served and not has_output_verdict),
    }
    if trace.cache in _CACHE_OUTCOMES:
        values[CACHE_HITS] = int(trace.cache == "hit")
        values[CACHE_MISSES] = int(trace.cache == "miss")
    values.update(_streaming_values(trace))
    return values


def _streaming_values(trace: RequestTrace) -> dict[MetricSpec, float]:
    """TTFT and TPOT, in seconds, for a streamed request that measured them; nothing otherwise.

    A buffered answer's first token arrives with its last, so publishing its duration as a TTFT would
    mix two populations in one percentile and hide what streaming changed.
    """
    if not trace.streamed:
        return {}
    values: dict[MetricSpec, float] = {}
    if trace.ttft_ms is not None and trace.ttft_ms >= 0:
        values[TIME_TO_FIRST_TOKEN] = trace.ttft_ms / 1000
    if trace.time_per_output_token_ms is not None and trace.time_per_output_token_ms >= 0:
        values[TIME_PER_OUTPUT_TOKEN] = trace.time_per_output_token_ms / 1000
    return values


def emit_request_metrics(
    metrics: Metrics,
    trace: RequestTrace,
    *,
    attempts: Sequence[Attempt] = (),
    clock: Callable[[], float] = time.time,
) -> None:
    """Emits the metrics of one finished chat request (ChatEndpoint's `on_finished`).

    `attempts` are the provider calls in order (CompletionResult.attempts or
    UpstreamUnavailableError.attempts); without them only totals are known for calls that failed
    before the served one.
    """
    try:
        _emit_request(_Records(_namespace(metrics)), trace, attempts, clock)
    except Exception as error:  # metrics must never fail the request they describe
        _log.warning("request metrics not emitted", extra={"error_type": type(error).__name__})


def _emit_request(
    records: _Records,
    trace: RequestTrace,
    attempts: Sequence[Attempt],
    clock: Callable[[], float],
) -> None:
    # The alias is what the caller typed until routing resolves it, so it becomes a dimension only
    # once a route was found (a call was made or a target chosen); before that it is unbounded.
    routed = bool(trace.target) or trace.attempts > 0 or bool(attempts)
    alias = trace.alias if routed else ""
    duration_s = max(clock() - trace.started_at, 0.0)
    properties: dict[str, object] = {
        "record": REQUEST_RECORD,
        "request_id": trace.request_id,
        "status": trace.status,
        "attempts": max(trace.attempts, len(attempts)),
        "streamed": trace.streamed,
        "duration_ms": round(duration_s * 1000, 1),
        "stage_ms": {stage: round(ms, 1) for stage, ms in _known_stages(trace.stage_ms)},
    }
    if trace.error_code:
        properties["error_code"] = trace.error_code
    if trace.provider:
        properties["provider"] = trace.provider
    if trace.cache:
        properties["cache"] = trace.cache
    if trace.streamed and trace.ttft_ms is not None:
        properties["ttft_ms"] = round(trace.ttft_ms, 1)
    records.write(_request_values(trace, duration_s), _scopes({}, alias, trace.target), properties)

    klass = status_class(trace.status)
    if klass is not StatusClass.SUCCESS:
        records.write({ERRORS: 1}, _scopes({Dim.STATUS_CLASS: klass.value}, alias, trace.target))
    if trace.status == 429 and trace.error_code in _QUOTA_REASONS:
        records.write({QUOTA_REJECTIONS: 1}, [*_scopes({}, "", ""), _reason(trace.error_code)])
    for token_type, tokens in ((TokenType.INPUT, trace.input_tokens), (TokenType.OUTPUT, trace.output_tokens)):
        if tokens > 0:
            records.write({TOKEN_USAGE: tokens}, _scopes({Dim.TOKEN_TYPE: token_type.value}, alias, trace.target))
    _provider_records(records, _calls(trace, attempts))
    _guard_records(records, trace, alias)
    for stage, elapsed_ms in _known_stages(trace.stage_ms):
        records.write({STAGE_DURATION: elapsed_ms}, [{Dim.SERVICE: GATEWAY_SERVICE, Dim.STAGE: stage}])


def _reason(error_code: str | None) -> dict[Dim, str]:
    return {Dim.SERVICE: GATEWAY_SERVICE, Dim.QUOTA_REASON: str(error_code)}


def _known_stages(stage_ms: Mapping[str, float]) -> Iterable[tuple[str, float]]:
    return ((stage, ms) for stage, ms in stage_ms.items() if stage in _STAGES)


def emit_feedback_metrics(metrics: Metrics, feedback: Feedback) -> None:
    """Emits one rating: `Feedback` and the 0/1 `FeedbackNegative`, by alias and target.

    The alias and target come from the rated request's audit record; the alias counts only when the
    request was routed (it has a target). The comment and user are never emitted. Only a key's
    first rating of a request is counted (`Feedback.opens_vote`): the canary gates on these
    metrics, and re-posting or adding users must not multiply one key's voice.
    """
    if not feedback.opens_vote:
        return
    try:
        alias = feedback.alias if feedback.target_id else ""
        properties: dict[str, object] = {
            "record": FEEDBACK_RECORD,
            "request_id": feedback.request_id,
            "negative": feedback.score.negative,
        }
        if feedback.label is not None:
            properties["label"] = feedback.label.value
        _Records(_namespace(metrics)).write(
            {FEEDBACK: 1, FEEDBACK_NEGATIVE: int(feedback.score.negative)},
            _scopes({}, alias, feedback.target_id),
            properties,
        )
    except Exception as error:  # metrics must never fail the request they describe
        _log.warning("feedback metrics not emitted", extra={"error_type": type(error).__name__})


def emit_after_response_failures(metrics: Metrics, failed: int, *, invocation_id: str) -> None:
    """One EMF line: `AfterResponseFailures` (service) for an invocation whose after-response work
    had `failed` pieces fail or left undone; `invocation_id` is Lambda's request id (its REPORT
    line's), so the failure lines next to it in the log stream can be found; they name the exception
    type, never its message."""
    try:
        _Records(_namespace(metrics)).write(
            {AFTER_RESPONSE_FAILURES: failed},
            [{Dim.SERVICE: GATEWAY_SERVICE}],
            {"record": AFTER_RESPONSE_RECORD, "invocation_id": invocation_id},
        )
    except Exception as error:  # the response is gone already; a log line is all that is left
        _log.warning("after-response metrics not emitted", extra={"error_type": type(error).__name__})
