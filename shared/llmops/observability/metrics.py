"""The metric catalogue: every metric the gateway emits, with its unit and dimension sets.

One source of truth for the runtime emitter (`llmops.observability.emit`) and the CDK alarms and
dashboards (`infra.capabilities.alarms`, `infra.capabilities.dashboards`): a metric or dimension
that is not declared here is neither emitted nor alarmed on.

Names. Where the OpenTelemetry GenAI semantic conventions define a metric, its name is used
verbatim: CloudWatch metric names may be any printable ASCII (1-255 chars) and dimension names any
ASCII not starting with ':', so dots are kept and no mapping is needed:

    gen_ai.client.token.usage          tokens per request, dimension gen_ai.token.type = input|output
    gen_ai.client.operation.duration   time spent calling the model provider (Bedrock, SageMaker)
    gen_ai.server.request.duration     the gateway's own request duration (it is the GenAI server
                                       its callers see)
    gen_ai.server.time_to_first_token  streamed requests: request start to the first content chunk
                                       written to the caller (after the output guard released it)
    gen_ai.server.time_per_output_token
                                       streamed requests: mean time between the chunks after the first

The two streaming metrics are published only for `stream: true` requests that wrote a token: a
buffered answer's first token reaches the caller with its last, which the request duration measures.
Output tokens per second is not a metric of its own: the dashboards divide 1 by the time per output
token (the per-stream decode rate; its p50 is exactly 1 / p50) and the output token usage by the
period (the gateway's throughput), which costs no extra custom metric.
OpenTelemetry's unit for durations is seconds and for tokens `{token}`; CloudWatch has no token
unit, so tokens are `Count`. Everything else is ours, in CloudWatch's CamelCase.

Dimensions are bounded by construction: service, alias and target (only after routing resolved
them to configured names), status class, guard stage and type, quota reason, stage and
token type. Tenant, key, user and request ids never become dimensions; the per-request EMF record
carries the request id as a property so a metric can be traced back to the request in Logs
Insights without creating a metric per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "AFTER_RESPONSE_FAILURES",
    "CACHE_HITS",
    "CACHE_MISSES",
    "CATALOGUE",
    "COST_USD",
    "DRIFT_MONITOR_SERVICE",
    "DRIFT_SCORE",
    "ERRORS",
    "FALLBACKS",
    "FEEDBACK",
    "FEEDBACK_NEGATIVE",
    "FORBIDDEN_DIMENSIONS",
    "GATEWAY_SERVICE",
    "GUARD_BLOCKS",
    "GUARD_BUDGET_EXCEEDED",
    "GUARD_BYPASSES",
    "GUARD_DETECTOR_FAILURES",
    "GUARD_FINDINGS",
    "GUARD_REDACTIONS",
    "NAMESPACE",
    "OPERATION_DURATION",
    "PROVIDER_CALLS",
    "PROVIDER_ERRORS",
    "PROVIDER_THROTTLES",
    "QUOTA_REJECTIONS",
    "REQUESTS",
    "REQUEST_DURATION",
    "RESERVATIONS_EXPIRED",
    "RESERVATION_SWEEPER_SERVICE",
    "ROUTING_FAILURES",
    "STAGE_DURATION",
    "TIME_PER_OUTPUT_TOKEN",
    "TIME_TO_FIRST_TOKEN",
    "TOKEN_USAGE",
    "Dim",
    "GuardStage",
    "GuardType",
    "MetricSpec",
    "QuotaReason",
    "StatusClass",
    "TokenType",
    "Unit",
    "metric_spec",
    "status_class",
]

NAMESPACE = "LLMOps"
# The `service` dimension value of every gateway metric; alarms select on it, so it is fixed here
# rather than read from POWERTOOLS_SERVICE_NAME.
GATEWAY_SERVICE = "gateway"
# The scheduled drift job (functions/drift_monitor) publishes under its own service value.
DRIFT_MONITOR_SERVICE = "drift-monitor"
# So does the scheduled sweep of expired quota reservations (functions/reservation_sweeper).
RESERVATION_SWEEPER_SERVICE = "reservation-sweeper"


class Unit(StrEnum):
    """The CloudWatch units the catalogue uses (values are CloudWatch's spelling)."""

    COUNT = "Count"
    SECONDS = "Seconds"
    MILLISECONDS = "Milliseconds"
    NONE = "None"


class Dim(StrEnum):
    SERVICE = "service"
    ALIAS = "alias"  # the route alias the caller asked for (OpenAI `model`), once resolved
    TARGET = "target"  # the configured target that served (or was tried for) the request
    STATUS_CLASS = "status_class"
    GUARD_STAGE = "guard_stage"
    GUARD_TYPE = "guard_type"
    QUOTA_REASON = "reason"
    STAGE = "stage"  # a llmops.domain.stages.RequestStage value
    TOKEN_TYPE = "gen_ai.token.type"  # noqa: S105 - a dimension name, not a secret
    DETECTOR = "detector"  # a service guard detector's name (bedrock_guardrail, comprehend)


# Never a dimension: unbounded, or identifying a customer. Tests check alarms and the emitter.
FORBIDDEN_DIMENSIONS = frozenset({"tenant", "tenant_id", "key", "key_id", "api_key", "user", "request_id"})


class StatusClass(StrEnum):
    SUCCESS = "2xx"
    CLIENT_ERROR = "4xx"
    SERVER_ERROR = "5xx"


def status_class(status: int) -> StatusClass:
    if status >= 500:
        return StatusClass.SERVER_ERROR
    if status >= 400:
        return StatusClass.CLIENT_ERROR
    return StatusClass.SUCCESS


class TokenType(StrEnum):
    INPUT = "input"
    OUTPUT = "output"


class GuardStage(StrEnum):
    INPUT = "input"
    OUTPUT = "output"


class GuardType(StrEnum):
    """Finding types grouped into guard families, so the dimension stays bounded."""

    PII = "pii"
    SECRET = "secret"  # noqa: S105 - a category name, not a secret
    PROMPT_INJECTION = "prompt_injection"
    DENIED_TOPIC = "denied_topic"
    DENIED_WORD = "denied_word"
    SYSTEM_PROMPT_LEAK = "system_prompt_leak"
    GROUNDING = "grounding"
    RELEVANCE = "relevance"
    INPUT_TOO_LARGE = "input_too_large"
    OUTPUT_TOO_LARGE = "output_too_large"
    GUARD_BUDGET_EXCEEDED = "guard_budget_exceeded"
    DETECTOR_UNAVAILABLE = "detector_unavailable"
    # the learned layer's categories (llmops.domain.guard.learned), one family each
    PROMPT_ATTACK = "prompt_attack"
    VIOLENCE_WEAPONS = "violence_weapons"
    SELF_HARM = "self_harm"
    SEXUAL = "sexual"
    SEXUAL_MINORS = "sexual_minors"
    HATE_HARASSMENT = "hate_harassment"
    CRIMINAL_INSTRUCTIONS = "criminal_instructions"
    OTHER = "other"


class QuotaReason(StrEnum):
    RATE_LIMIT = "rate_limit_exceeded"
    INSUFFICIENT_QUOTA = "insufficient_quota"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric the code publishes, as the alarms and dashboards know it."""

    name: str
    unit: Unit
    description: str
    # Every dimension combination the metric is published under; each one is its own CloudWatch
    # metric, so alarms must select exactly one of these.
    dimension_sets: tuple[tuple[Dim, ...], ...]
    # True for 0/1 per request: Average is then a rate (e.g. the fallback rate).
    per_request_flag: bool = False

    def has_dimensions(self, names: frozenset[str] | set[str]) -> bool:
        return any(set(dims) == set(names) for dims in self.dimension_sets)


_S = Dim.SERVICE
_REQUEST_SETS: tuple[tuple[Dim, ...], ...] = ((_S,), (_S, Dim.ALIAS), (_S, Dim.TARGET))
_PROVIDER_SETS: tuple[tuple[Dim, ...], ...] = ((_S,), (_S, Dim.TARGET))
_GUARD_SETS: tuple[tuple[Dim, ...], ...] = ((_S,), (_S, Dim.GUARD_STAGE), (_S, Dim.ALIAS), (_S, Dim.TARGET))


def _request_flag(name: str, description: str) -> MetricSpec:
    return MetricSpec(name, Unit.COUNT, description, _REQUEST_SETS, per_request_flag=True)


REQUESTS = MetricSpec("Requests", Unit.COUNT, "Chat completion requests that reached the gateway.", _REQUEST_SETS)
ERRORS = MetricSpec(
    "Errors",
    Unit.COUNT,
    "Requests answered with a 4xx or 5xx, by status class (5xx spends the availability budget).",
    ((_S, Dim.STATUS_CLASS), (_S, Dim.ALIAS, Dim.STATUS_CLASS), (_S, Dim.TARGET, Dim.STATUS_CLASS)),
)
REQUEST_DURATION = MetricSpec(
    "gen_ai.server.request.duration",
    Unit.SECONDS,
    "Gateway request duration, from the handler receiving the request to the audit record.",
    _REQUEST_SETS,
)
TIME_TO_FIRST_TOKEN = MetricSpec(
    "gen_ai.server.time_to_first_token",
    Unit.SECONDS,
    "Streamed requests: time from the handler receiving the request to the first content chunk sent.",
    _REQUEST_SETS,
)
TIME_PER_OUTPUT_TOKEN = MetricSpec(
    "gen_ai.server.time_per_output_token",
    Unit.SECONDS,
    "Streamed requests: mean time per output token after the first ((last - first chunk) / (tokens - 1)).",
    _REQUEST_SETS,
)
OPERATION_DURATION = MetricSpec(
    "gen_ai.client.operation.duration",
    Unit.SECONDS,
    "Duration of one model call (one attempt) to Bedrock or SageMaker.",
    _PROVIDER_SETS,
)
TOKEN_USAGE = MetricSpec(
    "gen_ai.client.token.usage",
    Unit.COUNT,
    "Tokens billed per request, by gen_ai.token.type (input or output).",
    ((_S, Dim.TOKEN_TYPE), (_S, Dim.ALIAS, Dim.TOKEN_TYPE), (_S, Dim.TARGET, Dim.TOKEN_TYPE)),
)
STAGE_DURATION = MetricSpec(
    "StageDuration",
    Unit.MILLISECONDS,
    "Time spent in one request-path stage, by stage (llmops.domain.stages.RequestStage).",
    ((_S, Dim.STAGE),),
)
COST_USD = MetricSpec("CostUSD", Unit.NONE, "Model cost of the request in US dollars (list price).", _REQUEST_SETS)
FALLBACKS = _request_flag("Fallbacks", "1 when the request was served by a fallback target, else 0.")
ROUTING_FAILURES = _request_flag("RoutingFailures", "1 when every target of the alias failed, else 0.")
GUARD_BYPASSES = _request_flag(
    "GuardBypasses", "1 when a completion was returned without an output guard verdict (must stay 0)."
)
CACHE_HITS = _request_flag("CacheHits", "1 when the response came from the response cache.")
CACHE_MISSES = _request_flag("CacheMisses", "1 when the cache was consulted and had no answer.")
PROVIDER_CALLS = MetricSpec("ProviderCalls", Unit.COUNT, "Model calls (attempts, fallbacks included).", _PROVIDER_SETS)
PROVIDER_ERRORS = MetricSpec(
    "ProviderErrors",
    Unit.COUNT,
    "Model calls that failed with a 5xx-class error or a timeout.",
    _PROVIDER_SETS,
)
PROVIDER_THROTTLES = MetricSpec("ProviderThrottles", Unit.COUNT, "Model calls the provider throttled.", _PROVIDER_SETS)
GUARD_BLOCKS = MetricSpec(
    "GuardBlocks",
    Unit.COUNT,
    "Guard verdicts that blocked the prompt or the completion (by type: the types found in it).",
    (*_GUARD_SETS, (_S, Dim.GUARD_STAGE, Dim.GUARD_TYPE)),
)
GUARD_REDACTIONS = MetricSpec(
    "GuardRedactions",
    Unit.COUNT,
    "Guard verdicts that redacted or pseudonymized part of the text.",
    _GUARD_SETS,
)
GUARD_BUDGET_EXCEEDED = MetricSpec(
    "GuardBudgetExceeded",
    Unit.COUNT,
    "Guard verdicts cut short by the per-request guard budget (llmops.domain.guard.budget): each is a "
    "fail-safe block (400 guard_budget_exceeded) of a text the guard could not finish in its time.",
    ((_S,), (_S, Dim.GUARD_STAGE)),
)
GUARD_DETECTOR_FAILURES = MetricSpec(
    "GuardDetectorFailures",
    Unit.COUNT,
    "Calls to a service guard detector (Bedrock Guardrails, Comprehend) that failed or timed out, by "
    "detector: each is a 503 guard_unavailable (fail_mode closed) or a text let through unchecked by it (open).",
    ((_S,), (_S, Dim.DETECTOR), (_S, Dim.GUARD_STAGE)),
)
GUARD_FINDINGS = MetricSpec(
    "GuardFindings",
    Unit.COUNT,
    "Findings reported by the guards, by stage and guard type.",
    ((_S, Dim.GUARD_STAGE, Dim.GUARD_TYPE),),
)
QUOTA_REJECTIONS = MetricSpec(
    "QuotaRejections",
    Unit.COUNT,
    "Requests refused with 429 by a rate limit or an exhausted quota, by reason.",
    ((_S,), (_S, Dim.QUOTA_REASON)),
)
FEEDBACK = MetricSpec("Feedback", Unit.COUNT, "Feedback ratings received.", _REQUEST_SETS)
FEEDBACK_NEGATIVE = MetricSpec(
    "FeedbackNegative",
    Unit.COUNT,
    "1 for a negative rating (thumbs down, 1 or 2 of 5), else 0: Average is the negative rate.",
    _REQUEST_SETS,
    per_request_flag=True,
)
DRIFT_SCORE = MetricSpec(
    "DriftScore",
    Unit.NONE,
    "Model-free input drift of an alias's recent traffic against its reference window, in [0, 1] "
    "(llmops.domain.drift); published by the drift monitor, only when both windows have enough samples.",
    ((_S, Dim.ALIAS),),
)
RESERVATIONS_EXPIRED = MetricSpec(
    "ReservationsExpired",
    Unit.COUNT,
    "Quota reservations the sweeper released because their request never settled them: each is a "
    "gateway invocation that ended without answering (killed at its timeout, out of memory, crashed).",
    ((_S,),),
)

AFTER_RESPONSE_FAILURES = MetricSpec(
    "AfterResponseFailures",
    Unit.COUNT,
    "Pieces of a gateway invocation's after-response work (the settle with its audit record, the "
    "response cache store, config refreshes) that raised or were left undone at the deadline. Each "
    "settle or record the books could not write is already dead-lettered, so one that still counts "
    "here may be lost. Published only when there are any.",
    ((_S,),),
)

CATALOGUE: tuple[MetricSpec, ...] = (
    REQUESTS,
    ERRORS,
    REQUEST_DURATION,
    TIME_TO_FIRST_TOKEN,
    TIME_PER_OUTPUT_TOKEN,
    OPERATION_DURATION,
    TOKEN_USAGE,
    STAGE_DURATION,
    COST_USD,
    FALLBACKS,
    ROUTING_FAILURES,
    GUARD_BYPASSES,
    CACHE_HITS,
    CACHE_MISSES,
    PROVIDER_CALLS,
    PROVIDER_ERRORS,
    PROVIDER_THROTTLES,
    GUARD_BLOCKS,
    GUARD_REDACTIONS,
    GUARD_BUDGET_EXCEEDED,
    GUARD_DETECTOR_FAILURES,
    GUARD_FINDINGS,
    QUOTA_REJECTIONS,
    FEEDBACK,
    FEEDBACK_NEGATIVE,
    DRIFT_SCORE,
    RESERVATIONS_EXPIRED,
    AFTER_RESPONSE_FAILURES,
)

_BY_NAME = {spec.name: spec for spec in CATALOGUE}


def metric_spec(name: str) -> MetricSpec:
    """The catalogue entry for a metric name; KeyError for a metric the gateway does not emit."""
    return _BY_NAME[name]
