"""The three dashboards (executive, on-call, debug) as plain data, from the metric catalogue.

One source for CDK (`infra.capabilities.dashboards` turns each widget into a CloudWatch widget) and
for `llmops dashboard ... --png` (`llmops.cli.dashboard_render` draws the same widgets from the
local metric store). The seed documents ask for:

- executive (30 days): availability against the SLO, cost, top errors, guard and feedback trends.
- on-call (3 hours): alarm states, p99 per alias, time to first token and output tokens per second
  per alias (streamed requests), error rates, failed canaries, guard blocks and bypasses, routing
  failures and fallbacks, provider and quota signals.
- debug (3 hours): per-stage latency, provider latency per target, time to first token and output
  tokens per second per target, tokens, fallbacks, cache, recent failed requests and recent
  feedback (Logs Insights over the gateway's EMF records, which hold ids, statuses and error
  codes, never text).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from llmops.domain.stages import RequestStage
from llmops.observability.alarm_catalogue import AlarmSettings, MetricQuery, Ratio, catalogue_query
from llmops.observability.metrics import (
    CACHE_HITS,
    CACHE_MISSES,
    COST_USD,
    ERRORS,
    FALLBACKS,
    FEEDBACK,
    FEEDBACK_NEGATIVE,
    GUARD_BLOCKS,
    GUARD_BYPASSES,
    GUARD_REDACTIONS,
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
    MetricSpec,
    QuotaReason,
    StatusClass,
    TokenType,
)

__all__ = [
    "DASHBOARDS",
    "RECENT_FAILURES",
    "RECENT_FEEDBACK",
    "TOP_ERRORS",
    "AlarmStatus",
    "Dashboard",
    "DecodeRate",
    "Graph",
    "LogTable",
    "RatioLine",
    "Series",
    "ServiceGraph",
    "SingleValue",
    "Throughput",
    "Widget",
    "dashboards",
]

WIDTH, HALF, THIRD, HEIGHT = 24, 12, 8, 6
_MINUTE, _FIVE, _DAY, _MONTH = 60, 300, 86_400, 30 * 86_400
DASHBOARDS = ("executive", "oncall", "debug")


@dataclass(frozen=True, slots=True)
class RatioLine:
    """`scale` x sum(numerators) / sum(denominators) (or scale x (1 - that)), 0 (or `scale`) when idle;
    `key` prefixes its metric ids, unique within one widget."""

    ratio: Ratio
    scale: float = 1.0
    complement: bool = False
    key: str = "r"

    @property
    def label(self) -> str:
        return self.ratio.label


@dataclass(frozen=True, slots=True)
class DecodeRate:
    """The median stream's output tokens per second: 1 / p50 time per output token (1/x is monotone,
    so this is exactly the p50 of the per-stream rate), no metric of its own."""

    tpot: MetricQuery
    label: str
    key: str


@dataclass(frozen=True, slots=True)
class Throughput:
    """Output tokens per second served, every request (streamed or not): tokens / period."""

    tokens: MetricQuery
    label: str


Series = MetricQuery | RatioLine | DecodeRate | Throughput


@dataclass(frozen=True, slots=True)
class Graph:
    title: str
    left: tuple[Series, ...]
    right: tuple[Series, ...] = ()
    width: int = HALF
    stacked: bool = False
    annotations: tuple[tuple[float, str], ...] = ()  # horizontal lines (value, label) on the left axis


@dataclass(frozen=True, slots=True)
class SingleValue:
    """One number over the dashboard's whole time range."""

    title: str
    series: Series
    width: int = THIRD


@dataclass(frozen=True, slots=True)
class AlarmStatus:
    title: str
    alarms: Literal["paging", "canary-gates"]
    width: int = WIDTH


@dataclass(frozen=True, slots=True)
class LogTable:
    """A Logs Insights table over the gateway's EMF records (`record` = request or feedback)."""

    title: str
    record: Literal["request", "feedback"]
    fields: tuple[str, ...] = ()
    count_by: tuple[str, ...] = ()  # `stats count(*) as requests by ...` instead of listing records
    min_status: int | None = None
    limit: int = 50
    width: int = WIDTH

    @property
    def query(self) -> str:
        where = f'filter record = "{self.record}"' + (
            f" and status >= {self.min_status}" if self.min_status is not None else ""
        )
        if self.count_by:
            counts = f"stats count(*) as requests by {', '.join(self.count_by)}"
            return f"{where} | {counts} | sort requests desc | limit {self.limit}"
        return f"{where} | fields {', '.join(self.fields)} | sort @timestamp desc | limit {self.limit}"


@dataclass(frozen=True, slots=True)
class ServiceGraph:
    """API Gateway 4XX/5XX and each function's errors and throttles: AWS services' own metrics."""

    title: str
    width: int = THIRD


Widget = Graph | SingleValue | AlarmStatus | LogTable | ServiceGraph


@dataclass(frozen=True, slots=True)
class Dashboard:
    key: str
    name: str
    start: str  # CloudWatch's relative start, e.g. -PT3H
    window_s: int
    rows: tuple[tuple[Widget, ...], ...]


TOP_ERRORS = LogTable(
    "Top errors (status, error code)",
    "request",
    count_by=("status", "error_code"),
    min_status=400,
    limit=10,
    width=HALF,
)
RECENT_FAILURES = LogTable(
    "Recent failed requests (5xx)",
    "request",
    fields=("@timestamp", "request_id", "alias", "target", "status", "error_code", "attempts", "duration_ms"),
    min_status=500,
)
RECENT_FEEDBACK = LogTable(
    "Recent feedback", "feedback", fields=("@timestamp", "request_id", "alias", "target", "negative", "label")
)


def _q(
    spec: MetricSpec, statistic: str = "Sum", period: int = _MINUTE, label: str | None = None, **dims: str
) -> MetricQuery:
    return catalogue_query(
        spec, statistic=statistic, period_s=period, label=label, dimensions={Dim(k): v for k, v in dims.items()}
    )


class _Builder:
    def __init__(self, stage: str, routes_document: Mapping[str, object], settings: AlarmSettings) -> None:
        routes = routes_document.get("routes", {})
        targets = routes_document.get("targets", {})
        self.aliases = sorted(routes) if isinstance(routes, Mapping) else []
        self.targets = sorted(targets) if isinstance(targets, Mapping) else []
        self.settings = settings
        self.prefix = f"llmops-{stage}"

    def availability(self, period: int) -> RatioLine:
        ratio = Ratio(
            (_q(ERRORS, period=period, status_class=StatusClass.SERVER_ERROR),),
            (_q(REQUESTS, period=period),),
            label="availability %",
            period_s=period,
        )
        return RatioLine(ratio, scale=100, complement=True, key="availability")

    def error_rate(self, klass: StatusClass, period: int) -> RatioLine:
        ratio = Ratio(
            (_q(ERRORS, period=period, status_class=klass),),
            (_q(REQUESTS, period=period),),
            label=f"{klass.value} %",
            period_s=period,
        )
        return RatioLine(ratio, scale=100, key=f"errors{klass.value[0]}xx")

    def by_alias(self, spec: MetricSpec, statistic: str, period: int, **dims: str) -> tuple[MetricQuery, ...]:
        return tuple(_q(spec, statistic, period, label=alias, **dims, alias=alias) for alias in self.aliases)

    def by_target(self, spec: MetricSpec, statistic: str, period: int) -> tuple[MetricQuery, ...]:
        return tuple(_q(spec, statistic, period, label=target, target=target) for target in self.targets)

    def ttft(self, dim: Dim, names: Sequence[str], period: int) -> tuple[MetricQuery, ...]:
        return tuple(
            _q(TIME_TO_FIRST_TOKEN, stat, period, label=f"{name} {stat}", **{dim.value: name})
            for name in names
            for stat in ("p50", "p99")
        )

    def decode_rate(self, dim: Dim, names: Sequence[str], period: int) -> tuple[DecodeRate, ...]:
        return tuple(
            DecodeRate(
                _q(TIME_PER_OUTPUT_TOKEN, "p50", period, **{dim.value: name}),
                f"{name} tokens/s (p50 stream)",
                f"tpot{i}",
            )
            for i, name in enumerate(names)
        )

    def tokens(self, period: int) -> tuple[MetricQuery, ...]:
        return tuple(
            _q(TOKEN_USAGE, period=period, label=f"{kind.value} tokens", **{Dim.TOKEN_TYPE.value: kind.value})
            for kind in TokenType
        )

    def guard_blocks(self, period: int) -> tuple[MetricQuery, ...]:
        return tuple(
            _q(GUARD_BLOCKS, period=period, label=f"{stage.value} blocks", guard_stage=stage.value)
            for stage in GuardStage
        )

    def executive(self) -> Dashboard:
        day = _DAY
        slo = self.settings.availability_slo * 100
        rows: tuple[tuple[Widget, ...], ...] = (
            (
                SingleValue("Availability (dashboard range)", self.availability(_MONTH)),
                SingleValue("Model spend, USD (dashboard range)", _q(COST_USD, period=_MONTH, label="spend USD")),
                SingleValue("Requests (dashboard range)", _q(REQUESTS, period=_MONTH, label="requests")),
            ),
            (
                Graph("Availability per day (%)", (self.availability(day),), annotations=((slo, "SLO"),)),
                Graph("Model spend per day by alias (USD)", self.by_alias(COST_USD, "Sum", day), stacked=True),
            ),
            (
                TOP_ERRORS,
                Graph(
                    "Errors per day by status class",
                    tuple(
                        _q(ERRORS, period=day, label=klass.value, status_class=klass.value)
                        for klass in (StatusClass.CLIENT_ERROR, StatusClass.SERVER_ERROR)
                    ),
                    stacked=True,
                ),
            ),
            (
                Graph(
                    "Guard trend: blocks and redactions per day",
                    (*self.guard_blocks(day), _q(GUARD_REDACTIONS, period=day, label="redactions")),
                ),
                Graph(
                    "Feedback trend: ratings and negative rate per day",
                    (_q(FEEDBACK, period=day, label="ratings"),),
                    right=(_q(FEEDBACK_NEGATIVE, "Average", day, label="negative rate"),),
                ),
            ),
            (Graph("Tokens per day", self.tokens(day), width=WIDTH, stacked=True),),
        )
        return Dashboard("executive", f"{self.prefix}-executive", "-P30D", _MONTH, rows)

    def oncall(self) -> Dashboard:
        m = _MINUTE
        s = self.settings
        rows: tuple[tuple[Widget, ...], ...] = (
            (AlarmStatus("Alarms", "paging"),),
            (
                Graph(
                    "p99 latency by alias (s)",
                    self.by_alias(REQUEST_DURATION, "p99", m),
                    annotations=((s.latency_p99_s, "alarm"),),
                ),
                Graph(
                    "Error rate (%)",
                    (self.error_rate(StatusClass.SERVER_ERROR, m), self.error_rate(StatusClass.CLIENT_ERROR, m)),
                ),
            ),
            (
                Graph(
                    "Time to first token p50 / p99 by alias (s, streamed)",
                    self.ttft(Dim.ALIAS, self.aliases, m),
                    annotations=((s.ttft_p99_s, "p99 alarm"),),
                ),
                Graph(
                    "Output tokens per second by alias",
                    self.decode_rate(Dim.ALIAS, self.aliases, m),
                    right=(
                        Throughput(
                            _q(TOKEN_USAGE, period=m, **{Dim.TOKEN_TYPE.value: TokenType.OUTPUT.value}),
                            "output tokens/s served (all requests)",
                        ),
                    ),
                ),
            ),
            (AlarmStatus("Canary gates (failed canaries are in ALARM)", "canary-gates"),),
            (
                Graph(
                    "Guard blocks and bypasses",
                    self.guard_blocks(m),
                    right=(_q(GUARD_BYPASSES, period=m, label="bypasses (must be 0)"),),
                ),
                Graph(
                    "Routing failures and fallbacks",
                    (
                        _q(ROUTING_FAILURES, period=m, label="routing failures (all targets failed)"),
                        _q(FALLBACKS, period=m, label="fallbacks"),
                    ),
                ),
            ),
            (
                Graph(
                    "Provider errors and throttles",
                    (
                        _q(PROVIDER_ERRORS, period=m, label="errors"),
                        _q(PROVIDER_THROTTLES, period=m, label="throttles"),
                    ),
                    right=(_q(PROVIDER_CALLS, period=m, label="calls"),),
                    width=THIRD,
                ),
                Graph(
                    "Quota rejections by reason",
                    tuple(_q(QUOTA_REJECTIONS, period=m, label=r.value, reason=r.value) for r in QuotaReason),
                    width=THIRD,
                    stacked=True,
                ),
                ServiceGraph("API Gateway and Lambda"),
            ),
        )
        return Dashboard("oncall", f"{self.prefix}-oncall", "-PT3H", 3 * 3600, rows)

    def debug(self) -> Dashboard:
        m = _MINUTE

        def stage_metrics(statistic: str) -> tuple[MetricQuery, ...]:
            return tuple(_q(STAGE_DURATION, statistic, m, label=st.value, stage=st.value) for st in RequestStage)

        rows: tuple[tuple[Widget, ...], ...] = (
            (
                Graph("Per-stage latency p50 (ms)", stage_metrics("p50"), stacked=True),
                Graph("Per-stage latency p99 (ms)", stage_metrics("p99")),
            ),
            (
                Graph("Model call latency p99 by target (s)", self.by_target(OPERATION_DURATION, "p99", m)),
                Graph("Model call latency p50 by target (s)", self.by_target(OPERATION_DURATION, "p50", m)),
            ),
            (
                Graph("Time to first token p50 / p99 by target (s, streamed)", self.ttft(Dim.TARGET, self.targets, m)),
                Graph("Output tokens per second by target (p50 stream)", self.decode_rate(Dim.TARGET, self.targets, m)),
            ),
            tuple(
                Graph(
                    f"Tokens by alias: {kind.value}",
                    self.by_alias(TOKEN_USAGE, "Sum", m, **{Dim.TOKEN_TYPE.value: kind.value}),
                    stacked=True,
                )
                for kind in TokenType
            ),
            (
                Graph("Fallbacks by alias", self.by_alias(FALLBACKS, "Sum", m), width=THIRD),
                Graph("Model calls by target", self.by_target(PROVIDER_CALLS, "Sum", m), width=THIRD, stacked=True),
                Graph(
                    "Response cache",
                    (_q(CACHE_HITS, period=m, label="hits"), _q(CACHE_MISSES, period=m, label="misses")),
                    width=THIRD,
                    stacked=True,
                ),
            ),
            (
                Graph(
                    "Negative feedback rate by target", self.by_target(FEEDBACK_NEGATIVE, "Average", _FIVE), width=WIDTH
                ),
            ),
            (RECENT_FAILURES,),
            (RECENT_FEEDBACK,),
        )
        return Dashboard("debug", f"{self.prefix}-debug", "-PT3H", 3 * 3600, rows)


def dashboards(stage: str, routes_document: Mapping[str, object], settings: AlarmSettings) -> dict[str, Dashboard]:
    """The executive, on-call and debug dashboards for a route document, by key."""
    builder = _Builder(stage, routes_document, settings)
    return {"executive": builder.executive(), "oncall": builder.oncall(), "debug": builder.debug()}
