"""Draws a dashboard of the dashboard catalogue (`llmops.observability.dashboard_catalogue`, the one
CDK deploys) from the local metric store, as a PNG (matplotlib, headless).

Each widget is drawn where CloudWatch puts it (24 columns, rows in order). What differs locally:

- **Time.** The deployed dashboards show 30 days or 3 hours in 1-minute or 1-day periods; a local
  stack has minutes of data, so every graph spans the store's data (or `window_s`) in about 60
  equal periods, each series with its own statistic (Sum, Average, pNN), ratios and rates computed
  as CloudWatch's metric math does (`llmops.local.alarm_evaluation`).
- **Alarm status** comes from the emulated CloudWatch when the stack is running.
- **Logs Insights tables** run their query's filter, fields and counts over the EMF records, which
  are the gateway's log lines locally too.
- **API Gateway and Lambda** metrics are AWS's own: not emulated, the widget says so.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless

import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

from llmops.local.alarm_evaluation import evaluation_times, expression_values
from llmops.local.metric_store import MetricKey, MetricStore
from llmops.observability import dashboard_catalogue as catalogue
from llmops.observability.alarm_catalogue import MetricQuery

__all__ = ["render_dashboard"]

_POINTS = 60
_ROW_INCHES = 2.9
_STATE_COLOURS = {"ALARM": "#d62728", "OK": "#2ca02c", "INSUFFICIENT_DATA": "#b0b0b0"}


def _values(store: MetricStore, series: catalogue.Series, periods: Sequence[tuple[float, float]]) -> list[float | None]:
    if isinstance(series, MetricQuery):
        return expression_values(store, series, periods)
    if isinstance(series, catalogue.RatioLine):
        raw = expression_values(store, series.ratio, periods)
        denominators = [
            sum(
                sum(store.values(MetricKey.of(q.namespace, q.metric, q.dimensions), start, end))
                for q in series.ratio.denominators
            )
            for start, end in periods
        ]
        out: list[float | None] = []
        for value, den in zip(raw, denominators, strict=True):
            if value is None:
                out.append(None)
            elif den == 0:  # idle: IF(den > 0, ..., idle) reads 0, or `scale` for a complement
                out.append(series.scale if series.complement else 0.0)
            else:
                out.append(series.scale * (1 - value if series.complement else value))
        return out
    if isinstance(series, catalogue.DecodeRate):
        tpot = expression_values(store, series.tpot, periods)
        return [1 / v if v else None for v in tpot]
    tokens = expression_values(store, series.tokens, periods)
    return [
        (v or 0.0) / (end - start) if any(t is not None for t in tokens) else None
        for v, (start, end) in zip(tokens, periods, strict=True)
    ]


def _label(series: catalogue.Series) -> str:
    if isinstance(series, MetricQuery):
        return series.label or series.metric
    return series.label


def _graph(
    ax: Any, widget: catalogue.Graph, store: MetricStore, periods: Sequence[tuple[float, float]], t0: float
) -> None:
    xs = [(end - t0) for _, end in periods]
    drew = False
    for side, group in (("left", widget.left), ("right", widget.right)):
        if not group:
            continue
        target = ax if side == "left" else ax.twinx()
        for series in group:
            ys = _values(store, series, periods)
            if all(v is None for v in ys):
                continue
            drew = True
            target.plot(
                xs,
                [math.nan if v is None else v for v in ys],
                label=_label(series),
                linewidth=1.2,
                linestyle="-" if side == "left" else "--",
            )
        if side == "right" and drew:
            target.tick_params(labelsize=6)
    for value, text in widget.annotations:
        ax.axhline(value, color="#d62728", linewidth=0.8, linestyle=":")
        ax.annotate(text, (xs[0] if xs else 0, value), fontsize=6, color="#d62728")
    if drew:
        handles, labels = [], []
        for axis in ax.figure.axes:
            if axis is ax or axis.get_shared_x_axes().joined(ax, axis):
                h, lab = axis.get_legend_handles_labels()
                handles += h
                labels += lab
        ax.legend(handles[:8], labels[:8], fontsize=5, loc="upper left")
    else:
        ax.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=ax.transAxes, fontsize=8, color="grey")
    if xs:
        ax.set_xlim(0, xs[-1])  # every graph on the same time axis, as on a CloudWatch dashboard
    ax.tick_params(labelsize=6)
    ax.grid(alpha=0.3)


def _single(ax: Any, widget: catalogue.SingleValue, store: MetricStore, span: tuple[float, float]) -> None:
    (value,) = _values(store, widget.series, [span])
    text = "-" if value is None else f"{value:,.4g}"
    ax.text(0.5, 0.45, text, ha="center", va="center", fontsize=22, transform=ax.transAxes)
    ax.set_axis_off()


def _alarm_status(ax: Any, widget: catalogue.AlarmStatus, alarms: Mapping[str, str] | None) -> None:
    ax.set_axis_off()
    if alarms is None:
        ax.text(0.5, 0.5, "the local stack is not running: no alarm states", ha="center", va="center", fontsize=8)
        return
    gates = widget.alarms == "canary-gates"
    chosen = sorted(
        ((name, state) for name, state in alarms.items() if ("-canary-" in name) == gates),
        key=lambda item: (item[1] != "ALARM", item[0]),
    )
    columns = 4
    for i, (name, state) in enumerate(chosen[:48]):
        x, y = (i % columns) / columns, 1 - (i // columns + 1) / 13
        ax.add_patch(
            Rectangle(
                (x, y),
                1 / columns - 0.005,
                1 / 13 - 0.01,
                color=_STATE_COLOURS.get(state, "grey"),
                transform=ax.transAxes,
            )
        )
        ax.text(
            x + 0.004,
            y + 0.02,
            name.removeprefix("llmops-local-")[:52],
            fontsize=5,
            transform=ax.transAxes,
            color="white",
        )
    if len(chosen) > 48:
        ax.text(1, 0, f"+{len(chosen) - 48} more", ha="right", fontsize=6, transform=ax.transAxes)


def _log_table(ax: Any, widget: catalogue.LogTable, store: MetricStore) -> None:
    ax.set_axis_off()
    rows = [
        r
        for r in store.records
        if r.get("record") == widget.record
        and (widget.min_status is None or int(r.get("status", 0)) >= widget.min_status)
    ]
    if widget.count_by:
        counts = Counter(tuple(str(r.get(f, "")) for f in widget.count_by) for r in rows)
        header = [*widget.count_by, "requests"]
        body = [[*key, str(n)] for key, n in counts.most_common(widget.limit)]
    else:
        header = list(widget.fields)

        def cell(record: Mapping[str, Any], name: str) -> str:
            if name == "@timestamp":
                millis = record.get("_aws", {}).get("Timestamp", 0)
                return datetime.fromtimestamp(millis / 1000, UTC).strftime("%H:%M:%S")
            return str(record.get(name, ""))

        latest = sorted(rows, key=lambda r: r.get("_aws", {}).get("Timestamp", 0), reverse=True)[:8]
        body = [[cell(r, f)[:24] for f in header] for r in latest]
    if not body:
        ax.text(0.5, 0.5, "no matching records", ha="center", va="center", fontsize=8, color="grey")
        return
    table = ax.table(cellText=body[:8], colLabels=header, loc="upper center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(5.5)
    table.scale(1, 0.9)


def render_dashboard(
    path: Path,
    board: catalogue.Dashboard,
    store: MetricStore,
    *,
    alarms: Mapping[str, str] | None,
    now: float,
    window_s: float | None = None,
) -> Path:
    """Draws `board` from `store` into `path`; `alarms` maps alarm names to states (None: unknown)."""
    span = store.span()
    start = now - window_s if window_s else (span[0] if span else now - 60)
    period = max(1.0, math.ceil((now - start) / _POINTS))
    periods = evaluation_times(now + period, period, _POINTS)
    periods = [(a, b) for a, b in periods if b > start]
    whole = (start, now + 1)
    fig = plt.figure(figsize=(18, _ROW_INCHES * len(board.rows) + 0.6))
    grid = fig.add_gridspec(len(board.rows), catalogue.WIDTH, hspace=0.55, wspace=2.5)
    for row_index, row in enumerate(board.rows):
        column = 0
        for widget in row:
            ax = fig.add_subplot(grid[row_index, column : column + widget.width])
            column += widget.width
            ax.set_title(widget.title, fontsize=8, loc="left")
            if isinstance(widget, catalogue.Graph):
                _graph(ax, widget, store, periods, start)
            elif isinstance(widget, catalogue.SingleValue):
                _single(ax, widget, store, whole)
            elif isinstance(widget, catalogue.AlarmStatus):
                _alarm_status(ax, widget, alarms)
            elif isinstance(widget, catalogue.LogTable):
                _log_table(ax, widget, store)
            else:
                ax.set_axis_off()
                ax.text(
                    0.5,
                    0.5,
                    "AWS service metrics (API Gateway, Lambda): not emulated locally",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="grey",
                    wrap=True,
                )
    started = datetime.fromtimestamp(start, UTC).strftime("%H:%M:%S")
    fig.suptitle(
        f"{board.name} (local): {started} to now, {period:g} s periods (deployed: {board.start} range)",
        fontsize=11,
        x=0.01,
        ha="left",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
