"""Handler overhead: the real gateway Lambda handler, in-process, with an instant provider stub.

Everything a request costs except the model's own time: Powertools' resolver and validation, the
input guard, routing, quota reserve and settle, the output guard, the audit record and rendering.

- **core**: the ledger and the audit sink are in-memory fakes, isolating the handler's own CPU time.
- **with accounting**: the real DynamoDB ledger and audit log against moto in server mode on
  loopback, adding the reserve and the settle with its audit record (one transaction) over HTTP;
  the DynamoDB calls per request are counted.

The handler is invoked as the runtime loop invokes it (`runs_after_response`): a request's time is
until its answer is whole (the body read to its end), then its after-response work (the settle with
the audit record, config refreshes) runs off the clock, as the loop runs it after posting the answer,
and is timed apart.

Each variant runs with the default guard policy ("guards on") and with a policy that enables no
detector ("guards off").
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from types import ModuleType
from typing import Any

from llmops.adapters import aws_clients
from llmops.adapters.dynamodb.audit_log import DynamoAuditLog
from llmops.adapters.dynamodb.call_counter import DynamoCallCounter
from llmops.adapters.dynamodb.provisioning import create_tables
from llmops.adapters.dynamodb.quota_ledger import DynamoQuotaLedger
from llmops.adapters.dynamodb.request_books import DynamoRequestBooks
from llmops.adapters.dynamodb.route_source import FileRouteSource
from llmops.application.chat_endpoint import ChatEndpoint
from llmops.application.wiring import GatewayRuntime, build_gateway
from llmops.bench.context import BenchContext
from llmops.bench.fakes import InMemoryAuditSink, InMemoryLedger
from llmops.bench.plots import cdf_plot, stacked_bars
from llmops.bench.report import Figure, Section, TargetCheck, format_number, markdown_table
from llmops.bench.stacks import GUARDS_OFF_POLICIES
from llmops.bench.stats import difference, median, summarize
from llmops.bench.workload import chat_request_body
from llmops.config.env import Settings
from llmops.config.tables import TABLES
from llmops.domain.chat import ChatRequest, Completion, FinishReason, Usage
from llmops.domain.request_trace import RequestTrace
from llmops.domain.routing import Provider, Target
from llmops.lambda_runtime import StreamingResponse
from llmops.lambda_runtime.after_response import run_after_response
from llmops.local.aws_emulation import MotoService
from llmops.local.lambda_runtime import LocalLambdaContext, load_handler_module
from llmops.local.moto_transactions import install as install_item_rollback
from llmops.local.naming import LOCAL_REGION, local_table_name
from llmops.observability.metrics import GATEWAY_SERVICE
from llmops.observability.powertools_env import powertools_environment

__all__ = ["KEY", "TITLE", "InMemoryAuditSink", "InMemoryLedger", "InstantProvider", "run"]

KEY = "handler"
TITLE = "Handler overhead (in-process, provider stubbed)"
P50_TARGET_MS = 0.5
P99_TARGET_MS = 2.0
# Write transactions: the reserve, then the settle with the audit record (issue 17, point 2).
WRITES_TARGET = 2.0
ROUND_TRIPS_BEFORE_TOKEN_TARGET = 1.0  # the quota reserve; config comes from caches
# Between the request and its answer's last byte only the reserve; after it, the settle with the record.
ROUND_TRIPS_BEFORE_LAST_BYTE_TARGET = 1.0
WRITES_AFTER_LAST_BYTE_TARGET = 1.0
_WARMUP = 50
# Limits on the benchmark tenant so reserve and settle really write (an unlimited key reserves nothing).
_LIMITS = json.dumps({"rpm": 10_000_000, "tpm": 1_000_000_000})


class InstantProvider:
    """A `ChatProvider` that answers at once: the benchmark measures everything but the model.

    `on_call` runs as the model is called: the benchmark counts the DynamoDB round trips a request
    made before its first token there."""

    def __init__(self, on_call: Callable[[], None] = lambda: None) -> None:
        self.calls = 0
        self._on_call = on_call

    def complete(self, target: Target, request: ChatRequest, *, timeout_s: float | None = None) -> Completion:
        self.calls += 1
        self._on_call()
        return Completion(
            text="Revenue grew eleven percent in the north; the south was flat. Hiring and currency are the risks.",
            finish_reason=FinishReason.STOP,
            usage=Usage(input_tokens=260, output_tokens=24),
            raw_model=target.model_id or target.endpoint_name,
        )


@dataclass(slots=True)
class StageCollector:
    """Collects each request's per-stage times from the endpoint's `on_finished` hook."""

    stages: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    enabled: bool = False

    def __call__(self, trace: RequestTrace) -> None:
        if self.enabled:
            for stage, ms in trace.stage_ms.items():
                self.stages[stage].append(ms)

    def medians(self) -> dict[str, float]:
        return {stage: median(values) for stage, values in self.stages.items()}


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _process_environment() -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_REGION": LOCAL_REGION,
        **powertools_environment(GATEWAY_SERVICE, log_level="WARNING", tracing=False),
    }


def _settings(guards_on: bool) -> Settings:
    names = {spec.env_var.removeprefix("LLMOPS_").lower(): local_table_name(spec.logical_name) for spec in TABLES}
    return Settings.model_validate(
        {
            **names,
            "key_pepper": "bench-pepper",
            # Never called: the benchmark endpoints do not dead-letter (fakes, or a healthy moto).
            "audit_dlq_url": "http://127.0.0.1:9/000000000000/bench-unused",
            "guard_policies": "" if guards_on else json.dumps(GUARDS_OFF_POLICIES),
        }
    )


def _event_factory(template: Mapping[str, Any], body_bytes: bytes | None = None) -> Callable[[int], dict[str, Any]]:
    body = (body_bytes or chat_request_body()).decode()
    authorizer = {
        "principalId": "bench/llmops-bench",
        "tenant_id": "bench",
        "key_id": "benchkey",
        "allowed_models": "*",
        "limits": _LIMITS,
        "tenant_limits": "{}",
        "policy": "default",
    }
    base_context = dict(template["requestContext"])

    def event(index: int) -> dict[str, Any]:
        # A fresh request id each time: the audit and settle sentinels are per request id.
        context = {**base_context, "requestId": f"bench-{index:08d}", "authorizer": authorizer}
        return {**template, "body": body, "requestContext": context}

    return event


@dataclass(slots=True)
class VariantResult:
    name: str
    latencies_ms: list[float]
    statuses: Counter[str]
    stage_medians: dict[str, float]
    dynamodb_calls_per_request: float | None = None
    dynamodb_writes_per_request: float | None = None
    dynamodb_reads_per_request: float | None = None
    ledger_and_audit_writes_per_request: float | None = None
    dynamodb_calls_before_first_token: float | None = None
    audit_head_reads_per_request: float | None = None
    # After the model's answer: the settle and the audit record (the target is one transaction).
    dynamodb_writes_after_answer: float | None = None
    # Between the request and its answer's last byte (the target is the reserve alone), and after it.
    dynamodb_calls_before_last_byte: float | None = None
    dynamodb_writes_after_last_byte: float | None = None
    # The after-response work's own time per request (off the client's clock).
    after_response_ms: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": summarize(self.latencies_ms).to_dict(),
            "statuses": dict(self.statuses),
            "stage_medians_ms": self.stage_medians,
            "dynamodb_calls_per_request": self.dynamodb_calls_per_request,
            "dynamodb_writes_per_request": self.dynamodb_writes_per_request,
            "dynamodb_reads_per_request": self.dynamodb_reads_per_request,
            "ledger_and_audit_writes_per_request": self.ledger_and_audit_writes_per_request,
            "dynamodb_calls_before_first_token": self.dynamodb_calls_before_first_token,
            "audit_head_reads_per_request": self.audit_head_reads_per_request,
            "dynamodb_writes_after_answer": self.dynamodb_writes_after_answer,
            "dynamodb_calls_before_last_byte": self.dynamodb_calls_before_last_byte,
            "dynamodb_writes_after_last_byte": self.dynamodb_writes_after_last_byte,
            "after_response_ms": summarize(self.after_response_ms).to_dict() if self.after_response_ms else None,
            "latencies_ms": [round(v, 4) for v in self.latencies_ms],
        }


class _Driver:
    """Invokes the loaded handler module with a given runtime, like a warm Lambda container under
    the runtime loop: the answer read to its last byte, then its after-response work run.

    `mark` hears "request" as a request starts, "last byte" once its answer is whole and
    "after response" once its deferred work is done (the accounting variants count calls there)."""

    def __init__(self, module: ModuleType, template: Mapping[str, Any]) -> None:
        self._module: Any = module
        self._event = _event_factory(template)
        # A fresh context per invocation: each one counts down its own timeout, as in Lambda; and
        # like the loop's, it says its caller runs the answer's after-response work.
        self._context = partial(LocalLambdaContext, function_name="llmops-gateway", runs_after_response=True)
        self._counter = 0
        self.mark: Callable[[str], None] = lambda _point: None

    def measure(
        self,
        name: str,
        runtime: GatewayRuntime,
        collector: StageCollector,
        requests: int,
        advance: Callable[[], None],
        after_warmup: Callable[[], None] = lambda: None,
    ) -> VariantResult:
        self._module._runtime = runtime
        statuses: Counter[str] = Counter()
        for _ in range(_WARMUP):
            self._invoke()
        after_warmup()
        collector.enabled = True
        latencies: list[float] = []
        after_response: list[float] = []
        clock = time.perf_counter_ns
        for _ in range(requests):
            event = self._event(self._next())
            self.mark("request")
            started = clock()
            result, _body = self._answer(event)
            answered = clock()
            self.mark("last byte")
            run_after_response(result.after_response)
            self.mark("after response")
            latencies.append((answered - started) / 1e6)
            after_response.append((clock() - answered) / 1e6)
            statuses[str(result.status)] += 1
            advance()
        collector.enabled = False
        measured = VariantResult(name, latencies, statuses, collector.medians())
        measured.after_response_ms = after_response
        return measured

    def _answer(self, event: dict[str, Any]) -> tuple[StreamingResponse, bytes]:
        """The handler's answer, read to its end as the loop sends it (its work not yet run)."""
        result = self._module.handler(event, self._context())
        if not isinstance(result, StreamingResponse):  # the loop frames a proxy result the same way
            result = StreamingResponse.from_proxy_result(result)
        return result, b"".join(result.body)

    def _next(self) -> int:
        self._counter += 1
        return self._counter

    def _invoke(self) -> None:
        result, body = self._answer(self._event(self._next()))
        run_after_response(result.after_response)
        if result.status != 200:
            # Measuring error responses would report a meaningless overhead: stop and say why.
            shown = body.decode(errors="replace")[:300]
            raise RuntimeError(f"the handler answered {result.status} in warm-up: {shown}")


def _endpoint(base: GatewayRuntime, ledger: Any, audit: Any, collector: StageCollector) -> GatewayRuntime:
    """`audit` is the endpoint's `RequestBooks` (the audit record, with the settle it carries)."""
    # Everything else stays as build_gateway wired it (guards, routes, prompts, response cache).
    chat: ChatEndpoint = replace(base.chat, ledger=ledger, audit=audit, on_finished=collector)
    return replace(base, chat=chat)


def _providers(on_call: Callable[[], None] = lambda: None) -> dict[Provider, Any]:
    stub = InstantProvider(on_call)
    return {Provider.BEDROCK: stub, Provider.SAGEMAKER: stub}


def _measure_accounting(
    driver: _Driver, dynamodb: Any, guards_on: bool, requests: int, advance: Callable[[], None]
) -> VariantResult:
    """The real DynamoDB ledger and audit log (against moto), with every DynamoDB call counted."""
    settings = _settings(guards_on)
    collector = StageCollector()
    # Counts every call on the boto3 client the adapters share (a botocore event hook), whichever
    # adapter makes it: nothing in the production code counts.
    counter = DynamoCallCounter().attach(dynamodb)
    ledger = DynamoQuotaLedger(dynamodb, settings.quotas_table, settings.usage_table)
    audit = DynamoAuditLog(dynamodb, settings.audit_table)
    calls_at_request_start = writes_at_answer = writes_at_last_byte = 0
    before_first_token: list[int] = []
    after_answer: list[int] = []
    before_last_byte: list[int] = []
    after_last_byte: list[int] = []

    def at_provider_call() -> None:
        # The driver runs one request at a time: what was called since it started is this one's.
        nonlocal writes_at_answer
        before_first_token.append(sum(counter.calls.values()) - calls_at_request_start)
        writes_at_answer = counter.writes

    def at(point: str) -> None:
        nonlocal calls_at_request_start, writes_at_last_byte
        if point == "request":
            calls_at_request_start = sum(counter.calls.values())
        elif point == "last byte":
            before_last_byte.append(sum(counter.calls.values()) - calls_at_request_start)
            writes_at_last_byte = counter.writes
        else:  # its after-response work is done: the request is over
            after_last_byte.append(counter.writes - writes_at_last_byte)
            after_answer.append(counter.writes - writes_at_answer)

    runtime = _endpoint(
        build_gateway(settings, routes=FileRouteSource(), providers=_providers(at_provider_call)),
        ledger,
        DynamoRequestBooks(ledger, audit),  # as build_gateway wires it, over the counted adapters
        collector,
    )
    label = f"with accounting (moto), guards {'on' if guards_on else 'off'}"
    writes_before = 0
    head_reads_before = 0

    def start_counting() -> None:
        # Count only the measured requests, not the warm-up.
        nonlocal writes_before, head_reads_before
        counter.reset()
        for counts in (before_first_token, after_answer, before_last_byte, after_last_byte):
            counts.clear()
        driver.mark = at
        writes_before = ledger.write_calls + audit.write_calls
        head_reads_before = audit.head_reads

    try:
        result = driver.measure(label, runtime, collector, requests, advance, after_warmup=start_counting)
    finally:
        driver.mark = lambda _point: None
    result.dynamodb_calls_before_last_byte = median([float(n) for n in before_last_byte])
    result.dynamodb_writes_after_last_byte = sum(after_last_byte) / requests
    result.dynamodb_calls_before_first_token = median([float(n) for n in before_first_token])
    result.dynamodb_writes_after_answer = sum(after_answer) / requests
    result.audit_head_reads_per_request = (audit.head_reads - head_reads_before) / requests
    result.dynamodb_calls_per_request = sum(counter.calls.values()) / requests
    result.dynamodb_writes_per_request = counter.writes / requests
    result.dynamodb_reads_per_request = counter.reads / requests
    result.ledger_and_audit_writes_per_request = (ledger.write_calls + audit.write_calls - writes_before) / requests
    return result


def _run_variants(ctx: BenchContext) -> list[VariantResult]:
    profile = ctx.profile
    template = json.loads((ctx.repo_root / "events" / "chat_completion.json").read_text())
    module: Any = load_handler_module("gateway")
    saved_runtime = getattr(module, "_runtime", None)
    driver = _Driver(module, template)
    results: list[VariantResult] = []
    total = 2 * profile.handler_requests + 2 * profile.handler_accounting_requests
    moto = MotoService()
    undo_moto_patch = install_item_rollback()
    try:
        with ctx.progress() as progress:
            task = progress.add_task("handler overhead", total=total)

            def advance() -> None:
                progress.advance(task)

            for guards_on in (True, False):
                collector = StageCollector()
                base = build_gateway(_settings(guards_on), routes=FileRouteSource(), providers=_providers())
                runtime = _endpoint(base, InMemoryLedger(), InMemoryAuditSink(), collector)
                label = f"core, guards {'on' if guards_on else 'off'}"
                results.append(driver.measure(label, runtime, collector, profile.handler_requests, advance))

            moto.start()
            os.environ["AWS_ENDPOINT_URL"] = moto.url
            dynamodb: Any = aws_clients.client("dynamodb", connect_timeout_s=1.0, read_timeout_s=5.0, max_attempts=3)
            create_tables(dynamodb, {spec.logical_name: local_table_name(spec.logical_name) for spec in TABLES})
            for guards_on in (True, False):
                n = profile.handler_accounting_requests
                results.append(_measure_accounting(driver, dynamodb, guards_on, n, advance))
    finally:
        module._runtime = saved_runtime
        moto.stop()
        undo_moto_patch()
    return results


def run(ctx: BenchContext) -> Section:
    with patched_environ(_process_environment()), warnings.catch_warnings():
        # Powertools warns on every invocation that records no custom metric; irrelevant here.
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        aws_clients.clear_client_cache()
        try:
            variants = _run_variants(ctx)
        finally:
            aws_clients.clear_client_cache()
    return _section(ctx, variants)


def _section(ctx: BenchContext, variants: list[VariantResult]) -> Section:
    by_name = {v.name: v for v in variants}
    summaries = {v.name: summarize(v.latencies_ms) for v in variants}
    rows = []
    for v in variants:
        s = summaries[v.name]
        non_200 = sum(n for status, n in v.statuses.items() if status != "200")
        rows.append(
            (
                v.name,
                s.count,
                format_number(s.p50, 3),
                format_number(s.p90, 3),
                format_number(s.p99, 3),
                format_number(s.mean, 3),
                format_number(summarize(v.after_response_ms).p50, 3),
                non_200,
            )
        )
    table = markdown_table(
        ("variant", "requests", "p50 ms", "p90 ms", "p99 ms", "mean ms", "after-response p50 ms", "non-200"), rows
    )

    accounting_rows = []
    for guards in ("on", "off"):
        core = summaries[f"core, guards {guards}"]
        acct_variant = by_name[f"with accounting (moto), guards {guards}"]
        acct = summaries[acct_variant.name]
        accounting_rows.append(
            (
                f"guards {guards}",
                format_number(difference(acct.p50, core.p50), 2),
                format_number(difference(acct.p99, core.p99), 2),
                format_number(acct_variant.dynamodb_calls_per_request, 2),
                format_number(acct_variant.dynamodb_writes_per_request, 2),
                format_number(acct_variant.dynamodb_reads_per_request, 2),
                format_number(acct_variant.dynamodb_calls_before_first_token, 0),
                format_number(acct_variant.dynamodb_calls_before_last_byte, 0),
                format_number(acct_variant.dynamodb_writes_after_last_byte, 2),
            )
        )
    accounting = markdown_table(
        (
            "",
            "added p50 ms",
            "added p99 ms",
            "DynamoDB calls/req",
            "writes/req",
            "reads/req",
            "calls before the model (median)",
            "calls before the last byte (median)",
            "writes after the last byte",
        ),
        accounting_rows,
    )

    core_variants = variants[:2]  # with moto, its HTTP calls would dwarf every other stage
    stages: list[str] = []  # in pipeline order, whatever stages the endpoint reports
    for v in core_variants:
        stages += [stage for stage in v.stage_medians if stage not in stages]
    stage_bars: dict[str, dict[str, float]] = {}
    for v in core_variants:
        medians = {stage: v.stage_medians.get(stage, 0.0) for stage in stages}
        medians["rest: resolver, validation, audit, decorators"] = max(
            0.0, summaries[v.name].p50 - sum(medians.values())
        )
        stage_bars[v.name] = medians
    stage_path, stage_rel = ctx.figure(KEY, "stages")
    stacked_bars(stage_path, stage_bars, title="Median time per stage (ms)", ylabel="milliseconds (p50 per stage)")
    cdf_path, cdf_rel = ctx.figure(KEY, "cdf")
    cdf_plot(
        cdf_path,
        {v.name: v.latencies_ms for v in variants},
        title="Handler latency per request, provider stubbed",
        xlabel="milliseconds (log scale)",
    )

    core_on = summaries["core, guards on"]
    core_off = summaries["core, guards off"]
    acct_on = by_name["with accounting (moto), guards on"]
    writes = acct_on.dynamodb_writes_per_request
    body = "\n".join(
        [
            "The real gateway handler module (`functions/gateway/handler.py`) invoked in-process with API Gateway "
            "REST proxy events built from `events/chat_completion.json`: a 1 KB user prompt (with one email "
            "address and one phone number, which the default guards redact) plus a system prompt, to the "
            "`chat-default` alias, for a key with requests- and tokens-per-minute limits (so quota reserve and "
            "settle do real work). The Bedrock and SageMaker providers are replaced by an in-process stub that "
            "answers instantly, so the times are everything except the model. "
            f"Warm container: {_WARMUP} warm-up requests per variant, then timed one at a time, as the runtime "
            "loop serves them: a request's time is until its answer is whole; its after-response work (the "
            "settle with the audit record, which the loop runs once the answer is posted) is timed apart.",
            "",
            table,
            "",
            "What accounting adds (the quota reserve, then the settle and the hash-chained audit record in one "
            "DynamoDB transaction) "
            "against moto in server mode over loopback HTTP, serialized by one lock, with the benchmark's "
            "item-level transaction rollback (`llmops.local.moto_transactions`: stock moto deep-copies whole tables "
            "on every TransactWriteItems, so its cost grows with every stored item). moto's time per call is "
            "not DynamoDB's (a few milliseconds per write in-region), so treat the added milliseconds as "
            "indicative; the call counts are exact:",
            "",
            accounting,
            "",
            f"Write transactions per admitted request counted by the adapters themselves (`ledger.write_calls` + "
            f"`audit.write_calls`, retries included): {format_number(acct_on.ledger_and_audit_writes_per_request, 2)}; "
            f"of the writes on the client, {format_number(acct_on.dynamodb_writes_after_answer, 2)} per request "
            "came after the model answered (the settle with the audit record; the target is 1). "
            "DynamoDB round trips between the request and the model call (median per request; the target is "
            f"1, the quota reserve): {format_number(acct_on.dynamodb_calls_before_first_token, 0)}; between the "
            "request and its answer's last byte (the target is 1, the reserve: the settle with the record "
            f"comes after it): {format_number(acct_on.dynamodb_calls_before_last_byte, 0)}, and writes after "
            f"the last byte: {format_number(acct_on.dynamodb_writes_after_last_byte, 2)} per request. Audit shard "
            f"head reads per request: {format_number(acct_on.audit_head_reads_per_request, 2)} (a container "
            "reads a shard's head only until it has written to it, then chains on the head it wrote).",
        ]
    )
    return Section(
        key=KEY,
        title=TITLE,
        body=body,
        figures=[
            Figure(cdf_rel, "Cumulative distribution of handler latency per variant"),
            Figure(stage_rel, "Where the median request's time goes, per stage"),
        ],
        targets=[
            TargetCheck("handler overhead p50 (core, guards on)", core_on.p50, P50_TARGET_MS, "ms"),
            TargetCheck("handler overhead p99 (core, guards on)", core_on.p99, P99_TARGET_MS, "ms"),
            TargetCheck("handler overhead p50 (core, guards off)", core_off.p50, P50_TARGET_MS, "ms"),
            TargetCheck("handler overhead p99 (core, guards off)", core_off.p99, P99_TARGET_MS, "ms"),
            TargetCheck("DynamoDB write transactions per admitted request", writes, WRITES_TARGET, "writes"),
            TargetCheck(
                "DynamoDB writes after the answer (settle + audit record)",
                acct_on.dynamodb_writes_after_answer,
                1.0,
                "writes",
            ),
            TargetCheck(
                "DynamoDB round trips before the first token (median)",
                acct_on.dynamodb_calls_before_first_token,
                ROUND_TRIPS_BEFORE_TOKEN_TARGET,
                "calls",
            ),
            TargetCheck(
                "DynamoDB round trips between the request and the last byte (median)",
                acct_on.dynamodb_calls_before_last_byte,
                ROUND_TRIPS_BEFORE_LAST_BYTE_TARGET,
                "calls",
            ),
            TargetCheck(
                "DynamoDB writes after the last byte (settle + audit record)",
                acct_on.dynamodb_writes_after_last_byte,
                WRITES_AFTER_LAST_BYTE_TARGET,
                "writes",
            ),
        ],
        results={v.name: v.to_dict() for v in variants},
    )
