"""The chat completion use case: pick a target for an alias, call it, fall back, account for it.

Stages that later capabilities add (guards, quotas, audit) hook in through ports so this module
stays the single place that defines the order of the request path in DESIGN.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from llmops.domain.chat import ChatRequest, Completion
from llmops.domain.errors import BadRequestError, ProviderError, ProviderFailureKind, UpstreamUnavailableError
from llmops.domain.ports import ChatProvider, RouteSource
from llmops.domain.routing import (
    CircuitBreaker,
    Provider,
    Route,
    Target,
    attempt_order,
    check_output_budget,
    cost_usd,
    default_draw,
)
from llmops.domain.tenancy import TenantContext

__all__ = ["Attempt", "CompletionResult", "CompletionService", "RoutePlan"]

_STATUS_BY_FAILURE = {
    ProviderFailureKind.THROTTLED: 503,
    ProviderFailureKind.UNAVAILABLE: 502,
    ProviderFailureKind.TIMEOUT: 504,
}


@dataclass(frozen=True, slots=True)
class Attempt:
    target_id: str
    outcome: str  # "ok" or a ProviderFailureKind value
    latency_ms: float


@dataclass(frozen=True, slots=True)
class CompletionResult:
    completion: Completion
    route: Route
    target: Target
    cost_usd: float
    attempts: tuple[Attempt, ...]
    stage_ms: Mapping[str, float] = field(default_factory=dict)

    @property
    def fell_back(self) -> bool:
        return len(self.attempts) > 1


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """The targets one request will try, in order, before any money is spent."""

    route: Route
    targets: tuple[Target, ...]


@dataclass(slots=True)
class CompletionService:
    routes: RouteSource
    providers: Mapping[Provider, ChatProvider]
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    clock: Callable[[], float] = time.monotonic
    draw: Callable[[], float] = default_draw

    def plan(self, request: ChatRequest, tenant: TenantContext) -> RoutePlan:
        table = self.routes.current()
        route = table.route(request.model, tenant.allowed_models)
        order = attempt_order(route, self.draw(), lambda t: self.breaker.is_open(t, self.clock()))
        # max_tokens is checked against the first choice; fallbacks that cannot honour it are
        # dropped instead of failing a request the first choice could serve.
        check_output_budget(table.targets[order[0]], request.max_tokens)
        targets = tuple(
            table.targets[t]
            for t in order
            if request.max_tokens is None or request.max_tokens <= table.targets[t].max_output_tokens
        )
        return RoutePlan(route, targets)

    def complete(self, request: ChatRequest, tenant: TenantContext) -> CompletionResult:
        return self.execute(self.plan(request, tenant), request)

    def execute(self, plan: RoutePlan, request: ChatRequest) -> CompletionResult:
        attempts: list[Attempt] = []
        last: ProviderError | None = None
        for target in plan.targets:
            started = self.clock()
            try:
                completion = self.providers[target.provider].complete(target, request)
            except ProviderError as exc:
                attempts.append(Attempt(target.id, exc.kind.value, (self.clock() - started) * 1000))
                if not exc.retryable:
                    raise BadRequestError(
                        f"The model behind '{plan.route.alias}' rejected the request: {exc.message}",
                    ) from exc
                self.breaker.record_failure(target.id, self.clock())
                last = exc
                continue
            attempts.append(Attempt(target.id, "ok", (self.clock() - started) * 1000))
            self.breaker.record_success(target.id)
            return CompletionResult(
                completion=completion,
                route=plan.route,
                target=target,
                cost_usd=cost_usd(target, completion.usage),
                attempts=tuple(attempts),
                stage_ms={"provider": sum(a.latency_ms for a in attempts)},
            )

        kind = last.kind if last else ProviderFailureKind.UNAVAILABLE
        raise UpstreamUnavailableError(
            f"All targets for model '{plan.route.alias}' failed (last failure: {kind.value}). "
            "Retry later or use another model.",
            status=_STATUS_BY_FAILURE.get(kind, 502),
            code={"throttled": "upstream_throttled", "timeout": "upstream_timeout"}.get(kind.value, "upstream_error"),
            retry_after_s=1 if kind is ProviderFailureKind.THROTTLED else None,
            attempts=tuple(attempts),
        )
