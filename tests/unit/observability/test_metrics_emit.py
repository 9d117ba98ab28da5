"""The EMF records Powertools prints for a finished request: names, units, dimensions, no text."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
from aws_lambda_powertools import Metrics

from llmops.adapters.dynamodb.route_source import FileRouteSource
from llmops.application.chat_endpoint import ChatEndpoint
from llmops.application.guard_policies import GuardPolicies
from llmops.application.openai_schema import ChatCompletionRequest
from llmops.domain.audit import AuditRecord, GuardVerdict
from llmops.domain.chat import ChatRequest, Completion, FinishReason, Usage
from llmops.domain.completions import Attempt, CompletionService
from llmops.domain.errors import GatewayError, ProviderError, ProviderFailureKind
from llmops.domain.feedback import Feedback, FeedbackLabel, parse_score
from llmops.domain.prompts import PromptRef, ResolvedPrompt
from llmops.domain.quotas import Actual, Demand, PendingSettlement, Reservation, SettleOutcome, UsageEntry, WindowStatus
from llmops.domain.request_trace import RequestTrace
from llmops.domain.response_cache import CacheEntry
from llmops.domain.routing import Provider, Target
from llmops.domain.stages import RequestStage
from llmops.domain.tenancy import TenantContext
from llmops.observability.emit import emit_feedback_metrics, emit_request_metrics, guard_type
from llmops.observability.metrics import CATALOGUE, FORBIDDEN_DIMENSIONS, NAMESPACE, GuardType, metric_spec

TENANT = TenantContext(tenant_id="tenant-acme", key_id="sk-abc123")
PII_CANARIES = (
    "jane.doe@example.com",
    "+1 415 555 0134",
    "4111 1111 1111 1111",
    "078-05-1120",
    "zebra-canary-prompt-91f3",
)


def _records(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if "_aws" in line]


def _directive(record: dict[str, Any]) -> dict[str, Any]:
    directive: dict[str, Any] = record["_aws"]["CloudWatchMetrics"][0]
    return directive


def _published(records: list[dict[str, Any]]) -> list[tuple[str, str, frozenset[tuple[str, str]], list[float]]]:
    """(metric, unit, dimensions as (name, value) pairs, values) for every dimension set of every record."""
    rows = []
    for record in records:
        directive = _directive(record)
        for metric in directive["Metrics"]:
            values = record[metric["Name"]]
            for dims in directive["Dimensions"]:
                pairs = frozenset((d, record[d]) for d in dims)
                rows.append((metric["Name"], metric["Unit"], pairs, values if isinstance(values, list) else [values]))
    return rows


def _values(records: list[dict[str, Any]], metric: str, **dims: str) -> list[float]:
    wanted = frozenset({("service", "gateway"), *dims.items()})
    return [v for name, _, pairs, values in _published(records) if name == metric and pairs == wanted for v in values]


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(namespace=NAMESPACE, service="gateway")


def _trace(**changes: Any) -> RequestTrace:
    trace = RequestTrace(request_id="req-1", tenant=TENANT, started_at=1_000.0)
    trace.alias, trace.target, trace.provider = "chat-default", "bedrock-nova-lite", "bedrock"
    trace.attempts, trace.input_tokens, trace.output_tokens, trace.cost_usd = 2, 120, 30, 0.0000144
    trace.guard = [
        GuardVerdict("input", "redact", {"EMAIL": 2, "PROMPT_INJECTION": 1}),
        GuardVerdict("output", "allow", {}),
    ]
    trace.stage_ms = {"parse": 0.4, "input_guard": 3.0, "provider": 850.0, "output_guard": 2.0, "mystery": 1.0}
    for name, value in changes.items():
        setattr(trace, name, value)
    return trace


ATTEMPTS = (
    Attempt("bedrock-claude-haiku", ProviderFailureKind.THROTTLED.value, 40.0),
    Attempt("bedrock-nova-lite", "ok", 810.0),
)


def test_a_served_request_publishes_the_catalogue_metrics_with_units_and_bounded_dimensions(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:
    emit_request_metrics(metrics, _trace(cache="miss"), attempts=ATTEMPTS, clock=lambda: 1_001.5)
    records = _records(capsys.readouterr().out)

    assert {_directive(r)["Namespace"] for r in records} == {"LLMOps"}
    for name, unit, pairs, _ in _published(records):
        spec = metric_spec(name)
        assert unit == spec.unit.value
        assert spec.has_dimensions({d for d, _ in pairs}), (name, pairs)
        assert not {d for d, _ in pairs} & FORBIDDEN_DIMENSIONS

    for scope in ({}, {"alias": "chat-default"}, {"target": "bedrock-nova-lite"}):
        assert _values(records, "Requests", **scope) == [1.0]
        assert _values(records, "gen_ai.server.request.duration", **scope) == [1.5]
        assert _values(records, "Fallbacks", **scope) == [1.0]
        assert _values(records, "CacheMisses", **scope) == [1.0]
        assert _values(records, "CostUSD", **scope) == [0.0000144]
    assert _values(records, "gen_ai.client.token.usage", **{"gen_ai.token.type": "input"}) == [120.0]
    output_tokens = {"target": "bedrock-nova-lite", "gen_ai.token.type": "output"}
    assert _values(records, "gen_ai.client.token.usage", **output_tokens) == [30.0]
    assert _values(records, "ProviderThrottles", target="bedrock-claude-haiku") == [1.0]
    assert _values(records, "ProviderCalls", target="bedrock-nova-lite") == [1.0]
    assert _values(records, "ProviderErrors", target="bedrock-nova-lite") == [0.0]
    assert _values(records, "gen_ai.client.operation.duration", target="bedrock-nova-lite") == [0.81]
    assert _values(records, "GuardRedactions", guard_stage="input") == [1.0]
    assert _values(records, "GuardFindings", guard_stage="input", guard_type="pii") == [2.0]
    assert _values(records, "GuardFindings", guard_stage="input", guard_type="prompt_injection") == [1.0]
    assert _values(records, "GuardBlocks", target="bedrock-nova-lite") == [0.0]  # the output verdict only
    assert _values(records, "StageDuration", stage="provider") == [850.0]
    assert not [row for row in _published(records) if ("stage", "mystery") in row[2]]
    failures = {"Errors", "QuotaRejections", "RoutingFailures"}
    assert not [row for row in _published(records) if row[0] in failures and row[3] != [0.0]]


def test_every_request_stage_is_published_as_a_stage_duration(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:
    timed = {stage: float(index + 1) for index, stage in enumerate(RequestStage)}
    emit_request_metrics(metrics, _trace(stage_ms=timed))
    records = _records(capsys.readouterr().out)
    for stage, elapsed_ms in timed.items():
        assert _values(records, "StageDuration", stage=stage.value) == [elapsed_ms], stage


def test_the_request_record_carries_the_request_id_and_outcome_as_properties_for_logs_insights(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:
    emit_request_metrics(metrics, _trace(status=502, error_code="upstream_error", target=""), attempts=ATTEMPTS[:1])
    records = _records(capsys.readouterr().out)
    request = next(r for r in records if "Requests" in r)
    assert (request["request_id"], request["status"], request["error_code"], request["attempts"]) == (
        "req-1",
        502,
        "upstream_error",
        2,
    )
    assert _values(records, "Errors", status_class="5xx") == [1.0]
    assert _values(records, "Errors", alias="chat-default", status_class="5xx") == [1.0]
    assert _values(records, "RoutingFailures") == [1.0]
    assert _values(records, "Fallbacks") == [0.0]


def test_quota_rejections_count_by_reason_and_unrouted_aliases_are_never_dimensions(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = RequestTrace(request_id="req-2", tenant=TENANT, status=429, error_code="insufficient_quota")
    trace.alias = "whatever-the-caller-typed"
    emit_request_metrics(metrics, trace)
    records = _records(capsys.readouterr().out)
    assert _values(records, "QuotaRejections", reason="insufficient_quota") == [1.0]
    assert _values(records, "Errors", status_class="4xx") == [1.0]
    assert "whatever-the-caller-typed" not in json.dumps(records)


def test_without_the_attempt_list_failed_calls_are_counted_in_total_only(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:
    emit_request_metrics(metrics, _trace(attempts=3))
    records = _records(capsys.readouterr().out)
    assert _values(records, "ProviderErrors") == [2.0, 0.0]
    assert _values(records, "ProviderCalls", target="bedrock-nova-lite") == [1.0]
    assert _values(records, "gen_ai.client.operation.duration", target="bedrock-nova-lite") == []


def test_a_completion_returned_without_an_output_verdict_counts_as_a_guard_bypass(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:
    emit_request_metrics(metrics, _trace(guard=[GuardVerdict("input", "allow", {})]))
    assert _values(_records(capsys.readouterr().out), "GuardBypasses") == [1.0]


def test_an_output_block_counts_per_target_and_per_guard_type(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:
    verdicts = [GuardVerdict("input", "allow", {}), GuardVerdict("output", "block", {"SYSTEM_PROMPT_LEAK": 1})]
    emit_request_metrics(metrics, _trace(status=400, error_code="content_blocked", guard=verdicts))
    records = _records(capsys.readouterr().out)
    assert _values(records, "GuardBlocks", target="bedrock-nova-lite") == [1.0]
    assert _values(records, "GuardBlocks", guard_stage="output", guard_type="system_prompt_leak") == [1.0]
    assert sum(_values(records, "GuardBlocks")) == 1.0


def test_a_cache_hit_counts_as_a_hit_without_provider_calls(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:
    emit_request_metrics(metrics, _trace(cache="hit", attempts=0, cost_usd=0.0))
    records = _records(capsys.readouterr().out)
    assert _values(records, "CacheHits", alias="chat-default") == [1.0]
    assert _values(records, "ProviderCalls") == []
    assert _values(records, "Fallbacks") == [0.0]


def test_guard_types_stay_bounded() -> None:
    assert guard_type("US_SSN") is GuardType.PII
    assert guard_type("GITHUB_TOKEN") is GuardType.SECRET
    assert guard_type("DENIED_TOPIC") is GuardType.DENIED_TOPIC
    assert guard_type("PERSON_FROM_A_PLUGIN") is GuardType.OTHER


def test_feedback_publishes_the_negative_rate_by_target(metrics: Metrics, capsys: pytest.CaptureFixture[str]) -> None:
    feedback = Feedback(
        request_id="req-1",
        tenant_id="tenant-acme",
        user="jane.doe@example.com",
        score=parse_score("down"),
        created_at=1.0,
        label=FeedbackLabel.HALLUCINATION,
        comment="[EMAIL_1] says it is wrong",
        target_id="sm-llama3-8b-candidate",
        alias="llama3-8b",
    )
    emit_feedback_metrics(metrics, feedback)
    out = capsys.readouterr().out
    records = _records(out)
    assert _values(records, "FeedbackNegative", target="sm-llama3-8b-candidate") == [1.0]
    assert _values(records, "Feedback", alias="llama3-8b") == [1.0]
    assert "jane.doe" not in out and "says it is wrong" not in out and "tenant-acme" not in out


def test_a_keys_later_ratings_of_a_request_publish_nothing(
    metrics: Metrics, capsys: pytest.CaptureFixture[str]
) -> None:
    # The canary gates on these metrics: re-posting, or rating as more users, is not more votes.
    rerating = Feedback("req-1", "tenant-acme", "u2", parse_score("down"), 2.0, key_id="key1", opens_vote=False)
    emit_feedback_metrics(metrics, rerating)
    assert _values(_records(capsys.readouterr().out), "FeedbackNegative") == []


def test_emission_errors_never_reach_the_request(metrics: Metrics, caplog: pytest.LogCaptureFixture) -> None:
    emit_request_metrics(metrics, _trace(stage_ms={"parse": "not a number"}))
    assert [r.getMessage() for r in caplog.records] == ["request metrics not emitted"]


def test_every_catalogued_metric_has_a_unit_and_a_service_scoped_dimension_set() -> None:
    for spec in CATALOGUE:
        assert spec.dimension_sets
        assert all(dims[0] == "service" for dims in spec.dimension_sets)


# --- a real request carrying seeded PII -------------------------------------------------------


class _EchoProvider:
    """Answers with the prompt it was sent, so a leak in the output would reach the metrics too."""

    def complete(self, target: Target, request: ChatRequest, *, timeout_s: float | None = None) -> Completion:
        text = " ".join(m.content for m in request.messages)
        return Completion(f"You said: {text}", FinishReason.STOP, Usage(40, 20))


class _FailingProvider:
    def complete(self, target: Target, request: ChatRequest, *, timeout_s: float | None = None) -> Completion:
        raise ProviderError(ProviderFailureKind.UNAVAILABLE, "model error", target_id=target.id)


class _NoPrompts:
    def resolve(self, ref: PromptRef, tenant_id: str | None = None) -> ResolvedPrompt:
        raise AssertionError("no prompt template in these requests")


class _NoCache:
    def get(self, tenant_id: str, key: str, now: float) -> CacheEntry | None:
        return None

    def put(self, entry: CacheEntry) -> bool:
        return False


class _Ledger:
    def reserve(
        self, tenant: TenantContext, request_id: str, demand: Demand, now: float, *, release_at: int | None = None
    ) -> Reservation:
        return Reservation(request_id, tenant.tenant_id, tenant.key_id, (), now)

    def settle(self, reservation: Reservation, actual: Actual, usage: UsageEntry | None, now: float) -> SettleOutcome:
        return SettleOutcome(applied=True)

    def release(self, reservation: Reservation, now: float) -> SettleOutcome:
        return SettleOutcome(applied=True)

    def usage(self, tenant: TenantContext, now: float) -> list[WindowStatus]:
        return []


@dataclass
class _Audit:
    records: list[AuditRecord]

    def write(self, record: AuditRecord) -> object:
        self.records.append(record)
        return None

    def settle_and_write(self, settlement: PendingSettlement, record: AuditRecord, now: float) -> SettleOutcome:
        self.records.append(record)
        return SettleOutcome(applied=True)


@pytest.fixture
def endpoint(metrics: Metrics) -> Iterator[Callable[[dict[Provider, Any]], ChatEndpoint]]:
    def build(providers: dict[Provider, Any]) -> ChatEndpoint:
        completions = CompletionService(routes=FileRouteSource(), providers=providers)
        return ChatEndpoint(
            completions,
            GuardPolicies(),
            _Ledger(),
            _Audit([]),
            audit_pepper="pepper",
            prompts=_NoPrompts(),
            cache=_NoCache(),
            on_finished=partial(emit_request_metrics, metrics),
        )

    yield build


def _pii_request(model: str, with_system: bool) -> ChatCompletionRequest:
    prompt = (
        "Email jane.doe@example.com or call +1 415 555 0134; card 4111 1111 1111 1111, "
        "SSN 078-05-1120. Codeword zebra-canary-prompt-91f3."
    )
    system = [{"role": "system", "content": "Be brief."}] if with_system else []
    return ChatCompletionRequest.model_validate(
        {"model": model, "messages": [*system, {"role": "user", "content": prompt}]}
    )


@pytest.mark.parametrize("with_system", [True, False])
@pytest.mark.parametrize("model", ["chat-default", "jane.doe@example.com"])
@pytest.mark.parametrize("provider", [_EchoProvider, _FailingProvider])
def test_no_prompt_text_or_pii_canary_ever_reaches_the_emf_output(
    endpoint: Callable[[dict[Provider, Any]], ChatEndpoint],
    capsys: pytest.CaptureFixture[str],
    model: str,
    provider: type[Any],
    with_system: bool,
) -> None:
    chat = endpoint({Provider.BEDROCK: provider(), Provider.SAGEMAKER: provider()})
    with contextlib.suppress(GatewayError):
        chat.handle(_pii_request(model, with_system), TENANT, "req-pii")
    out = capsys.readouterr().out
    records = _records(out)
    assert any("Requests" in r for r in records)
    for canary in (*PII_CANARIES, "Be brief", "Codeword", "You said"):
        assert canary not in out
    assert "tenant-acme" not in out and "sk-abc123" not in out
