"""Streaming: what the gateway adds to the time to first token (TTFT), and the time to last byte (TTLB).

One fake model streams every answer the same way (`llmops.bench.upstream`: `SHAPE`'s first token,
then one token every few ms) and is called three ways, one request at a time, with `stream: true`:

- **direct**: the fake upstream itself, over HTTP: the model's own TTFT and TTLB.
- **local stack**: `llmops serve --forward-url` to it (front door, authorizer, the gateway through
  our Lambda runtime loop, the Bedrock emulator relaying ConverseStream), default guards on.
  Overhead = the stack's percentile minus direct's.
- **in-process**: the gateway handler module, its Bedrock provider replaced by a fake that streams
  with the same pacing and records its own TTFT per request; quota ledger and audit in memory.
  Overhead = per request, the handler's TTFT minus that request's provider TTFT.

The first content chunk is what counts (role-only chunks are not tokens). A gateway that buffers
shows a TTFT next to its TTLB, which the "first chunk at" check catches. Whatever cannot be measured
(streaming not wired, an error status, a buffered answer) is reported as "not measured: <reason>"
in the section instead of failing the run.
"""

from __future__ import annotations

import http.client
import json
import math
import sys
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from llmops.bench.context import BenchContext
from llmops.bench.fakes import InMemoryAuditSink, InMemoryLedger
from llmops.bench.handler_overhead import _event_factory, _process_environment, _settings, patched_environ
from llmops.bench.plots import cdf_plot
from llmops.bench.processes import ManagedProcess, free_port, wait_for_http
from llmops.bench.report import Figure, Section, TargetCheck, format_number, markdown_table
from llmops.bench.stacks import LocalStackProcess, clean_environment, create_key, start_local_stack
from llmops.bench.streaming_stats import (
    Overhead,
    SseTimer,
    StreamingUnavailableError,
    StreamTiming,
    VariantTimings,
    first_chunk_fraction,
    ttft_overhead,
    ttlb_overhead,
)
from llmops.bench.upstream import StreamShape, stream_tokens
from llmops.bench.workload import chat_request
from llmops.domain.chat import ChatRequest, Completion, FinishReason, Usage
from llmops.domain.routing import Provider, Target
from llmops.domain.streaming import StreamEnd, StreamEvent, TextDelta

__all__ = ["KEY", "SHAPE", "TITLE", "PacedStreamingProvider", "build_section", "run"]

KEY = "streaming"
TITLE = "Streaming: time to first token overhead and time to last byte"
# First token at 100 ms as in issue 13's acceptance test; tokens 15 ms apart (a fast model, not 100
# ms) so a run gets enough requests for a p99 in about a minute per variant; 40 word tokens (about
# 230 characters), longer than the output guard's 128-character look-behind window.
SHAPE = StreamShape(first_token_ms=100.0, token_ms=15.0, tokens=40)
# Issue 13: the first chunk within 0.5 s of a model whose first token comes at ~100 ms.
TTFT_OVERHEAD_TARGET_MS = 400.0
# A stream's first token should arrive well before its end: the buffered answer had it at 100%.
FIRST_CHUNK_FRACTION_TARGET = 0.5
DIRECT = "direct upstream"
LOCAL_STACK = "local stack (llmops serve, guards on)"
IN_PROCESS = "in-process handler (fake streaming provider, guards on)"
IN_PROCESS_GUARDS_OFF = "in-process handler (fake streaming provider, guards off)"
_WARMUP = 3
_TIMEOUT_S = 30.0


def _streaming_body(model: str) -> bytes:
    return json.dumps({**chat_request(model), "stream": True, "stream_options": {"include_usage": True}}).encode()


def time_http_stream(url: str, body: bytes, headers: dict[str, str], timeout_s: float = _TIMEOUT_S) -> StreamTiming:
    """POSTs one streamed request on a new connection and times its first content chunk and its end."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout_s)
    timer = SseTimer()
    try:
        started = time.perf_counter()
        connection.request("POST", parts.path, body=body, headers={"Content-Type": "application/json", **headers})
        response = connection.getresponse()
        if response.status != 200:
            raise StreamingUnavailableError(f"HTTP {response.status}: {response.read(300).decode(errors='replace')}")
        content_type = response.getheader("Content-Type", "")
        if "text/event-stream" not in content_type:
            raise StreamingUnavailableError(f"stream: true was answered with {content_type or 'no content type'}")
        while line := response.readline():
            timer.feed(line, time.perf_counter())
            if timer.done_at is not None:
                break
        timer.finish(time.perf_counter())
    finally:
        connection.close()
    return timer.timing(started)


def _measure(
    ctx: BenchContext, name: str, requests: int, once: Callable[[], StreamTiming], progress: Any, task: Any
) -> VariantTimings:
    """Warm-up, then `requests` timed one at a time; the first failure ends the variant with its reason."""
    variant = VariantTimings(name)
    try:
        for _ in range(_WARMUP):
            once()
        for _ in range(requests):
            variant.timings.append(once())
            progress.advance(task)
    except (StreamingUnavailableError, OSError, http.client.HTTPException) as exc:
        variant.not_measured = (
            f"{type(exc).__name__}: {exc}" if not isinstance(exc, StreamingUnavailableError) else str(exc)
        )
        variant.timings.clear()
        ctx.console.print(f"[yellow]{name}: not measured:[/] {variant.not_measured}")
    return variant


def _start_upstream(work: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    argv = [sys.executable, "-m", "llmops.bench.upstream", "--port", str(port)]
    argv += ["--first-token-ms", f"{SHAPE.first_token_ms:g}", "--token-ms", f"{SHAPE.token_ms:g}"]
    argv += ["--stream-tokens", str(SHAPE.tokens)]
    process = ManagedProcess(argv, log_path=work / "upstream.log", env=clean_environment(), name="streaming upstream")
    process.start()
    wait_for_http(process, "127.0.0.1", port, timeout_s=30)
    return process, f"http://127.0.0.1:{port}/v1"


def _http_variants(ctx: BenchContext, requests: int, progress: Any, task: Any) -> list[VariantTimings]:
    work = ctx.work_dir(KEY)
    upstream, upstream_url = _start_upstream(work)
    stack: LocalStackProcess | None = None
    try:
        body = _streaming_body("bench")
        direct = _measure(
            ctx,
            DIRECT,
            requests,
            lambda: time_http_stream(f"{upstream_url}/chat/completions", body, {}),
            progress,
            task,
        )
        try:
            stack = start_local_stack(work / "stack", forward_url=upstream_url, name="llmops serve (streaming)")
            key = create_key(stack, "bench", rpm=10_000_000, tpm=1_000_000_000)
        except Exception as exc:  # the stack not starting is a result, not a crash of the whole run
            return [direct, VariantTimings(LOCAL_STACK, not_measured=f"the local stack did not start: {exc}")]
        gateway_body = _streaming_body("chat-default")
        headers = {"Authorization": f"Bearer {key}"}
        url = f"{stack.base_url}/chat/completions"
        local = _measure(
            ctx, LOCAL_STACK, requests, lambda: time_http_stream(url, gateway_body, headers), progress, task
        )
        return [direct, local]
    finally:
        if stack is not None:
            stack.stop()
        upstream.stop()


class PacedStreamingProvider:
    """A Bedrock stand-in that streams `SHAPE` (buffered `complete` sleeps the whole answer) and
    records, per stream, its own TTFT from the call: what the gateway's TTFT is compared with."""

    def __init__(self, shape: StreamShape = SHAPE) -> None:
        self.shape = shape
        self.last_ttft_ms: float | None = None

    def complete(self, target: Target, request: ChatRequest, *, timeout_s: float | None = None) -> Completion:
        time.sleep((self.shape.first_token_ms + (self.shape.tokens - 1) * self.shape.token_ms) / 1000)
        return Completion(
            text="".join(stream_tokens(self.shape.tokens)),
            finish_reason=FinishReason.STOP,
            usage=Usage(input_tokens=260, output_tokens=self.shape.tokens),
            raw_model=target.model_id or target.endpoint_name,
        )

    def stream(self, target: Target, request: ChatRequest, *, timeout_s: float | None = None) -> Iterator[StreamEvent]:
        started = time.perf_counter()
        self.last_ttft_ms = None
        return self._events(started, target)

    def _events(self, started: float, target: Target) -> Iterator[StreamEvent]:
        for index, token in enumerate(stream_tokens(self.shape.tokens)):
            due = started + (self.shape.first_token_ms + index * self.shape.token_ms) / 1000
            time.sleep(max(0.0, due - time.perf_counter()))
            if index == 0:
                self.last_ttft_ms = (time.perf_counter() - started) * 1000
            yield TextDelta(token)
        yield StreamEnd(
            FinishReason.STOP, Usage(input_tokens=260, output_tokens=self.shape.tokens), target.model_id or None
        )


def _in_process_variant(
    ctx: BenchContext, requests: int, progress: Any, task: Any, *, guards_on: bool
) -> VariantTimings:
    # Imported here: loading the handler module builds the gateway, which the HTTP variants do not need.
    from llmops.adapters.dynamodb.route_source import FileRouteSource  # noqa: PLC0415
    from llmops.application.wiring import build_gateway  # noqa: PLC0415
    from llmops.lambda_runtime.after_response import run_after_response  # noqa: PLC0415
    from llmops.local.lambda_runtime import LocalLambdaContext, load_handler_module  # noqa: PLC0415

    provider = PacedStreamingProvider()
    template = json.loads((ctx.repo_root / "events" / "chat_completion.json").read_text())
    event = _event_factory(template, _streaming_body("chat-default"))
    with patched_environ(_process_environment()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        module: Any = load_handler_module("gateway")
        saved = getattr(module, "_runtime", None)
        base = build_gateway(_settings(guards_on), routes=FileRouteSource(), providers={Provider.BEDROCK: provider})
        completions = replace(base.chat.completions, streaming={Provider.BEDROCK: provider})
        chat = replace(base.chat, ledger=InMemoryLedger(), audit=InMemoryAuditSink(), completions=completions)
        module._runtime = replace(base, chat=chat)
        counter = iter(range(1, 1_000_000))

        def once() -> StreamTiming:
            timer = SseTimer()
            started = time.perf_counter()
            # As the runtime loop invokes it: the record write runs after the last byte, untimed.
            context = LocalLambdaContext(function_name="llmops-gateway", runs_after_response=True)
            result = module.handler(event(next(counter)), context)
            if isinstance(result, dict):
                status = result.get("statusCode")
                if status != 200:
                    raise StreamingUnavailableError(f"HTTP {status}: {str(result.get('body'))[:300]}")
                content_type = str((result.get("headers") or {}).get("Content-Type", ""))
                raise StreamingUnavailableError(f"the handler answered stream: true buffered ({content_type})")
            if result.status != 200:
                raise StreamingUnavailableError(f"HTTP {result.status}: {b''.join(result.body)[:300]!r}")
            for piece in result.body:
                timer.feed(piece, time.perf_counter())
            timer.finish(time.perf_counter())
            run_after_response(result.after_response)
            return timer.timing(started, provider.last_ttft_ms)

        try:
            return _measure(ctx, IN_PROCESS if guards_on else IN_PROCESS_GUARDS_OFF, requests, once, progress, task)
        finally:
            module._runtime = saved


def run(ctx: BenchContext) -> Section:
    requests = ctx.profile.streaming_requests
    with ctx.progress() as progress:
        task = progress.add_task("streaming", total=4 * requests)
        variants = _http_variants(ctx, requests, progress, task)
        for guards_on, name in ((True, IN_PROCESS), (False, IN_PROCESS_GUARDS_OFF)):
            try:
                variants.append(_in_process_variant(ctx, requests, progress, task, guards_on=guards_on))
            except Exception as exc:  # e.g. streaming not wired in the handler yet: say so, keep the rest
                variants.append(VariantTimings(name, not_measured=f"{type(exc).__name__}: {exc}"))
    return build_section(ctx, variants)


def _ms(value: float) -> str:
    return format_number(value, 1)


def _overheads(variants: dict[str, VariantTimings]) -> dict[str, tuple[Overhead, Overhead | None]]:
    direct = variants.get(DIRECT)
    result: dict[str, tuple[Overhead, Overhead | None]] = {}
    if LOCAL_STACK in variants and direct is not None:
        local = variants[LOCAL_STACK]
        result[LOCAL_STACK] = (ttft_overhead(local, direct), ttlb_overhead(local, direct))
    for name in (IN_PROCESS, IN_PROCESS_GUARDS_OFF):
        if name in variants:
            result[name] = (ttft_overhead(variants[name]), None)
    return result


def build_section(ctx: BenchContext, variants: list[VariantTimings]) -> Section:
    """The report section for these measurements (also what the unit tests build from fixed numbers)."""
    by_name = {v.name: v for v in variants}
    rows = []
    for v in variants:
        if v.not_measured is not None:
            rows.append((v.name, 0, "not measured", "", "", "", v.not_measured))
            continue
        ttft, ttlb = v.ttft, v.ttlb
        rows.append(
            (
                v.name,
                ttft.count,
                _ms(ttft.p50),
                _ms(ttft.p99),
                _ms(ttlb.p50),
                _ms(ttlb.p99),
                f"first chunk at {format_number(first_chunk_fraction(v.timings) * 100, 0)}% of the answer",
            )
        )
    table = markdown_table(
        ("variant", "requests", "TTFT p50 ms", "TTFT p99 ms", "TTLB p50 ms", "TTLB p99 ms", "note"), rows
    )
    overheads = _overheads(by_name)
    overhead_rows = []
    for name, (ttft_added, ttlb_added) in overheads.items():
        missing = by_name[name].not_measured or (
            by_name[DIRECT].not_measured if name == LOCAL_STACK and DIRECT in by_name else None
        )
        if missing:
            overhead_rows.append((name, f"not measured: {missing}", "", "", "", ""))
            continue
        overhead_rows.append(
            (
                name,
                _ms(ttft_added.p50),
                _ms(ttft_added.p99),
                ttft_added.method,
                _ms(ttlb_added.p50) if ttlb_added else "-",
                _ms(ttlb_added.p99) if ttlb_added else "-",
            )
        )
    overhead_table = markdown_table(
        ("", "TTFT overhead p50 ms", "TTFT overhead p99 ms", "how", "TTLB overhead p50 ms", "TTLB overhead p99 ms"),
        overhead_rows,
    )

    targets: list[TargetCheck] = []
    for name in (LOCAL_STACK, IN_PROCESS, IN_PROCESS_GUARDS_OFF):
        if name not in by_name:
            continue
        added = overheads.get(name, (None, None))[0]
        measured = by_name[name].not_measured is None and added is not None
        for stat in ("p50", "p99"):
            value = getattr(added, stat) if measured and added is not None else None
            targets.append(TargetCheck(f"gateway TTFT overhead {stat} ({name})", value, TTFT_OVERHEAD_TARGET_MS, "ms"))
        fraction = first_chunk_fraction(by_name[name].timings) if measured else None
        targets.append(
            TargetCheck(
                f"first chunk at, share of the answer's time, p50 ({name})",
                None if fraction is None or math.isnan(fraction) else fraction,
                FIRST_CHUNK_FRACTION_TARGET,
                "x",
            )
        )
    misses = [t.name for t in targets if t.passed is False]
    unmeasured = [f"{v.name}: {v.not_measured}" for v in variants if v.not_measured]

    figures: list[Figure] = []
    measured_variants = [v for v in variants if v.timings]
    if measured_variants:
        path, relative = ctx.figure(KEY, "ttft-ttlb")
        series: dict[str, list[float]] = {}
        for v in measured_variants:
            series[f"{v.name}: TTFT"] = [t.ttft_ms for t in v.timings]
        for v in measured_variants:
            series[f"{v.name}: TTLB"] = [t.ttlb_ms for t in v.timings]
        cdf_plot(path, series, title="Streamed requests: time to first token and to last byte", xlabel="ms (log)")
        figures.append(Figure(relative, "Cumulative distribution of TTFT and TTLB per variant"))

    shape = (
        f"first token after {SHAPE.first_token_ms:g} ms, then {SHAPE.tokens - 1} more {SHAPE.token_ms:g} ms apart "
        f"({SHAPE.tokens} word tokens, about {SHAPE.first_token_ms + (SHAPE.tokens - 1) * SHAPE.token_ms:g} ms in all)"
    )
    lines = [
        "The same streamed request (the benchmark's 1 KB prompt, `stream: true`, `stream_options.include_usage`) "
        f"to a fake model that streams every answer the same way: {shape}. One request at a time, after "
        f"{_WARMUP} warm-up requests per variant. TTFT is the first chunk with content (a role-only chunk is not a "
        "token); TTLB is `[DONE]` (or the end of the body). Local stack overhead = its percentile minus the "
        "direct upstream's; in-process overhead = per request, the handler's TTFT minus its provider's own TTFT. "
        "The overhead includes everything before the model call (authorizer, input guard, routing, quota "
        "reserve) and the output guard's hold-back on the first tokens; the guards-off variant (a policy "
        "with no detector) tells the two apart.",
        "",
        table,
        "",
        overhead_table,
    ]
    if unmeasured:
        lines += ["", "**Not measured:** " + "; ".join(unmeasured)]
    if misses:
        lines += ["", "**Missed:** " + "; ".join(misses)]
    return Section(
        key=KEY,
        title=TITLE,
        body="\n".join(lines),
        figures=figures,
        targets=targets,
        results={
            "shape": {"first_token_ms": SHAPE.first_token_ms, "token_ms": SHAPE.token_ms, "tokens": SHAPE.tokens},
            "variants": {v.name: v.to_dict() for v in variants},
            "overhead_ms": {
                name: {
                    "ttft_p50": ttft.p50,
                    "ttft_p99": ttft.p99,
                    "method": ttft.method,
                    "ttlb_p50": ttlb.p50 if ttlb else None,
                    "ttlb_p99": ttlb.p99 if ttlb else None,
                }
                for name, (ttft, ttlb) in overheads.items()
            },
        },
    )
