"""Gateway overhead side by side: our local stack and the LiteLLM proxy in front of the same fake
upstream, the same request, at the same concurrency levels, measured in one run.

Added latency = a gateway's client-side latency percentile minus the direct upstream's percentile
at the same concurrency. Cells are interleaved (level by level, gateway by gateway) so slow drift in
the machine's background load does not favour whichever gateway ran first.
"""

from __future__ import annotations

import secrets
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmops.bench.context import BenchContext
from llmops.bench.litellm_env import LiteLLMUnavailableError, litellm_environment, proxy_config
from llmops.bench.loadgen import HttpTarget, LoadResult, run_closed_loop
from llmops.bench.plots import cdf_plot, grouped_bars
from llmops.bench.processes import ManagedProcess, free_port, wait_for_http
from llmops.bench.report import Figure, Section, TargetCheck, format_number, markdown_table
from llmops.bench.stacks import LocalStackProcess, clean_environment, create_key, start_local_stack
from llmops.bench.stats import difference, ratio, summarize
from llmops.bench.workload import MODEL_ALIAS, chat_request_body

__all__ = ["KEY", "TITLE", "run"]

KEY = "side_by_side"
TITLE = "Gateway overhead side by side: llmops vs LiteLLM proxy"
RATIO_TARGET = 0.25
DIRECT = "direct upstream"
LITELLM = "LiteLLM proxy"
OURS_ON = "llmops, guards on"
OURS_OFF = "llmops, guards off"
OURS_NO_DB = "llmops, guards on, accounting in memory"
_READY_TIMEOUT_S = 180.0


@dataclass(slots=True)
class Gateway:
    name: str
    target: HttpTarget


def _start_upstream(ctx: BenchContext, work: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    process = ManagedProcess(
        [sys.executable, "-m", "llmops.bench.upstream", "--port", str(port), "--delay-ms", str(ctx.upstream_delay_ms)],
        log_path=work / "upstream.log",
        env=clean_environment(),
        name="fake upstream",
    ).start()
    wait_for_http(process, "127.0.0.1", port, timeout_s=30)
    return process, f"http://127.0.0.1:{port}/v1"


def _wait_until_answers(process: ManagedProcess, target: HttpTarget, timeout_s: float) -> None:
    """Polls with the benchmark request itself until it gets a 200 (LiteLLM loads its router lazily)."""
    host, port = target.host_port
    wait_for_http(process, host, port, timeout_s)
    request = urllib.request.Request(target.url, data=target.body, headers=dict(target.headers), method="POST")
    last_error = ""
    for _ in range(60):
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                if response.status == 200:
                    return
        except OSError as exc:
            last_error = str(exc)
        if not process.alive():
            break
        time.sleep(0.5)
    raise process.fail(f"never answered the benchmark request with 200 ({last_error})")


def _start_litellm(ctx: BenchContext, work: Path, upstream_url: str) -> tuple[ManagedProcess, Gateway]:
    litellm = ctx.litellm()
    config = work / "litellm-config.yaml"
    config.write_text(proxy_config(MODEL_ALIAS, upstream_url))
    port = free_port()
    # LiteLLM refuses to start without a strong master key; it authenticates each call with it,
    # as our gateway authenticates its API keys.
    master_key = f"sk-{secrets.token_hex(32)}"
    process = ManagedProcess(
        [str(litellm.proxy), "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
        log_path=work / "litellm.log",
        env=litellm_environment(clean_environment({"LITELLM_MASTER_KEY": master_key})),
        cwd=work,
        name=f"LiteLLM proxy {litellm.version}",
    ).start()
    gateway = Gateway(
        f"{LITELLM} {litellm.version}",
        HttpTarget(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            chat_request_body(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {master_key}"},
        ),
    )
    try:
        _wait_until_answers(process, gateway.target, _READY_TIMEOUT_S)
    except BaseException:
        process.stop()
        raise
    return process, gateway


def _start_ours(work: Path, upstream_url: str, label: str) -> tuple[LocalStackProcess, Gateway]:
    stack = start_local_stack(
        work / label.replace(" ", "-").replace(",", ""),
        guards_on=label != OURS_OFF,
        forward_url=upstream_url,
        name=f"llmops serve ({label})",
        in_memory_accounting=label == OURS_NO_DB,
    )
    try:
        # Limits on the key so quota reserve and settle do their real writes on every request.
        key = create_key(stack, "bench", rpm=10_000_000, tpm=1_000_000_000)
        gateway = Gateway(
            label,
            HttpTarget(
                f"{stack.base_url}/chat/completions",
                chat_request_body(),
                {"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
            ),
        )
        _wait_until_answers(stack.process, gateway.target, 60)
    except BaseException:
        stack.stop()
        raise
    return stack, gateway


def _measure(ctx: BenchContext, gateways: list[Gateway]) -> dict[int, dict[str, LoadResult]]:
    profile = ctx.profile
    cells: dict[int, dict[str, LoadResult]] = {}
    with ctx.progress() as progress:
        overall = progress.add_task("side by side (all cells)", total=len(profile.concurrency_levels) * len(gateways))
        for level in profile.concurrency_levels:
            cells[level] = {}
            for gateway in gateways:
                task = progress.add_task(f"  c={level:<3} {gateway.name}", total=profile.side_by_side_requests)

                def advance(task_id: Any = task) -> None:
                    progress.advance(task_id)

                # Warm-up: open every connection and let lazy work (imports, caches) happen.
                run_closed_loop(gateway.target, concurrency=level, max_requests=2 * level, max_seconds=10)
                cells[level][gateway.name] = run_closed_loop(
                    gateway.target,
                    concurrency=level,
                    max_requests=profile.side_by_side_requests,
                    max_seconds=profile.side_by_side_seconds,
                    on_request=advance,
                )
                progress.update(task, visible=False)
                progress.advance(overall)
    return cells


def run(ctx: BenchContext) -> Section:
    work = ctx.work_dir(KEY)
    started: list[ManagedProcess | LocalStackProcess] = []
    gateways: list[Gateway] = []
    litellm_error: str | None = None
    try:
        upstream, upstream_url = _start_upstream(ctx, work)
        started.append(upstream)
        gateways.append(
            Gateway(
                DIRECT,
                HttpTarget(
                    f"{upstream_url}/chat/completions", chat_request_body(), {"Content-Type": "application/json"}
                ),
            )
        )
        with ctx.console.status("Starting the LiteLLM proxy and three local stacks..."):
            try:
                litellm_process, litellm_gateway = _start_litellm(ctx, work, upstream_url)
                started.append(litellm_process)
                gateways.append(litellm_gateway)
            except LiteLLMUnavailableError as exc:
                litellm_error = str(exc)
            for label in (OURS_ON, OURS_OFF, OURS_NO_DB):
                stack, gateway = _start_ours(work, upstream_url, label)
                started.append(stack)
                gateways.append(gateway)
        cells = _measure(ctx, gateways)
    finally:
        for process in reversed(started):
            process.stop()
    return _section(ctx, gateways, cells, litellm_error)


def _section(
    ctx: BenchContext, gateways: list[Gateway], cells: dict[int, dict[str, LoadResult]], litellm_error: str | None
) -> Section:
    levels = list(cells)
    names = [g.name for g in gateways]
    litellm_name = next((n for n in names if n.startswith(LITELLM)), None)
    summaries = {level: {name: summarize(cells[level][name].latencies_ms) for name in names} for level in levels}
    added: dict[int, dict[str, tuple[float, float]]] = {}
    for level in levels:
        direct = summaries[level][DIRECT]
        added[level] = {
            name: (difference(s.p50, direct.p50), difference(s.p99, direct.p99))
            for name, s in summaries[level].items()
            if name != DIRECT
        }

    rows = []
    for level in levels:
        for name in names:
            s = summaries[level][name]
            result = cells[level][name]
            errors = result.requests - result.ok
            add50, add99 = added[level].get(name, (float("nan"), float("nan")))
            rows.append(
                (
                    level,
                    name,
                    result.requests,
                    format_number(result.throughput_rps, 0),
                    format_number(s.p50, 1),
                    format_number(s.p99, 1),
                    "-" if name == DIRECT else format_number(add50, 2),
                    "-" if name == DIRECT else format_number(add99, 2),
                    errors,
                )
            )
    table = markdown_table(
        ("concurrency", "gateway", "requests", "req/s", "p50 ms", "p99 ms", "added p50 ms", "added p99 ms", "non-2xx"),
        rows,
    )
    ratio_rows = []
    targets = []
    ratios: dict[str, dict[str, float | None]] = {}
    for level in levels:
        if litellm_name is None:
            break
        base50, base99 = added[level][litellm_name]
        level_ratios: dict[str, float | None] = {}
        for ours in (OURS_ON, OURS_OFF, OURS_NO_DB):
            ours50, ours99 = added[level][ours]
            r50, r99 = ratio(ours50, base50), ratio(ours99, base99)
            level_ratios[f"{ours} p50"] = r50
            level_ratios[f"{ours} p99"] = r99
            ratio_rows.append((level, ours, format_number(r50, 2, "x"), format_number(r99, 2, "x")))
        ratios[str(level)] = level_ratios
        targets.append(
            TargetCheck(
                f"added latency p50, guards on / LiteLLM (c={level})", level_ratios[f"{OURS_ON} p50"], RATIO_TARGET, "x"
            )
        )
        if level == levels[0]:
            targets.append(
                TargetCheck(
                    f"same, accounting in memory instead of moto (c={level})",
                    level_ratios[f"{OURS_NO_DB} p50"],
                    RATIO_TARGET,
                    "x",
                )
            )

    figures = []
    for index, label in ((0, "p50"), (1, "p99")):
        path, relative = ctx.figure(KEY, f"added-{label}")
        grouped_bars(
            path,
            [f"concurrency {level}" for level in levels],
            {name: [added[level][name][index] for level in levels] for name in names if name != DIRECT},
            title=f"Added latency {label} over the direct upstream ({ctx.upstream_delay_ms:g} ms fake model)",
            ylabel="milliseconds",
        )
        figures.append(Figure(relative, f"Added latency {label} per gateway and concurrency level"))
    cdf_level = 8 if 8 in levels else levels[-1]
    path, relative = ctx.figure(KEY, "cdf")
    cdf_plot(
        path,
        {name: cells[cdf_level][name].latencies_ms for name in names},
        title=f"Client latency at concurrency {cdf_level}",
        xlabel="milliseconds (log scale)",
    )
    figures.append(Figure(relative, f"Client-side latency distribution at concurrency {cdf_level}"))

    profile = ctx.profile
    body_lines = [
        f"A fake OpenAI-compatible model server on loopback answers every chat completion with a fixed "
        f"document after {ctx.upstream_delay_ms:g} ms. In front of it, each in its own process: the LiteLLM "
        "proxy from PyPI (one uvicorn worker, no guardrails, no database, no callbacks) and our local stack "
        "(`llmops serve --forward-url`) three times: with the default guard policy, with every detector "
        "off, and with the default guards but the quota ledger and audit log in memory instead of in moto "
        "(the last isolates what the gateway adds from what the emulated database adds). "
        "The client sends the same 1 KB-prompt chat completion through each, closed-loop, one keep-alive "
        f"connection per worker, at concurrency {', '.join(map(str, levels))}: up to "
        f"{profile.side_by_side_requests} requests or {profile.side_by_side_seconds:g} s per cell after a "
        "warm-up. Added latency is the gateway's percentile minus the direct upstream's percentile at the "
        "same concurrency.",
        "",
        table,
        "",
    ]
    if ratio_rows:
        body_lines += [
            "Our added latency as a multiple of LiteLLM's (lower is better):",
            "",
            markdown_table(("concurrency", "llmops variant", "ratio p50", "ratio p99"), ratio_rows),
            "",
        ]
    if litellm_error:
        body_lines += [f"LiteLLM was not measured: {litellm_error}", ""]
    body_lines += [
        "**What this measures, honestly.** Our local stack is not a Lambda: one Python process runs the "
        "front door (werkzeug's threaded dev server, which also builds the API Gateway event and runs the "
        "real authorizer with a cache), the real gateway handler, moto in server mode for every DynamoDB call "
        "(the quota reserve, then the settle with its hash-chained audit record: two write transactions per "
        "request, over loopback HTTP and serialized by one lock, since moto races concurrent conditional "
        "writes), and the "
        "Bedrock emulator that translates Converse to the upstream's OpenAI format. Every hop keeps its "
        "connections alive with Nagle's algorithm off, as SDK clients and the AWS endpoints do. All of that "
        "shares one interpreter lock on a 2-core machine that also runs the "
        "client and the upstream. In AWS, each Lambda instance serves one request at a time on its own "
        "vCPU share and DynamoDB is a network service, so concurrency there does not queue behind one lock; "
        "the local numbers over-state our per-request overhead, more so at higher concurrency. LiteLLM runs "
        "as it would in production (uvicorn, asyncio, connection pooling), minus its database and "
        "guardrails.",
    ]
    return Section(
        key=KEY,
        title=TITLE,
        body="\n".join(body_lines),
        figures=figures,
        targets=targets,
        results={
            "upstream_delay_ms": ctx.upstream_delay_ms,
            "ratios_ours_to_litellm": ratios,
            "litellm_error": litellm_error,
            "cells": {
                str(level): {
                    name: {
                        "summary": summaries[level][name].to_dict(),
                        "added_p50_ms": added[level].get(name, (None, None))[0],
                        "added_p99_ms": added[level].get(name, (None, None))[1],
                        "statuses": dict(cells[level][name].statuses),
                        "throughput_rps": cells[level][name].throughput_rps,
                        "latencies_ms": [round(v, 3) for v in cells[level][name].latencies_ms],
                    }
                    for name in names
                }
                for level in levels
            },
        },
    )
