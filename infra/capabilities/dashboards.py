"""The three CloudWatch dashboards the seed documents ask for, built from the metric catalogue.

- executive (30 days): availability against the SLO, cost, top errors, guard and feedback trends.
- on-call (3 hours): alarm states, p99 per alias, time to first token and output tokens per second
  per alias (streamed requests), error rates, failed canaries, guard blocks and bypasses, routing
  failures and fallbacks, provider and quota signals.
- debug (3 hours): per-stage latency, provider latency per target, time to first token and output
  tokens per second per target, tokens, fallbacks, cache,
  recent failed requests and recent feedback (Logs Insights over the gateway's EMF records,
  which hold ids, statuses and error codes, never text).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.capabilities.alarms import Alarms, catalogue_metric, ratio
from infra.config import GatewayConfig
from llmops.domain.stages import RequestStage
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

__all__ = ["RECENT_FAILURES_QUERY", "RECENT_FEEDBACK_QUERY", "TOP_ERRORS_QUERY", "Dashboards"]

_WIDTH = 24
_HALF = 12
_THIRD = 8
_HEIGHT = 6

TOP_ERRORS_QUERY = (
    'filter record = "request" and status >= 400'
    " | stats count(*) as requests by status, error_code"
    " | sort requests desc | limit 10"
)
RECENT_FAILURES_QUERY = (
    'filter record = "request" and status >= 500'
    " | fields @timestamp, request_id, alias, target, status, error_code, attempts, duration_ms"
    " | sort @timestamp desc | limit 50"
)
RECENT_FEEDBACK_QUERY = (
    'filter record = "feedback"'
    " | fields @timestamp, request_id, alias, target, negative, label"
    " | sort @timestamp desc | limit 50"
)


class Dashboards(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: GatewayConfig,
        alarms: Alarms,
        api: apigw.RestApi,
        functions: Mapping[str, lambda_.IFunction],
        gateway_logs: logs.ILogGroup,
        routes: Mapping[str, Any],
    ) -> None:
        super().__init__(scope, construct_id)
        self.aliases = sorted(routes.get("routes", {}))
        self.targets = sorted(routes.get("targets", {}))
        self.alarms = alarms
        self.api = api
        self.functions = dict(functions)
        self.log_groups = [gateway_logs.log_group_name]
        prefix = f"llmops-{config.stage.value}"
        self.executive = self._dashboard("Executive", f"{prefix}-executive", "-P30D", self._executive_widgets())
        self.oncall = self._dashboard("OnCall", f"{prefix}-oncall", "-PT3H", self._oncall_widgets())
        self.debug = self._dashboard("Debug", f"{prefix}-debug", "-PT3H", self._debug_widgets())

    def _dashboard(
        self, construct_id: str, name: str, start: str, rows: Sequence[Sequence[cloudwatch.IWidget]]
    ) -> cloudwatch.Dashboard:
        dashboard = cloudwatch.Dashboard(self, construct_id, dashboard_name=name, start=start)
        for row in rows:
            dashboard.add_widgets(*row)
        return dashboard

    # --- shared pieces ----------------------------------------------------------------------------

    def _availability(self, period: cdk.Duration) -> cloudwatch.MathExpression:
        return ratio(
            [catalogue_metric(ERRORS, period=period, dimensions={Dim.STATUS_CLASS: StatusClass.SERVER_ERROR})],
            [catalogue_metric(REQUESTS, period=period)],
            label="availability %",
            period=period,
            key="availability",
            scale=100,
            complement=True,
        )

    def _error_rate(self, klass: StatusClass, period: cdk.Duration) -> cloudwatch.MathExpression:
        return ratio(
            [catalogue_metric(ERRORS, period=period, dimensions={Dim.STATUS_CLASS: klass})],
            [catalogue_metric(REQUESTS, period=period)],
            label=f"{klass.value} %",
            period=period,
            key=f"errors{klass.value[0]}xx",
            scale=100,
        )

    def _by_alias(
        self, spec: MetricSpec, statistic: str, period: cdk.Duration, dimensions: Mapping[Dim, str] | None = None
    ) -> list[cloudwatch.IMetric]:
        return [
            catalogue_metric(
                spec,
                statistic=statistic,
                period=period,
                label=alias,
                dimensions={**(dimensions or {}), Dim.ALIAS: alias},
            )
            for alias in self.aliases
        ]

    def _by_target(self, spec: MetricSpec, statistic: str, period: cdk.Duration) -> list[cloudwatch.IMetric]:
        return [
            catalogue_metric(spec, statistic=statistic, period=period, label=target, dimensions={Dim.TARGET: target})
            for target in self.targets
        ]

    def _ttft(self, dim: Dim, names: Sequence[str], period: cdk.Duration) -> list[cloudwatch.IMetric]:
        """p50 and p99 time to first token (streamed requests) per alias or target."""
        return [
            catalogue_metric(
                TIME_TO_FIRST_TOKEN, statistic=stat, period=period, label=f"{name} {stat}", dimensions={dim: name}
            )
            for name in names
            for stat in ("p50", "p99")
        ]

    def _decode_rate(self, dim: Dim, names: Sequence[str], period: cdk.Duration) -> list[cloudwatch.IMetric]:
        """The median stream's output tokens per second per alias or target: 1 / p50 time per output
        token (1/x is monotone, so this is exactly the p50 of the per-stream rate) - no metric of its own."""
        return [
            cloudwatch.MathExpression(
                expression=f"IF(tpot{i} > 0, 1 / tpot{i})",
                using_metrics={
                    f"tpot{i}": catalogue_metric(
                        TIME_PER_OUTPUT_TOKEN, statistic="p50", period=period, dimensions={dim: name}
                    )
                },
                label=f"{name} tokens/s (p50 stream)",
                period=period,
            )
            for i, name in enumerate(names)
        ]

    def _output_throughput(self, period: cdk.Duration) -> cloudwatch.MathExpression:
        """Output tokens per second the gateway served, every request (streamed or not)."""
        return cloudwatch.MathExpression(
            expression="FILL(out_tokens, 0) / PERIOD(out_tokens)",
            using_metrics={
                "out_tokens": catalogue_metric(
                    TOKEN_USAGE, period=period, dimensions={Dim.TOKEN_TYPE: TokenType.OUTPUT}
                )
            },
            label="output tokens/s served (all requests)",
            period=period,
        )

    def _tokens(self, period: cdk.Duration) -> list[cloudwatch.IMetric]:
        return [
            catalogue_metric(
                TOKEN_USAGE, period=period, label=f"{kind.value} tokens", dimensions={Dim.TOKEN_TYPE: kind}
            )
            for kind in TokenType
        ]

    def _guard_blocks(self, period: cdk.Duration) -> list[cloudwatch.IMetric]:
        return [
            catalogue_metric(
                GUARD_BLOCKS, period=period, label=f"{stage.value} blocks", dimensions={Dim.GUARD_STAGE: stage}
            )
            for stage in GuardStage
        ]

    def _graph(
        self,
        title: str,
        left: Sequence[cloudwatch.IMetric],
        *,
        width: int = _HALF,
        right: Sequence[cloudwatch.IMetric] = (),
        stacked: bool = False,
        annotations: Sequence[cloudwatch.HorizontalAnnotation] = (),
    ) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(
            title=title,
            left=list(left),
            right=list(right),
            width=width,
            height=_HEIGHT,
            stacked=stacked,
            left_annotations=list(annotations),
        )

    def _logs(self, title: str, query: str, width: int = _WIDTH) -> cloudwatch.LogQueryWidget:
        return cloudwatch.LogQueryWidget(
            title=title,
            log_group_names=self.log_groups,
            query_lines=[query],
            view=cloudwatch.LogQueryVisualizationType.TABLE,
            width=width,
            height=_HEIGHT,
        )

    # --- executive --------------------------------------------------------------------------------

    def _executive_widgets(self) -> list[list[cloudwatch.IWidget]]:
        day = cdk.Duration.days(1)
        slo = self.alarms.settings.availability_slo * 100
        return [
            [
                cloudwatch.SingleValueWidget(
                    title="Availability (dashboard range)",
                    metrics=[self._availability(cdk.Duration.days(30))],
                    set_period_to_time_range=True,
                    width=_THIRD,
                    height=_HEIGHT,
                ),
                cloudwatch.SingleValueWidget(
                    title="Model spend, USD (dashboard range)",
                    metrics=[catalogue_metric(COST_USD, period=cdk.Duration.days(30), label="spend USD")],
                    set_period_to_time_range=True,
                    width=_THIRD,
                    height=_HEIGHT,
                ),
                cloudwatch.SingleValueWidget(
                    title="Requests (dashboard range)",
                    metrics=[catalogue_metric(REQUESTS, period=cdk.Duration.days(30), label="requests")],
                    set_period_to_time_range=True,
                    width=_THIRD,
                    height=_HEIGHT,
                ),
            ],
            [
                self._graph(
                    "Availability per day (%)",
                    [self._availability(day)],
                    annotations=[cloudwatch.HorizontalAnnotation(value=slo, label="SLO")],
                ),
                self._graph("Model spend per day by alias (USD)", self._by_alias(COST_USD, "Sum", day), stacked=True),
            ],
            [
                self._logs("Top errors (status, error code)", TOP_ERRORS_QUERY, width=_HALF),
                self._graph(
                    "Errors per day by status class",
                    [
                        catalogue_metric(ERRORS, period=day, label=klass.value, dimensions={Dim.STATUS_CLASS: klass})
                        for klass in (StatusClass.CLIENT_ERROR, StatusClass.SERVER_ERROR)
                    ],
                    stacked=True,
                ),
            ],
            [
                self._graph(
                    "Guard trend: blocks and redactions per day",
                    [*self._guard_blocks(day), catalogue_metric(GUARD_REDACTIONS, period=day, label="redactions")],
                ),
                self._graph(
                    "Feedback trend: ratings and negative rate per day",
                    [catalogue_metric(FEEDBACK, period=day, label="ratings")],
                    right=[catalogue_metric(FEEDBACK_NEGATIVE, statistic="Average", period=day, label="negative rate")],
                ),
            ],
            [self._graph("Tokens per day", self._tokens(day), width=_WIDTH, stacked=True)],
        ]

    # --- on-call ----------------------------------------------------------------------------------

    def _oncall_widgets(self) -> list[list[cloudwatch.IWidget]]:
        minute = cdk.Duration.minutes(1)
        five = cdk.Duration.minutes(5)
        gates = [alarm for alarms in self.alarms.canary_gates.values() for alarm in alarms]
        paging = [alarm for alarm in self.alarms.alarms if alarm not in gates]
        stage = self.api.deployment_stage
        return [
            [
                cloudwatch.AlarmStatusWidget(
                    title="Alarms",
                    alarms=paging,
                    width=_WIDTH,
                    height=_HEIGHT,
                    sort_by=cloudwatch.AlarmStatusWidgetSortBy.STATE_UPDATED_TIMESTAMP,
                )
            ],
            [
                self._graph(
                    "p99 latency by alias (s)",
                    self._by_alias(REQUEST_DURATION, "p99", minute),
                    annotations=[
                        cloudwatch.HorizontalAnnotation(value=self.alarms.settings.latency_p99_s, label="alarm")
                    ],
                ),
                self._graph(
                    "Error rate (%)",
                    [
                        self._error_rate(StatusClass.SERVER_ERROR, minute),
                        self._error_rate(StatusClass.CLIENT_ERROR, minute),
                    ],
                ),
            ],
            [
                self._graph(
                    "Time to first token p50 / p99 by alias (s, streamed)",
                    self._ttft(Dim.ALIAS, self.aliases, minute),
                    annotations=[
                        cloudwatch.HorizontalAnnotation(value=self.alarms.settings.ttft_p99_s, label="p99 alarm")
                    ],
                ),
                self._graph(
                    "Output tokens per second by alias",
                    self._decode_rate(Dim.ALIAS, self.aliases, minute),
                    right=[self._output_throughput(minute)],
                ),
            ],
            [
                cloudwatch.AlarmStatusWidget(
                    title="Canary gates (failed canaries are in ALARM)",
                    alarms=list(gates),
                    width=_WIDTH,
                    height=_HEIGHT,
                    sort_by=cloudwatch.AlarmStatusWidgetSortBy.STATE_UPDATED_TIMESTAMP,
                )
            ],
            [
                self._graph(
                    "Guard blocks and bypasses",
                    self._guard_blocks(minute),
                    right=[catalogue_metric(GUARD_BYPASSES, period=minute, label="bypasses (must be 0)")],
                ),
                self._graph(
                    "Routing failures and fallbacks",
                    [
                        catalogue_metric(
                            ROUTING_FAILURES, period=minute, label="routing failures (all targets failed)"
                        ),
                        catalogue_metric(FALLBACKS, period=minute, label="fallbacks"),
                    ],
                ),
            ],
            [
                self._graph(
                    "Provider errors and throttles",
                    [
                        catalogue_metric(PROVIDER_ERRORS, period=minute, label="errors"),
                        catalogue_metric(PROVIDER_THROTTLES, period=minute, label="throttles"),
                    ],
                    right=[catalogue_metric(PROVIDER_CALLS, period=minute, label="calls")],
                    width=_THIRD,
                ),
                self._graph(
                    "Quota rejections by reason",
                    [
                        catalogue_metric(
                            QUOTA_REJECTIONS, period=minute, label=reason.value, dimensions={Dim.QUOTA_REASON: reason}
                        )
                        for reason in QuotaReason
                    ],
                    width=_THIRD,
                    stacked=True,
                ),
                self._graph(
                    "API Gateway and Lambda",
                    [
                        stage.metric_server_error(period=five, statistic="Sum", label="API 5XX"),
                        stage.metric_client_error(period=five, statistic="Sum", label="API 4XX"),
                        *(
                            fn.metric_errors(period=five, label=f"{name} errors")
                            for name, fn in sorted(self.functions.items())
                        ),
                        *(
                            fn.metric_throttles(period=five, label=f"{name} throttles")
                            for name, fn in sorted(self.functions.items())
                        ),
                    ],
                    width=_THIRD,
                ),
            ],
        ]

    # --- debug ------------------------------------------------------------------------------------

    def _debug_widgets(self) -> list[list[cloudwatch.IWidget]]:
        minute = cdk.Duration.minutes(1)
        stages = list(RequestStage)

        def stage_metrics(statistic: str) -> list[cloudwatch.IMetric]:
            return [
                catalogue_metric(
                    STAGE_DURATION, statistic=statistic, period=minute, label=s.value, dimensions={Dim.STAGE: s}
                )
                for s in stages
            ]

        return [
            [
                self._graph("Per-stage latency p50 (ms)", stage_metrics("p50"), stacked=True),
                self._graph("Per-stage latency p99 (ms)", stage_metrics("p99")),
            ],
            [
                self._graph("Model call latency p99 by target (s)", self._by_target(OPERATION_DURATION, "p99", minute)),
                self._graph("Model call latency p50 by target (s)", self._by_target(OPERATION_DURATION, "p50", minute)),
            ],
            [
                self._graph(
                    "Time to first token p50 / p99 by target (s, streamed)",
                    self._ttft(Dim.TARGET, self.targets, minute),
                ),
                self._graph(
                    "Output tokens per second by target (p50 stream)",
                    self._decode_rate(Dim.TARGET, self.targets, minute),
                ),
            ],
            [
                self._graph(
                    f"Tokens by alias: {kind.value}",
                    self._by_alias(TOKEN_USAGE, "Sum", minute, {Dim.TOKEN_TYPE: kind}),
                    stacked=True,
                )
                for kind in TokenType
            ],
            [
                self._graph("Fallbacks by alias", self._by_alias(FALLBACKS, "Sum", minute), width=_THIRD),
                self._graph(
                    "Model calls by target", self._by_target(PROVIDER_CALLS, "Sum", minute), width=_THIRD, stacked=True
                ),
                self._graph(
                    "Response cache",
                    [
                        catalogue_metric(CACHE_HITS, period=minute, label="hits"),
                        catalogue_metric(CACHE_MISSES, period=minute, label="misses"),
                    ],
                    width=_THIRD,
                    stacked=True,
                ),
            ],
            [
                self._graph(
                    "Negative feedback rate by target",
                    self._by_target(FEEDBACK_NEGATIVE, "Average", cdk.Duration.minutes(5)),
                    width=_WIDTH,
                )
            ],
            [self._logs("Recent failed requests (5xx)", RECENT_FAILURES_QUERY)],
            [self._logs("Recent feedback", RECENT_FEEDBACK_QUERY)],
        ]
