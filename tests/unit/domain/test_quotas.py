from datetime import UTC, datetime

import pytest

from llmops.domain.chat import ChatRequest, Message, Role, Usage
from llmops.domain.errors import StoreUnavailableError
from llmops.domain.quotas import (
    NANOS_PER_USD,
    Charge,
    Demand,
    InsufficientQuotaError,
    PendingSettlement,
    RateLimitExceededError,
    Reservation,
    Scope,
    UsageEntry,
    WindowKind,
    actual_from_usage,
    cost_nanos,
    plan_charges,
    plan_windows,
    rejection_for,
    release_deltas,
    settle_deltas,
    window_statuses,
    worst_case_demand,
)
from llmops.domain.routing import Provider, Target
from llmops.domain.tenancy import Limits, TenantContext

NOW = datetime(2026, 2, 28, 23, 59, 30, tzinfo=UTC).timestamp()

TARGET = Target(
    id="t",
    provider=Provider.BEDROCK,
    model_id="m",
    price_per_1k_input_usd=0.001,
    price_per_1k_output_usd=0.002,
    context_window=8000,
    max_output_tokens=1000,
)


def tenant(**kw: object) -> TenantContext:
    return TenantContext(tenant_id="acme", key_id="abcd1234", **kw)  # type: ignore[arg-type]


def test_windows_exist_only_for_set_limits_and_zero_means_unlimited() -> None:
    ctx = tenant(
        limits=Limits(requests_per_minute=10, tokens_per_minute=0, tokens_per_day=None),
        tenant_limits=Limits(monthly_budget_usd=5.0),
    )
    windows = plan_windows(ctx, NOW)
    assert [(w.scope, w.kind) for w in windows] == [
        (Scope.KEY, WindowKind.REQUESTS_PER_MINUTE),
        (Scope.TENANT, WindowKind.USD_PER_MONTH),
    ]
    assert windows[1].limit == 5 * NANOS_PER_USD


def test_window_slots_are_utc_calendar_periods() -> None:
    ctx = tenant(limits=Limits(requests_per_minute=1, tokens_per_day=1, monthly_budget_usd=1.0))
    by_kind = {w.kind: w for w in plan_windows(ctx, NOW)}
    minute = by_kind[WindowKind.REQUESTS_PER_MINUTE]
    assert minute.label == "202602282359"
    assert minute.end - minute.start == 60
    assert minute.retry_after_s(NOW) == 30
    day = by_kind[WindowKind.TOKENS_PER_DAY]
    assert (day.label, day.end - day.start) == ("20260228", 86400)
    month = by_kind[WindowKind.USD_PER_MONTH]
    assert month.label == "202602"
    assert month.end == datetime(2026, 3, 1, tzinfo=UTC).timestamp()
    assert month.expires_at > month.end


def test_key_and_tenant_windows_have_distinct_items_scoped_by_tenant() -> None:
    ctx = tenant(limits=Limits(requests_per_minute=1), tenant_limits=Limits(requests_per_minute=5))
    key_window, tenant_window = plan_windows(ctx, NOW)
    assert key_window.item_key == "q#key#acme#abcd1234#rpm#202602282359"
    assert tenant_window.item_key == "q#tenant#acme#-#rpm#202602282359"


def test_worst_case_demand_uses_max_tokens_or_the_target_cap() -> None:
    request = ChatRequest(model="a", messages=(Message(Role.USER, "hello there"),), max_tokens=50)
    demand = worst_case_demand(request, TARGET)
    uncapped = worst_case_demand(ChatRequest(model="a", messages=request.messages), TARGET)
    assert uncapped.tokens - demand.tokens == TARGET.max_output_tokens - 50
    assert demand.requests == 1
    input_tokens = demand.tokens - 50
    assert demand.cost_nanos == cost_nanos(TARGET, input_tokens, 50)


def test_cost_is_in_nano_usd_and_rounds_up() -> None:
    assert cost_nanos(TARGET, 1000, 1000) == 3_000_000  # $0.003
    assert cost_nanos(TARGET, 1, 0) == 1000
    cheap = Target(
        id="c",
        provider=Provider.BEDROCK,
        model_id="m",
        price_per_1k_input_usd=0.00006,
        price_per_1k_output_usd=0.0,
        context_window=10,
        max_output_tokens=10,
    )
    assert cost_nanos(cheap, 1, 0) == 60


def test_a_request_larger_than_a_window_is_rejected_before_any_write() -> None:
    ctx = tenant(limits=Limits(tokens_per_minute=100))
    with pytest.raises(RateLimitExceededError) as info:
        plan_charges(ctx, Demand(tokens=101, cost_nanos=0), NOW)
    assert "max_tokens" in info.value.message
    assert info.value.error_type == "tokens"
    with pytest.raises(InsufficientQuotaError):
        plan_charges(tenant(limits=Limits(tokens_per_day=100)), Demand(tokens=101, cost_nanos=0), NOW)


def test_charges_carry_the_amount_in_each_windows_unit() -> None:
    ctx = tenant(limits=Limits(requests_per_minute=9, tokens_per_day=900, monthly_budget_usd=1.0))
    charges = plan_charges(ctx, Demand(tokens=30, cost_nanos=777), NOW)
    assert {c.window.kind: c.amount for c in charges} == {
        WindowKind.REQUESTS_PER_MINUTE: 1,
        WindowKind.TOKENS_PER_DAY: 30,
        WindowKind.USD_PER_MONTH: 777,
    }


@pytest.mark.parametrize(
    ("kind", "error", "code", "error_type"),
    [
        (WindowKind.REQUESTS_PER_MINUTE, RateLimitExceededError, "rate_limit_exceeded", "requests"),
        (WindowKind.TOKENS_PER_MINUTE, RateLimitExceededError, "rate_limit_exceeded", "tokens"),
        (WindowKind.TOKENS_PER_DAY, InsufficientQuotaError, "insufficient_quota", "insufficient_quota"),
        (WindowKind.USD_PER_MONTH, InsufficientQuotaError, "insufficient_quota", "insufficient_quota"),
    ],
)
def test_rejections_follow_openai_codes_with_retry_after(
    kind: WindowKind, error: type, code: str, error_type: str
) -> None:
    limits = {
        WindowKind.REQUESTS_PER_MINUTE: Limits(requests_per_minute=1),
        WindowKind.TOKENS_PER_MINUTE: Limits(tokens_per_minute=1),
        WindowKind.TOKENS_PER_DAY: Limits(tokens_per_day=1),
        WindowKind.USD_PER_MONTH: Limits(monthly_budget_usd=1.0),
    }[kind]
    (window,) = plan_windows(tenant(limits=limits), NOW)
    rejected = rejection_for(window, NOW)
    assert isinstance(rejected, error)
    assert (rejected.status, rejected.code, rejected.error_type) == (429, code, error_type)
    assert rejected.retry_after_s == 30  # every window here ends at midnight, 30 s away


def test_quota_unavailable_is_a_503_the_caller_may_retry() -> None:
    # One mechanism for every store: the quota store's refusal is StoreUnavailableError("quota").
    refusal = StoreUnavailableError("quota", "Quota accounting is temporarily unavailable.")
    assert (refusal.status, refusal.code, refusal.retry_after_s) == (503, "quota_unavailable", 1)


def _reservation() -> Reservation:
    ctx = tenant(limits=Limits(requests_per_minute=9, tokens_per_minute=900, monthly_budget_usd=1.0))
    return Reservation("r1", "acme", "abcd1234", plan_charges(ctx, Demand(tokens=500, cost_nanos=9000), NOW), NOW)


def test_settle_moves_token_and_cost_windows_to_actuals_and_keeps_the_request() -> None:
    deltas = {d.window.kind: d.delta for d in settle_deltas(_reservation(), Demand(tokens=120, cost_nanos=2000))}
    assert deltas == {WindowKind.TOKENS_PER_MINUTE: -380, WindowKind.USD_PER_MONTH: -7000}


def test_release_returns_everything() -> None:
    deltas = {d.window.kind: d.delta for d in release_deltas(_reservation())}
    assert deltas == {
        WindowKind.REQUESTS_PER_MINUTE: -1,
        WindowKind.TOKENS_PER_MINUTE: -500,
        WindowKind.USD_PER_MONTH: -9000,
    }


def test_an_unreserved_admission_settles_the_full_actuals() -> None:
    reserved = _reservation()
    unreserved = Reservation(
        "r1", "acme", "abcd1234", tuple(Charge(c.window, 0) for c in reserved.charges), NOW, reserved=False
    )
    deltas = {d.window.kind: d.delta for d in settle_deltas(unreserved, Demand(tokens=120, cost_nanos=2000))}
    assert deltas == {
        WindowKind.REQUESTS_PER_MINUTE: 1,
        WindowKind.TOKENS_PER_MINUTE: 120,
        WindowKind.USD_PER_MONTH: 2000,
    }


def test_actuals_and_usage_entries_come_from_provider_usage() -> None:
    usage = Usage(input_tokens=100, output_tokens=20)
    assert actual_from_usage(TARGET, usage) == Demand(tokens=120, cost_nanos=cost_nanos(TARGET, 100, 20))
    entry = UsageEntry.for_request("acme", "chat", TARGET, usage, NOW)
    assert (entry.day, entry.alias, entry.requests) == ("2026-02-28", "chat", 1)


def test_pending_settlement_round_trips_through_json_shapes() -> None:
    reservation = _reservation()
    usage = UsageEntry("acme", "2026-02-28", "chat", 1, 2, 3)
    pending = PendingSettlement("r1", "acme", release_deltas(reservation), usage, reason="Throttling")
    assert PendingSettlement.from_dict(pending.to_dict()) == pending


def test_window_status_reports_usd_in_dollars_and_never_negative_remaining() -> None:
    ctx = tenant(limits=Limits(monthly_budget_usd=2.0, requests_per_minute=3))
    windows = plan_windows(ctx, NOW)
    statuses = window_statuses(windows, {windows[0].item_key: 5, windows[1].item_key: NANOS_PER_USD // 2})
    rpm, usd = (s.to_json() for s in statuses)
    assert (rpm["used"], rpm["remaining"], rpm["limit"]) == (5, 0, 3)
    assert (usd["unit"], usd["limit"], usd["remaining"]) == ("usd", 2.0, 1.5)
