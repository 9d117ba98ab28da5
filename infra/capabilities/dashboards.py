"""The three CloudWatch dashboards the seed documents ask for: the dashboard catalogue's
(`llmops.observability.dashboard_catalogue`, which `llmops dashboard --png` draws locally too),
turned into CloudWatch widgets here.

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

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.capabilities.alarms import Alarms
from infra.capabilities.catalogue_metrics import cdk_metric, ratio
from infra.config import GatewayConfig
from llmops.observability import dashboard_catalogue as catalogue
from llmops.observability.alarm_catalogue import MetricQuery

__all__ = ["RECENT_FAILURES_QUERY", "RECENT_FEEDBACK_QUERY", "TOP_ERRORS_QUERY", "Dashboards"]

TOP_ERRORS_QUERY = catalogue.TOP_ERRORS.query
RECENT_FAILURES_QUERY = catalogue.RECENT_FAILURES.query
RECENT_FEEDBACK_QUERY = catalogue.RECENT_FEEDBACK.query


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
        self.config = config
        boards = catalogue.dashboards(config.stage.value, routes, alarms.settings)
        self.executive = self._dashboard("Executive", boards["executive"])
        self.oncall = self._dashboard("OnCall", boards["oncall"])
        self.debug = self._dashboard("Debug", boards["debug"])

    def _dashboard(self, construct_id: str, board: catalogue.Dashboard) -> cloudwatch.Dashboard:
        dashboard = cloudwatch.Dashboard(self, construct_id, dashboard_name=board.name, start=board.start)
        for row in board.rows:
            dashboard.add_widgets(*(self._widget(widget) for widget in row))
        return dashboard

    def _series(self, series: catalogue.Series) -> cloudwatch.IMetric:
        if isinstance(series, MetricQuery):
            return cdk_metric(series)
        period = cdk.Duration.seconds(
            series.ratio.period_s if isinstance(series, catalogue.RatioLine) else _period(series)
        )
        if isinstance(series, catalogue.RatioLine):
            return ratio(
                [cdk_metric(q) for q in series.ratio.numerators],
                [cdk_metric(q) for q in series.ratio.denominators],
                label=series.label,
                period=period,
                key=series.key,
                scale=series.scale,
                complement=series.complement,
            )
        if isinstance(series, catalogue.DecodeRate):
            return cloudwatch.MathExpression(
                expression=f"IF({series.key} > 0, 1 / {series.key})",
                using_metrics={series.key: cdk_metric(series.tpot)},
                label=series.label,
                period=period,
            )
        return cloudwatch.MathExpression(
            expression="FILL(out_tokens, 0) / PERIOD(out_tokens)",
            using_metrics={"out_tokens": cdk_metric(series.tokens)},
            label=series.label,
            period=period,
        )

    def _widget(self, widget: catalogue.Widget) -> cloudwatch.IWidget:
        height = catalogue.HEIGHT
        if isinstance(widget, catalogue.Graph):
            return cloudwatch.GraphWidget(
                title=widget.title,
                left=[self._series(s) for s in widget.left],
                right=[self._series(s) for s in widget.right],
                width=widget.width,
                height=height,
                stacked=widget.stacked,
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=value, label=label) for value, label in widget.annotations
                ],
            )
        if isinstance(widget, catalogue.SingleValue):
            return cloudwatch.SingleValueWidget(
                title=widget.title,
                metrics=[self._series(widget.series)],
                set_period_to_time_range=True,
                width=widget.width,
                height=height,
            )
        if isinstance(widget, catalogue.AlarmStatus):
            gates = [alarm for alarms in self.alarms.canary_gates.values() for alarm in alarms]
            chosen = gates if widget.alarms == "canary-gates" else [a for a in self.alarms.alarms if a not in gates]
            return cloudwatch.AlarmStatusWidget(
                title=widget.title,
                alarms=list(chosen),
                width=widget.width,
                height=height,
                sort_by=cloudwatch.AlarmStatusWidgetSortBy.STATE_UPDATED_TIMESTAMP,
            )
        if isinstance(widget, catalogue.LogTable):
            return cloudwatch.LogQueryWidget(
                title=widget.title,
                log_group_names=self.log_groups,
                query_lines=[widget.query],
                view=cloudwatch.LogQueryVisualizationType.TABLE,
                width=widget.width,
                height=height,
            )
        return self._service_graph(widget)

    def _service_graph(self, widget: catalogue.ServiceGraph) -> cloudwatch.GraphWidget:
        five = cdk.Duration.minutes(5)
        stage = self.api.deployment_stage
        return cloudwatch.GraphWidget(
            title=widget.title,
            left=[
                stage.metric_server_error(period=five, statistic="Sum", label="API 5XX"),
                stage.metric_client_error(period=five, statistic="Sum", label="API 4XX"),
                *(fn.metric_errors(period=five, label=f"{name} errors") for name, fn in sorted(self.functions.items())),
                *(
                    fn.metric_throttles(period=five, label=f"{name} throttles")
                    for name, fn in sorted(self.functions.items())
                ),
            ],
            width=widget.width,
            height=catalogue.HEIGHT,
        )


def _period(series: catalogue.DecodeRate | catalogue.Throughput) -> int:
    return series.tpot.period_s if isinstance(series, catalogue.DecodeRate) else series.tokens.period_s
