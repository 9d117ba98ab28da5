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

__all__ = ["Attempt", "CompletionResult", "CompletionService"]

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


@dataclass(slots=True)
class CompletionService:
    routes: RouteSource
    providers: Mapping[Provider, ChatProvider]
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    clock: Callable[[], float] = time.monotonic
    draw: Callable[[], float] = default_draw

    def resolve(self, request: ChatRequest, tenant: TenantContext) -> Route:
        return self.routes.current().route(request.model, tenant.allowed_models)

    def complete(self, request: ChatRequest, tenant: TenantContext) -> CompletionResult:
        table = self.routes.current()
        route = table.route(request.model, tenant.allowed_models)
        order = attempt_order(route, self.draw(), lambda t: self.breaker.is_open(t, self.clock()))
        # max_tokens is checked against the first choice: fallbacks with smaller windows are skipped
        # below instead of failing a request the primary could serve.
        check_output_budget(table.targets[order[0]], request.max_tokens)

        attempts: list[Attempt] = []
        last: ProviderError | None = None
        for target_id in order:
            target = table.targets[target_id]
            if request.max_tokens is not None and request.max_tokens > target.max_output_tokens:
                continue
            started = self.clock()
            try:
                completion = self.providers[target.provider].complete(target, request)
            except ProviderError as exc:
                elapsed = (self.clock() - started) * 1000
                attempts.append(Attempt(target_id, exc.kind.value, elapsed))
                if not exc.retryable:
                    raise BadRequestError(
                        f"The model behind '{route.alias}' rejected the request: {exc.message}",
                    ) from exc
                self.breaker.record_failure(target_id, self.clock())
                last = exc
                continue
            elapsed = (self.clock() - started) * 1000
            attempts.append(Attempt(target_id, "ok", elapsed))
            self.breaker.record_success(target_id)
            return CompletionResult(
                completion=completion,
                route=route,
                target=target,
                cost_usd=cost_usd(target, completion.usage),
                attempts=tuple(attempts),
                stage_ms={"provider": sum(a.latency_ms for a in attempts)},
            )

        kind = last.kind if last else ProviderFailureKind.UNAVAILABLE
        raise UpstreamUnavailableError(
            f"All targets for model '{route.alias}' failed (last failure: {kind.value}). "
            "Retry later or use another model.",
            status=_STATUS_BY_FAILURE.get(kind, 502),
            code={"throttled": "upstream_throttled", "timeout": "upstream_timeout"}.get(
                kind.value, "upstream_error"
            ),
            retry_after_s=1 if kind is ProviderFailureKind.THROTTLED else None,
        )
