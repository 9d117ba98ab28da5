"""CloudWatch metrics for alarms and dashboards: gateway metrics from the catalogue in
`llmops.observability.metrics` (so only a metric and dimension set the gateway emits can be
selected; none selects a tenant) and ratios of metrics that read 0 instead of NaN when idle."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch

from llmops.observability.alarm_catalogue import Expression, GatedRate, MetricQuery, Ratio, expression_metrics
from llmops.observability.metrics import GATEWAY_SERVICE, NAMESPACE, Dim, MetricSpec

__all__ = ["catalogue_metric", "cdk_metric", "ratio"]


def catalogue_metric(
    spec: MetricSpec,
    *,
    statistic: str = "Sum",
    period: cdk.Duration | None = None,
    label: str | None = None,
    dimensions: Mapping[Dim, str] | None = None,
) -> cloudwatch.Metric:
    """A gateway metric from the catalogue; refuses a dimension set the gateway never publishes."""
    dims = {Dim.SERVICE: GATEWAY_SERVICE, **(dimensions or {})}
    if not spec.has_dimensions({d.value for d in dims}):
        raise ValueError(f"{spec.name} is not published with dimensions {sorted(d.value for d in dims)}")
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=spec.name,
        dimensions_map={d.value: v for d, v in dims.items()},
        statistic=statistic,
        period=period or cdk.Duration.minutes(5),
        label=label,
    )


def ratio(
    numerators: Sequence[cloudwatch.IMetric],
    denominators: Sequence[cloudwatch.IMetric],
    *,
    label: str,
    period: cdk.Duration,
    key: str = "r",
    scale: float = 1.0,
    complement: bool = False,
) -> cloudwatch.MathExpression:
    """scale x sum(numerators) / sum(denominators) (or scale x (1 - that) with `complement`).

    A period without traffic yields 0 (or `scale` for the complement) instead of NaN. `key` prefixes
    the metric ids, which must be unique across every expression of one graph or alarm.
    """
    using: dict[str, cloudwatch.IMetric] = {}
    for i, metric in enumerate(numerators):
        using[f"{key}_n{i}"] = metric
    for i, metric in enumerate(denominators):
        using[f"{key}_d{i}"] = metric
    num = " + ".join(f"FILL({key}_n{i}, 0)" for i in range(len(numerators)))
    den = " + ".join(f"FILL({key}_d{i}, 0)" for i in range(len(denominators)))
    value = f"({num}) / ({den})"
    if complement:
        value = f"1 - {value}"
    idle = scale if complement else 0
    return cloudwatch.MathExpression(
        expression=f"IF(({den}) > 0, {scale:g} * ({value}), {idle:g})",
        using_metrics=using,
        label=label,
        period=period,
    )


def _query_metric(query: MetricQuery) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=query.namespace,
        metric_name=query.metric,
        dimensions_map=query.dimension_map,
        statistic=query.statistic,
        period=cdk.Duration.seconds(query.period_s),
        label=query.label,
    )


def cdk_metric(expression: Expression) -> cloudwatch.IMetric:
    """The CloudWatch metric or math expression of an alarm catalogue expression."""
    if isinstance(expression, MetricQuery):
        return _query_metric(expression)
    period = cdk.Duration.seconds(expression.period_s)
    if isinstance(expression, Ratio):
        return ratio(
            [_query_metric(q) for q in expression.numerators],
            [_query_metric(q) for q in expression.denominators],
            label=expression.label,
            period=period,
        )
    if isinstance(expression, GatedRate):
        rate, count = expression_metrics(expression)
        return cloudwatch.MathExpression(
            expression=f"IF(FILL(n, 0) >= {expression.min_count}, FILL(r, 0), 0)",
            using_metrics={"r": _query_metric(rate), "n": _query_metric(count)},
            label=expression.label,
            period=period,
        )
    raise TypeError(f"not an alarm catalogue expression: {expression!r}")
