"""Exact quotas: windows per key and per tenant, reserved before the provider call, settled after.

The arithmetic lives here; the ledger that makes it atomic across windows (one conditional
DynamoDB transaction) is an adapter behind `QuotaLedger`. Amounts are integers in the window's
unit - requests, tokens, or nano-USD - so the ledger never adds floats.

Lifecycle of one request:

1. `worst_case_demand` - estimated input tokens + max_tokens (or the target's output cap), and
   their cost at the target's prices.
2. `QuotaLedger.reserve` - charges the demand to every window that has a limit, all or nothing;
   raises `RateLimitExceededError` / `InsufficientQuotaError` (429) naming the first full window.
3. `QuotaLedger.settle` - moves each charge to the provider-reported amount (`settle_deltas`) and
   records per-alias usage; or `QuotaLedger.release` when the call failed (`release_deltas`). On the
   request path the settle (`settlement_for`) or release (`release_for`) is booked with the
   request's audit record instead, in one write (`RequestBooks.settle_and_write`).
4. A function killed mid-request (its timeout, out of memory) does neither. So the reservation is
   recorded with a `release_at` just past the invocation's deadline, and a scheduled sweeper
   releases what is still held then (`ExpiredReservation`), exactly once: settle, release and the
   sweep all claim the same per-request sentinel, and only the first one applies.
"""

from __future__ import annotations

import calendar
import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from llmops.domain.audit import AuditRecord
from llmops.domain.chat import ChatRequest, Usage
from llmops.domain.errors import GatewayError
from llmops.domain.routing import Target
from llmops.domain.tenancy import Limits, TenantContext
from llmops.domain.token_estimate import estimate_prompt_tokens

__all__ = [
    "NANOS_PER_USD",
    "RESERVATION_GRACE_S",
    "Actual",
    "Charge",
    "Demand",
    "ExpiredReservation",
    "InsufficientQuotaError",
    "PendingSettlement",
    "QuotaLedger",
    "RateLimitExceededError",
    "RequestBooks",
    "Reservation",
    "Scope",
    "SettleOutcome",
    "SweepReport",
    "UsageEntry",
    "Window",
    "WindowDelta",
    "WindowKind",
    "WindowStatus",
    "actual_from_usage",
    "cost_nanos",
    "plan_charges",
    "plan_windows",
    "rejection_for",
    "release_at_for",
    "release_deltas",
    "release_for",
    "settle_deltas",
    "settlement_for",
    "usd_to_nanos",
    "window_statuses",
    "worst_case_demand",
]

NANOS_PER_USD = 1_000_000_000
# How long past its invocation's deadline a reservation is left to its request before the sweeper
# releases it: covers clock skew between hosts and a settle already in flight when time ran out.
RESERVATION_GRACE_S = 60


class WindowKind(StrEnum):
    REQUESTS_PER_MINUTE = "rpm"
    TOKENS_PER_MINUTE = "tpm"
    TOKENS_PER_DAY = "tpd"
    USD_PER_MONTH = "usd_month"

    @property
    def period(self) -> str:
        return {"rpm": "minute", "tpm": "minute", "tpd": "day", "usd_month": "month"}[self.value]

    @property
    def unit(self) -> str:
        return {"rpm": "requests", "tpm": "tokens", "tpd": "tokens", "usd_month": "usd_nanos"}[self.value]

    @property
    def is_budget(self) -> bool:
        """Budgets answer `insufficient_quota`; rate windows answer `rate_limit_exceeded`."""
        return self in (WindowKind.TOKENS_PER_DAY, WindowKind.USD_PER_MONTH)

    @property
    def description(self) -> str:
        return {
            "rpm": "requests per minute",
            "tpm": "tokens per minute",
            "tpd": "tokens per day",
            "usd_month": "monthly budget (USD)",
        }[self.value]


class Scope(StrEnum):
    KEY = "key"
    TENANT = "tenant"


class RateLimitExceededError(GatewayError):
    status = 429
    error_type = "requests"
    code = "rate_limit_exceeded"


class InsufficientQuotaError(GatewayError):
    status = 429
    error_type = "insufficient_quota"
    code = "insufficient_quota"


def usd_to_nanos(usd: float) -> int:
    return round(usd * NANOS_PER_USD)


def cost_nanos(target: Target, input_tokens: int, output_tokens: int) -> int:
    """Cost in nano-USD, rounded up: a ledger that rounds down under-charges at scale."""
    # Prices are per 1k tokens; 1e9 / 1e3 = 1e6 nano-USD per (token x price).
    raw = input_tokens * target.price_per_1k_input_usd * 1e6 + output_tokens * target.price_per_1k_output_usd * 1e6
    return math.ceil(raw - 1e-6)  # the epsilon absorbs float noise so exact products don't round up


@dataclass(frozen=True, slots=True)
class Window:
    """One counter: a scope (key or tenant), a kind and the calendar slot it covers (UTC)."""

    scope: Scope
    tenant_id: str
    key_id: str  # "" for tenant-wide windows
    kind: WindowKind
    label: str  # yyyymmddHHMM, yyyymmdd or yyyymm
    start: int  # epoch seconds
    end: int  # epoch seconds, exclusive
    limit: int  # in `kind.unit`

    @property
    def item_key(self) -> str:
        owner = self.key_id if self.scope is Scope.KEY else "-"
        return f"q#{self.scope.value}#{self.tenant_id}#{owner}#{self.kind.value}#{self.label}"

    @property
    def expires_at(self) -> int:
        """TTL: kept a while past the window's end so `usage` and late settles still find it."""
        slack = {"minute": 3600, "day": 2 * 86400, "month": 7 * 86400}[self.kind.period]
        return self.end + slack

    def retry_after_s(self, now: float) -> int:
        return max(1, math.ceil(self.end - now))

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope.value,
            "tenant_id": self.tenant_id,
            "key_id": self.key_id,
            "kind": self.kind.value,
            "label": self.label,
            "start": self.start,
            "end": self.end,
            "limit": self.limit,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Window:
        return cls(
            scope=Scope(data["scope"]),
            tenant_id=str(data["tenant_id"]),
            key_id=str(data["key_id"]),
            kind=WindowKind(data["kind"]),
            label=str(data["label"]),
            start=int(data["start"]),
            end=int(data["end"]),
            limit=int(data["limit"]),
        )


def _slot(period: str, now: float) -> tuple[str, int, int]:
    moment = datetime.fromtimestamp(now, tz=UTC)
    if period == "minute":
        start = int(now) - int(now) % 60
        return moment.strftime("%Y%m%d%H%M"), start, start + 60
    if period == "day":
        start = int(now) - int(now) % 86400
        return moment.strftime("%Y%m%d"), start, start + 86400
    first = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    days = calendar.monthrange(moment.year, moment.month)[1]
    start = int(first.timestamp())
    return moment.strftime("%Y%m"), start, start + days * 86400


def _limit(limits: Limits, kind: WindowKind) -> int | None:
    """The limit in the window's unit; None (or 0, per `Limits`) means no window."""
    value: float | None = {
        WindowKind.REQUESTS_PER_MINUTE: limits.requests_per_minute,
        WindowKind.TOKENS_PER_MINUTE: limits.tokens_per_minute,
        WindowKind.TOKENS_PER_DAY: limits.tokens_per_day,
        WindowKind.USD_PER_MONTH: limits.monthly_budget_usd,
    }[kind]
    if not value:
        return None
    return usd_to_nanos(value) if kind is WindowKind.USD_PER_MONTH else int(value)


def plan_windows(tenant: TenantContext, now: float) -> list[Window]:
    """Every window with a limit for this key and its tenant, key windows first."""
    # Every window of a key is the same all through a minute (minute, day and month slots alike):
    # planned once per key and minute, not on every request.
    return list(_windows_in_minute(tenant, int(now) - int(now) % 60))


@functools.lru_cache(maxsize=1024)
def _windows_in_minute(tenant: TenantContext, now: int) -> tuple[Window, ...]:
    windows: list[Window] = []
    for scope, limits in ((Scope.KEY, tenant.limits), (Scope.TENANT, tenant.tenant_limits)):
        for kind in WindowKind:
            limit = _limit(limits, kind)
            if limit is None:
                continue
            label, start, end = _slot(kind.period, now)
            windows.append(
                Window(
                    scope=scope,
                    tenant_id=tenant.tenant_id,
                    key_id=tenant.key_id if scope is Scope.KEY else "",
                    kind=kind,
                    label=label,
                    start=start,
                    end=end,
                    limit=limit,
                )
            )
    return tuple(windows)


@dataclass(frozen=True, slots=True)
class Demand:
    """The worst case one request may consume."""

    tokens: int
    cost_nanos: int
    requests: int = 1

    def amount(self, kind: WindowKind) -> int:
        if kind is WindowKind.REQUESTS_PER_MINUTE:
            return self.requests
        if kind is WindowKind.USD_PER_MONTH:
            return self.cost_nanos
        return self.tokens


Actual = Demand  # what the provider reported, in the same units


@dataclass(frozen=True, slots=True)
class Charge:
    """What one request reserves in one window."""

    window: Window
    amount: int


@dataclass(frozen=True, slots=True)
class WindowDelta:
    """A change to one window's usage: a settlement's actual minus reserved, or a release."""

    window: Window
    delta: int


def worst_case_demand(
    request: ChatRequest, target: Target, extra_texts: Iterable[str] = (), *, input_tokens: int | None = None
) -> Demand:
    """Estimated input + the most the target may write back, and the cost of that at its prices.

    Callers check `max_tokens` against the target first (`routing.check_output_budget`), so an
    impossible request is a 400 before anything is reserved. `input_tokens` lets a caller pricing
    several targets estimate the prompt once.
    """
    if input_tokens is None:
        input_tokens = estimate_prompt_tokens(request, extra_texts)
    output_tokens = request.max_tokens if request.max_tokens is not None else target.max_output_tokens
    return Demand(
        tokens=input_tokens + output_tokens,
        cost_nanos=cost_nanos(target, input_tokens, output_tokens),
    )


def actual_from_usage(target: Target, usage: Usage) -> Actual:
    return Demand(
        tokens=usage.total_tokens,
        cost_nanos=cost_nanos(target, usage.input_tokens, usage.output_tokens),
    )


def rejection_for(window: Window, now: float, *, demand: int | None = None) -> GatewayError:
    """The 429 for a full window; `demand` is set when the request alone exceeds the limit."""
    who = f"key {window.key_id}" if window.scope is Scope.KEY else f"tenant {window.tenant_id}"
    limit = f"{window.limit / NANOS_PER_USD:.2f}" if window.kind is WindowKind.USD_PER_MONTH else str(window.limit)
    retry = window.retry_after_s(now)
    if demand is not None:
        message = (
            f"This request could need {demand} {window.kind.unit}, more than the {window.kind.description} "
            f"limit of {limit} for {who}. Lower max_tokens or shorten the prompt."
        )
    elif window.kind.is_budget:
        message = f"You exceeded the {window.kind.description} of {limit} for {who}. It resets in {retry} s."
    else:
        message = f"Rate limit reached for {window.kind.description} (limit {limit}) for {who}. Retry after {retry} s."
    if window.kind.is_budget:
        return InsufficientQuotaError(message, retry_after_s=retry)
    error = RateLimitExceededError(message, retry_after_s=retry)
    if window.kind is WindowKind.TOKENS_PER_MINUTE:
        error.error_type = "tokens"  # OpenAI's type for token-rate limits
    return error


def plan_charges(tenant: TenantContext, demand: Demand, now: float) -> tuple[Charge, ...]:
    """The charges a reservation makes; raises at once if the request alone can never fit."""
    charges: list[Charge] = []
    for window in plan_windows(tenant, now):
        amount = demand.amount(window.kind)
        if amount > window.limit:
            raise rejection_for(window, now, demand=amount)
        charges.append(Charge(window, amount))
    return tuple(charges)


@dataclass(frozen=True, slots=True)
class Reservation:
    """What a request reserved before the model call, to be settled after it."""

    request_id: str
    tenant_id: str
    key_id: str
    charges: tuple[Charge, ...]
    created_at: float
    # False when the ledger was unavailable and the tenant fails open: the charges hold the
    # windows with amount 0, so settle still records the actual usage when the store is back.
    reserved: bool = True


def release_at_for(now: float, remaining_s: float) -> int:
    """When a reservation made at `now`, in an invocation with `remaining_s` left, may be swept."""
    return math.ceil(now + remaining_s + RESERVATION_GRACE_S)


@dataclass(frozen=True, slots=True)
class ExpiredReservation:
    """A reservation still held after its `release_at`: its request never settled nor released it."""

    request_id: str
    tenant_id: str
    key_id: str
    charges: tuple[Charge, ...]
    release_at: int

    def as_reservation(self) -> Reservation:
        return Reservation(self.request_id, self.tenant_id, self.key_id, self.charges, float(self.release_at))


@dataclass(frozen=True, slots=True)
class SweepReport:
    """One sweep: `released` reservations were given back; `already_settled` lost the race to their request."""

    released: int = 0
    already_settled: int = 0
    tenants: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"released": self.released, "already_settled": self.already_settled, "tenants": list(self.tenants)}


@dataclass(frozen=True, slots=True)
class UsageEntry:
    """One admitted request's contribution to the per-tenant, per-alias, per-day usage table."""

    tenant_id: str
    day: str  # yyyy-mm-dd, UTC
    alias: str
    input_tokens: int
    output_tokens: int
    cost_nanos: int
    requests: int = 1

    @classmethod
    def for_request(cls, tenant_id: str, alias: str, target: Target, usage: Usage, now: float) -> UsageEntry:
        return cls(
            tenant_id=tenant_id,
            day=datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%d"),
            alias=alias,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_nanos=cost_nanos(target, usage.input_tokens, usage.output_tokens),
        )


def settle_deltas(reservation: Reservation, actual: Actual) -> tuple[WindowDelta, ...]:
    """Move each charge from the reserved amount to the actual one; unchanged windows are skipped."""
    deltas = (WindowDelta(c.window, actual.amount(c.window.kind) - c.amount) for c in reservation.charges)
    return tuple(d for d in deltas if d.delta != 0)


def release_deltas(reservation: Reservation) -> tuple[WindowDelta, ...]:
    """Undo a reservation whose provider call failed: nothing was consumed, requests included."""
    return tuple(WindowDelta(c.window, -c.amount) for c in reservation.charges if c.amount != 0)


@dataclass(frozen=True, slots=True)
class PendingSettlement:
    """A settle or release the ledger could not write: kept durable (DLQ) and applied later.

    `request_id` makes applying it idempotent (the ledger writes a per-request sentinel).
    """

    request_id: str
    tenant_id: str
    deltas: tuple[WindowDelta, ...]
    usage: UsageEntry | None
    reason: str = ""

    @property
    def changes_nothing(self) -> bool:
        """A release of a reservation that charged nothing: there is nothing to write."""
        return not self.deltas and self.usage is None

    def to_dict(self) -> dict[str, Any]:
        usage = None
        if self.usage is not None:
            u = self.usage
            usage = {
                "tenant_id": u.tenant_id,
                "day": u.day,
                "alias": u.alias,
                "input_tokens": u.input_tokens,
                "output_tokens": u.output_tokens,
                "cost_nanos": u.cost_nanos,
                "requests": u.requests,
            }
        return {
            "request_id": self.request_id,
            "tenant_id": self.tenant_id,
            "deltas": [{"window": d.window.to_dict(), "delta": d.delta} for d in self.deltas],
            "usage": usage,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PendingSettlement:
        usage_data = data.get("usage")
        usage = None
        if usage_data:
            usage = UsageEntry(
                tenant_id=str(usage_data["tenant_id"]),
                day=str(usage_data["day"]),
                alias=str(usage_data["alias"]),
                input_tokens=int(usage_data["input_tokens"]),
                output_tokens=int(usage_data["output_tokens"]),
                cost_nanos=int(usage_data["cost_nanos"]),
                requests=int(usage_data.get("requests", 1)),
            )
        return cls(
            request_id=str(data["request_id"]),
            tenant_id=str(data["tenant_id"]),
            deltas=tuple(WindowDelta(Window.from_dict(d["window"]), int(d["delta"])) for d in data["deltas"]),
            usage=usage,
            reason=str(data.get("reason", "")),
        )


def settlement_for(reservation: Reservation, actual: Actual, usage: UsageEntry | None) -> PendingSettlement:
    """The settle of `reservation` to what the request actually used, as one value to apply."""
    return PendingSettlement(reservation.request_id, reservation.tenant_id, settle_deltas(reservation, actual), usage)


def release_for(reservation: Reservation) -> PendingSettlement:
    """The release of `reservation` (no target answered), as one value to apply."""
    return PendingSettlement(reservation.request_id, reservation.tenant_id, release_deltas(reservation), None)


@dataclass(frozen=True, slots=True)
class SettleOutcome:
    """`pending` is set when the write failed after retries: the caller must keep it durable."""

    applied: bool
    pending: PendingSettlement | None = None


@dataclass(frozen=True, slots=True)
class WindowStatus:
    """One row of GET /v1/usage."""

    scope: Scope
    kind: WindowKind
    limit: int
    used: int
    resets_at: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def to_json(self) -> dict[str, Any]:
        def shown(value: int) -> float | int:
            return value / NANOS_PER_USD if self.kind is WindowKind.USD_PER_MONTH else value

        return {
            "scope": self.scope.value,
            "window": self.kind.value,
            "description": self.kind.description,
            "unit": "usd" if self.kind is WindowKind.USD_PER_MONTH else self.kind.unit,
            "limit": shown(self.limit),
            "used": shown(max(0, self.used)),
            "remaining": shown(self.remaining),
            "resets_at": self.resets_at,
        }


def window_statuses(windows: Iterable[Window], used: Mapping[str, int]) -> list[WindowStatus]:
    """Joins the planned windows with the ledger's counters (missing counter = nothing used)."""
    return [WindowStatus(w.scope, w.kind, w.limit, used.get(w.item_key, 0), w.end) for w in windows]


class QuotaLedger(Protocol):
    def reserve(
        self, tenant: TenantContext, request_id: str, demand: Demand, now: float, *, release_at: int | None = None
    ) -> Reservation:
        """All or nothing across windows; raises a 429 error, or `StoreUnavailableError("quota")` (503).

        `release_at` (epoch seconds, `release_at_for`) is when the sweeper may give the charges
        back if the request never settles; None lets the ledger assume the default function timeout.
        """
        ...

    def settle(
        self, reservation: Reservation, actual: Actual, usage: UsageEntry | None, now: float
    ) -> SettleOutcome: ...

    def release(self, reservation: Reservation, now: float) -> SettleOutcome: ...

    def usage(self, tenant: TenantContext, now: float) -> list[WindowStatus]: ...


class RequestBooks(Protocol):
    """Where a request is booked once it is over: its audit record, and with it, for a request that
    reserved quota, the settle or release of its reservation.

    `settle_and_write` applies `settlement` exactly once and writes `record`, in one write where the
    store allows it (the DynamoDB adapter: one transaction). If the settle could not be applied it is
    parked (`SettleOutcome.pending`) and the record says so (`settle_pending`). Neither raises unless
    the record could not be kept at all (the audit log's dead-letter queue failed too).
    """

    def write(self, record: AuditRecord) -> object:
        """The record alone (a refusal, or a request that never reserved): one write."""
        ...

    def settle_and_write(self, settlement: PendingSettlement, record: AuditRecord, now: float) -> SettleOutcome: ...
