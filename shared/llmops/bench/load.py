"""Sustained load on the local stack with locust (headless, loopback, bounded in time).

Latency percentiles over time, the error count (only intended 429s from a deliberately rate-limited
key are allowed) and the server process's resident memory sampled through the run, with a
least-squares trend line to show whether it grows.
"""

from __future__ import annotations

import csv
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from llmops.bench.context import BenchContext
from llmops.bench.loadgen import HttpTarget, run_closed_loop
from llmops.bench.plots import time_series
from llmops.bench.processes import ManagedProcess, rss_bytes
from llmops.bench.report import Figure, Section, TargetCheck, format_number, markdown_table
from llmops.bench.stacks import clean_environment, create_key, start_local_stack
from llmops.bench.stats import linear_trend
from llmops.bench.workload import INTENDED_429_FAILURE, chat_request_body
from llmops.config.tables import TABLES
from llmops.local.naming import LOCAL_REGION, local_table_name

__all__ = ["KEY", "TITLE", "parse_failures", "parse_history", "run"]

KEY = "load"
TITLE = "Sustained load (locust) and server memory"
LIMITED_RPM = 10
# Not imported: importing locust monkey-patches the whole process for gevent.
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
_SAMPLE_EVERY_S = 0.5
_MB = 1024 * 1024


@dataclass(slots=True)
class RssSampler:
    pid: int
    samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, bytes)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _t0: float = 0.0

    def start(self) -> RssSampler:
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            rss = rss_bytes(self.pid)
            if rss is not None:
                self.samples.append((time.monotonic() - self._t0, rss))
            self._stop.wait(_SAMPLE_EVERY_S)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "", "N/A") else None
    except ValueError:
        return None


def parse_history(path: Path, name: str = "chat") -> list[dict[str, float]]:
    """Rows of locust's _stats_history.csv for one request name: time, users, rps, percentiles."""
    rows: list[dict[str, float]] = []
    if not path.is_file():
        return rows
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("Name") != name:
                continue
            parsed = {
                "timestamp": _number(row.get("Timestamp")),
                "rps": _number(row.get("Requests/s")),
                "p50": _number(row.get("50%")),
                "p95": _number(row.get("95%")),
                "p99": _number(row.get("99%")),
                "requests": _number(row.get("Total Request Count")),
                "failures": _number(row.get("Total Failure Count")),
            }
            if parsed["timestamp"] is None or parsed["p50"] is None:
                continue
            rows.append({k: v for k, v in parsed.items() if v is not None})
    return rows


def parse_failures(path: Path) -> list[dict[str, Any]]:
    """Rows of locust's _failures.csv: request name, error text and occurrences."""
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return [
            {
                "name": row.get("Name", ""),
                "error": row.get("Error", ""),
                "occurrences": int(row.get("Occurrences") or 0),
            }
            for row in csv.DictReader(handle)
        ]


def _parse_stats(path: Path) -> dict[str, dict[str, float | None]]:
    if not path.is_file():
        return {}
    out: dict[str, dict[str, float | None]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            out[row.get("Name", "")] = {
                "requests": _number(row.get("Request Count")),
                "failures": _number(row.get("Failure Count")),
                "rps": _number(row.get("Requests/s")),
                "p50": _number(row.get("50%")),
                "p90": _number(row.get("90%")),
                "p99": _number(row.get("99%")),
                "max": _number(row.get("Max Response Time")),
            }
    return out


def _moto_items(endpoint_url: str) -> int | None:
    """Items stored in all of the stack's tables (moto keeps them in the server's memory)."""
    try:
        client: Any = boto3.client(  # type: ignore[call-overload]
            "dynamodb",
            region_name=LOCAL_REGION,
            endpoint_url=endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto accepts any credentials
        )
        names = [local_table_name(spec.logical_name) for spec in TABLES]
        return sum(int(client.describe_table(TableName=name)["Table"].get("ItemCount", 0)) for name in names)
    except (BotoCoreError, ClientError):
        return None


def _run_locust(ctx: BenchContext, work: Path, host: str, key: str, limited_key: str) -> Path:
    profile = ctx.profile
    prefix = work / "locust"
    users = profile.load_users + 1  # + the one rate-limited user
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--users",
        str(users),
        "--spawn-rate",
        str(users),
        "--run-time",
        f"{int(profile.load_seconds)}s",
        "--host",
        host,
        "--csv",
        str(prefix),
        "--csv-full-history",
        "--only-summary",
        "--exit-code-on-error",
        "0",
        "--stop-timeout",
        "5",
        "--loglevel",
        "WARNING",
    ]
    env = clean_environment(
        {
            "LLMOPS_BENCH_KEY": key,
            "LLMOPS_BENCH_LIMITED_KEY": limited_key,
            "LLMOPS_BENCH_RPS_PER_USER": str(profile.load_rps_per_user),
        }
    )
    process = ManagedProcess(argv, log_path=work / "locust.log", env=env, cwd=work, name="locust").start()
    try:
        deadline = time.monotonic() + profile.load_seconds + 90
        with ctx.progress() as progress:
            task = progress.add_task(
                f"locust: {profile.load_users} users x {profile.load_rps_per_user:g} req/s, {profile.load_seconds:g} s",
                total=int(profile.load_seconds),
            )
            started = time.monotonic()
            while process.alive():
                if time.monotonic() > deadline:
                    raise process.fail("did not finish in time")
                progress.update(task, completed=min(profile.load_seconds, time.monotonic() - started))
                time.sleep(0.5)
            progress.update(task, completed=profile.load_seconds)
    finally:
        process.stop()
    return prefix


def run(ctx: BenchContext) -> Section:
    work = ctx.work_dir(KEY)
    stack = start_local_stack(work / "stack", guards_on=True, name="llmops serve (load)")
    sampler = RssSampler(stack.pid)
    try:
        key = create_key(stack, "load", rpm=10_000_000, tpm=1_000_000_000)
        limited_key = create_key(stack, "load-limited", rpm=LIMITED_RPM)
        target = HttpTarget(
            f"{stack.base_url}/chat/completions",
            chat_request_body(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
        with ctx.console.status("Warming up the stack..."):
            run_closed_loop(target, concurrency=4, max_requests=100, max_seconds=30)
            time.sleep(1)
        rss_before = rss_bytes(stack.pid)
        items_before = _moto_items(str(stack.state["aws_endpoint_url"]))
        sampler.start()
        prefix = _run_locust(ctx, work, stack.base_url.removesuffix("/v1"), key, limited_key)
        time.sleep(2)  # let in-flight work finish before the final memory reading
        rss_after = rss_bytes(stack.pid)
        items_after = _moto_items(str(stack.state["aws_endpoint_url"]))
    finally:
        sampler.stop()
        stack.stop()
    stored = items_after - items_before if items_after is not None and items_before is not None else None
    return _section(ctx, prefix, sampler.samples, rss_before, rss_after, stored)


def _megabytes(value: int | None) -> str:
    return format_number(value / _MB if value else None, 1)


def _section(
    ctx: BenchContext,
    prefix: Path,
    rss_samples: list[tuple[float, int]],
    rss_before: int | None,
    rss_after: int | None,
    moto_items_added: int | None,
) -> Section:
    history = parse_history(Path(f"{prefix}_stats_history.csv"))
    failures = parse_failures(Path(f"{prefix}_failures.csv"))
    stats = _parse_stats(Path(f"{prefix}_stats.csv"))
    intended = sum(f["occurrences"] for f in failures if INTENDED_429_FAILURE in f["error"])
    unintended = [f for f in failures if INTENDED_429_FAILURE not in f["error"]]
    unintended_count = sum(f["occurrences"] for f in unintended)
    chat = stats.get("chat", {})
    limited = stats.get("chat (rate-limited key)", {})
    total_requests = sum(int(s.get("requests") or 0) for name, s in stats.items() if name != "Aggregated")

    figures: list[Figure] = []
    if history:
        t0 = history[0]["timestamp"]
        xs = [row["timestamp"] - t0 for row in history]
        path, relative = ctx.figure(KEY, "latency-over-time")
        time_series(
            path,
            xs,
            {q: [row.get(q, float("nan")) for row in history] for q in ("p50", "p95", "p99")},
            title="Chat completion latency over time (locust, sliding window)",
            xlabel="seconds into the run",
            ylabel="milliseconds",
            secondary=("requests/s", [row.get("rps", float("nan")) for row in history]),
        )
        figures.append(Figure(relative, "Latency percentiles over time, with throughput (grey, right axis)"))
    minutes = [t / 60 for t, _ in rss_samples]
    rss_mb = [b / _MB for _, b in rss_samples]
    trend = linear_trend(minutes, rss_mb) if len(rss_samples) >= 2 else None
    if rss_samples and trend is not None:
        path, relative = ctx.figure(KEY, "memory")
        time_series(
            path,
            [t for t, _ in rss_samples],
            {"server RSS (MB)": rss_mb},
            title="llmops serve resident memory during the run",
            xlabel="seconds into the run",
            ylabel="MB",
            trend=(trend.slope / 60, trend.intercept),
        )
        figures.append(Figure(relative, "Server process RSS during the run, with its least-squares trend"))

    growth_mb = (rss_after - rss_before) / _MB if rss_before and rss_after else None
    per_1k = growth_mb * 1000 / total_requests if growth_mb is not None and total_requests else None
    profile = ctx.profile
    summary_rows = [
        ("requests (all users)", total_requests),
        ("chat requests / failures", f"{int(chat.get('requests') or 0)} / {int(chat.get('failures') or 0)}"),
        ("chat throughput", f"{format_number(chat.get('rps'), 1)} req/s"),
        (
            "chat latency p50 / p90 / p99 / max",
            " / ".join(format_number(chat.get(q), 0) for q in ("p50", "p90", "p99", "max")) + " ms",
        ),
        (
            f"rate-limited key ({LIMITED_RPM} rpm) requests / intended 429s",
            f"{int(limited.get('requests') or 0)} / {intended}",
        ),
        ("errors other than intended 429s", unintended_count),
        ("server RSS before / after", f"{_megabytes(rss_before)} / {_megabytes(rss_after)} MB"),
        ("RSS growth", f"{format_number(growth_mb, 1)} MB ({format_number(per_1k, 2)} MB per 1000 requests)"),
        ("RSS trend (least squares)", f"{format_number(trend.slope if trend else None, 2)} MB/min"),
        ("DynamoDB items moto stored during the run", moto_items_added if moto_items_added is not None else "n/a"),
    ]
    body_lines = [
        f"`llmops serve` (guards on, emulators answering at once, no forwarding) under locust "
        f"headless: {profile.load_users} chat users at {profile.load_rps_per_user:g} req/s each "
        f"(a key with generous limits) plus one user at 2 req/s on a key limited to {LIMITED_RPM} "
        f"requests per minute, whose 429s (with Retry-After) are intended; {profile.load_seconds:g} s "
        "after a 100-request warm-up. Memory is the server process's VmRSS, sampled every "
        f"{_SAMPLE_EVERY_S:g} s.",
        "",
        markdown_table(("", "value"), summary_rows),
        "",
        "The server process also hosts moto, which keeps every DynamoDB item in memory and never expires "
        "TTL items: each request adds an audit record, its chain entry and sentinels, so part of any RSS "
        "growth is the emulated database's data, which a deployed stack keeps in DynamoDB instead. "
        + (
            f"Here moto stored {moto_items_added} more items, about "
            f"{format_number(growth_mb * _MB / moto_items_added / 1024, 1)} KB of RSS growth per stored item."
            if moto_items_added and growth_mb is not None
            else ""
        ),
    ]
    if unintended:
        body_lines += [
            "",
            "Unintended errors:",
            "",
            markdown_table(
                ("request", "error", "count"), [(f["name"], f["error"], f["occurrences"]) for f in unintended]
            ),
        ]
    return Section(
        key=KEY,
        title=TITLE,
        body="\n".join(body_lines),
        figures=figures,
        targets=[TargetCheck("load: errors other than intended 429s", float(unintended_count), 0.0, "errors")],
        results={
            "profile": {
                "users": profile.load_users,
                "rps_per_user": profile.load_rps_per_user,
                "seconds": profile.load_seconds,
            },
            "stats": stats,
            "failures": failures,
            "intended_429": intended,
            "unintended_errors": unintended_count,
            "history": history,
            "rss_before_bytes": rss_before,
            "rss_after_bytes": rss_after,
            "rss_trend_mb_per_min": trend.slope if trend else None,
            "moto_items_added": moto_items_added,
            "rss_samples": [{"t_s": round(t, 2), "rss_bytes": b} for t, b in rss_samples],
        },
    )
