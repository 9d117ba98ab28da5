"""The chat path's `route` and `provider` stages: pick the targets for an alias, call them within the
request's deadline, fall back, and price the answer.

`execute` answers with a whole completion; `stream` with the completion's events as they arrive.
Both try the plan's targets by one loop (`_first_answer`): a streamed call counts as answered at its
first event, so fallbacks happen only before it, never once text may have reached the caller.

The order of the whole request path is `llmops.application.chat_endpoint`'s (docs/architecture.md,
"The request path"); this module knows nothing of guards, quotas or audit.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from llmops.domain.chat import ChatRequest, Completion, Usage
from llmops.domain.deadline import Deadline
from llmops.domain.errors import BadRequestError, ProviderError, ProviderFailureKind, UpstreamUnavailableError
from llmops.domain.ports import ChatProvider, RouteSource
from llmops.domain.routing import (
    CircuitBreaker,
    Provider,
    Route,
    Target,
    TargetKind,
    attempt_order,
    capable_targets,
    check_output_budget,
    cost_usd,
    default_draw,
)
from llmops.domain.stages import RequestStage
from llmops.domain.streaming import (
    ReasoningDelta,
    StreamEnd,
    StreamEvent,
    StreamingChatProvider,
    TextDelta,
    ToolCallDelta,
)
from llmops.domain.tenancy import TenantContext

__all__ = ["Attempt", "CompletionResult", "CompletionService", "RoutePlan", "StreamingResult", "upstream_failure"]

_Answer = TypeVar("_Answer")

_STATUS_BY_FAILURE = {
    ProviderFailureKind.THROTTLED: 503,
    ProviderFailureKind.UNAVAILABLE: 502,
    ProviderFailureKind.TIMEOUT: 504,
}


@dataclass(frozen=True, slots=True)
class Attempt:
    """One call to one target, and how it ended."""

    target_id: str
    outcome: str  # "ok" or a ProviderFailureKind value
    latency_ms: float


@dataclass(frozen=True, slots=True)
class CompletionResult:
    """A buffered answer with who gave it, after which attempts, at what cost."""

    completion: Completion
    route: Route
    target: Target
    cost_usd: float
    attempts: tuple[Attempt, ...]
    stage_ms: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamingResult:
    """A streamed answer once its first event has arrived: who answers, and the events from the first on.

    `events` yields the first event (already received) and then the rest as the provider sends
    them, ending with one `StreamEnd`. A failure after the first event is raised from it as
    `ProviderError` (there is no fallback once text may have reached the caller). `close()` stops
    the provider read, e.g. when the client disconnects. `attempts` and `stage_ms` cover the calls up
    to the first event: each attempt's latency is its time to first event.
    """

    route: Route
    target: Target
    attempts: tuple[Attempt, ...]
    events: Generator[StreamEvent]
    stage_ms: Mapping[str, float] = field(default_factory=dict)

    def cost_usd(self, usage: Usage) -> float:
        """What `usage` (the `StreamEnd`'s, or counted tokens for a cut stream) costs at this target."""
        return cost_usd(self.target, usage)

    def close(self) -> None:
        self.events.close()


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """The targets one request will try, in order, before any money is spent."""

    route: Route
    targets: tuple[Target, ...]


@dataclass(slots=True)
class CompletionService:
    """Plans a request's route and calls its targets in order until one answers."""

    routes: RouteSource
    providers: Mapping[Provider, ChatProvider]
    # Providers that stream; `stream` serves a target whose provider is missing here by its buffered
    # `complete`, as one text event.
    streaming: Mapping[Provider, StreamingChatProvider] = field(default_factory=dict)
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    clock: Callable[[], float] = time.monotonic
    draw: Callable[[], float] = default_draw
    # The request path's time budget (see `execute`); the defaults keep a service without a
    # deadline behaving as one call per target.
    deadline_margin_s: float = 0.0
    attempts_per_target: int = 1
    min_attempt_s: float = 1.0
    retry_backoff_s: float = 0.05
    sleep: Callable[[float], None] = time.sleep

    def plan(self, request: ChatRequest, tenant: TenantContext) -> RoutePlan:
        table = self.routes.current()
        route = table.route(request.model, tenant.allowed_models)
        table.require_kind(route, TargetKind.CHAT)  # an embedding alias is a 400 naming `model`
        order = attempt_order(route, self.draw(), lambda t: self.breaker.is_open(t, self.clock()))
        # Only targets with every capability the request needs (tools, images, ...) may serve it.
        capable = capable_targets([table.targets[t] for t in order], request.required_capabilities)
        # max_tokens is checked against the first choice; fallbacks that cannot honour it are
        # dropped instead of failing a request the first choice could serve.
        check_output_budget(capable[0], request.max_tokens)
        targets = tuple(t for t in capable if request.max_tokens is None or request.max_tokens <= t.max_output_tokens)
        return RoutePlan(route, targets)

    def execute(self, plan: RoutePlan, request: ChatRequest, deadline: Deadline | None = None) -> CompletionResult:
        """Calls the plan's targets in order, then again while `attempts_per_target` and `deadline` allow.

        The first round tries every target once, so a failing primary costs its fallback nothing but
        the primary's own call. Later rounds retry only throttled or erroring targets: one that
        timed out is never called again (a hung endpoint rarely answers the second time, and the
        wait has already been paid). When a target of the first round no longer fits in the time
        left, the request fails as 504 `upstream_timeout` while the caller can still release the
        reservation, audit and answer.
        """
        completion, target, attempts = self._first_answer(
            plan,
            deadline,
            lambda target, timeout_s: self.providers[target.provider].complete(target, request, timeout_s=timeout_s),
        )
        return CompletionResult(
            completion=completion,
            route=plan.route,
            target=target,
            cost_usd=cost_usd(target, completion.usage),
            attempts=attempts,
            stage_ms={RequestStage.PROVIDER: sum(a.latency_ms for a in attempts)},
        )

    def stream(self, plan: RoutePlan, request: ChatRequest, deadline: Deadline | None = None) -> StreamingResult:
        """Streams the answer of the plan's first target that sends a first event, trying targets as
        `execute` does (same rounds, deadline shares, breaker and errors) up to that event.

        After it, a failure is raised from `StreamingResult.events` as `ProviderError` and recorded
        on the breaker; so is a stream that ends without its `StreamEnd`.
        """
        (first, events), target, attempts = self._first_answer(
            plan, deadline, lambda target, timeout_s: self._open_stream(target, request, timeout_s)
        )
        return StreamingResult(
            route=plan.route,
            target=target,
            attempts=attempts,
            events=self._rest_of_stream(target, first, events),
            stage_ms={RequestStage.PROVIDER: sum(a.latency_ms for a in attempts)},
        )

    def first_answer(
        self,
        plan: RoutePlan,
        deadline: Deadline | None,
        call: Callable[[Target, float | None], _Answer],
    ) -> tuple[_Answer, Target, tuple[Attempt, ...]]:
        """The attempt loop of `execute` (rounds, deadline shares, breaker, errors) for any call on a
        plan's targets: `call(target, timeout_s)` until one answers. `llmops.domain.embeddings` uses it."""
        return self._first_answer(plan, deadline, call)

    def _first_answer(
        self,
        plan: RoutePlan,
        deadline: Deadline | None,
        call: Callable[[Target, float | None], _Answer],
    ) -> tuple[_Answer, Target, tuple[Attempt, ...]]:
        """`call(target, timeout_s)` on the plan's targets until one answers (the loop `execute` documents)."""
        deadline = deadline or Deadline.unbounded(self.clock)
        attempts: list[Attempt] = []
        last: ProviderError | None = None
        pending = list(plan.targets)
        for round_index in range(max(1, self.attempts_per_target)):
            retry: list[Target] = []
            for index, target in enumerate(pending):
                budget = self._call_budget(deadline, more_targets=index + 1 < len(pending))
                if budget is None:
                    if round_index == 0:
                        raise self._out_of_time(plan, attempts)
                    retry = []
                    break
                started = self.clock()
                try:
                    answer = call(target, None if math.isinf(budget) else budget)
                except ProviderError as exc:
                    attempts.append(Attempt(target.id, exc.kind.value, (self.clock() - started) * 1000))
                    if not exc.retryable:
                        raise self._rejected(plan, exc) from exc
                    self.breaker.record_failure(target.id, self.clock())
                    last = exc
                    if exc.kind is not ProviderFailureKind.TIMEOUT:
                        retry.append(target)
                    continue
                attempts.append(Attempt(target.id, "ok", (self.clock() - started) * 1000))
                self.breaker.record_success(target.id)
                return answer, target, tuple(attempts)
            pending = retry
            if not pending:
                break
            # Full jitter, as botocore's standard retries did, and never more than the deadline allows.
            pause = self.retry_backoff_s * 2**round_index * random.random()
            self.sleep(min(pause, deadline.usable_s(self.deadline_margin_s + self.min_attempt_s)))

        kind = last.kind if last else ProviderFailureKind.UNAVAILABLE
        raise upstream_failure(
            f"All targets for model '{plan.route.alias}' failed (last failure: {kind.value}). "
            "Retry later or use another model.",
            kind,
            tuple(attempts),
        )

    def _open_stream(
        self, target: Target, request: ChatRequest, timeout_s: float | None
    ) -> tuple[StreamEvent, Iterator[StreamEvent]]:
        """Starts the target's stream and waits for its first event (the attempt's answer)."""
        streamer = self.streaming.get(target.provider)
        if streamer is not None:
            events = streamer.stream(target, request, timeout_s=timeout_s)
        else:
            events = _buffered_stream(self.providers[target.provider], target, request, timeout_s)
        try:
            return next(events), events
        except StopIteration:
            raise ProviderError(
                ProviderFailureKind.UNAVAILABLE, "The provider's stream ended before any event", target_id=target.id
            ) from None
        except BaseException:
            _close(events)
            raise

    def _rest_of_stream(
        self, target: Target, first: StreamEvent, events: Iterator[StreamEvent]
    ) -> Generator[StreamEvent]:
        try:
            yield first
            if isinstance(first, StreamEnd):
                return
            for event in events:
                yield event
                if isinstance(event, StreamEnd):
                    return
            raise ProviderError(
                ProviderFailureKind.UNAVAILABLE, "The provider's stream ended without its end", target_id=target.id
            )
        except ProviderError:
            self.breaker.record_failure(target.id, self.clock())
            raise
        finally:
            _close(events)

    def _call_budget(self, deadline: Deadline, *, more_targets: bool) -> float | None:
        """Seconds the next call may take (inf: no deadline), or None when none can fit any more.

        While another target remains, a call may use at most half of what is left (but never less
        than `min_attempt_s`), so a hung primary always leaves its fallback as much time as it took.
        """
        usable = deadline.usable_s(self.deadline_margin_s)
        if usable < self.min_attempt_s:
            return None
        if more_targets and math.isfinite(usable):
            return min(usable, max(self.min_attempt_s, usable / 2))
        return usable

    @staticmethod
    def _rejected(plan: RoutePlan, exc: ProviderError) -> BadRequestError:
        # The provider's error code only, never its message: service messages can quote the request
        # (a Bedrock ValidationException names the offending text, a container may echo the prompt).
        code = f" ({exc.error_code})" if exc.error_code else ""
        return BadRequestError(
            f"The model behind '{plan.route.alias}' rejected the request as invalid{code}. "
            "Check the request's messages and parameters against the model's limits."
        )

    @staticmethod
    def _out_of_time(plan: RoutePlan, attempts: list[Attempt]) -> UpstreamUnavailableError:
        return UpstreamUnavailableError(
            f"No target for model '{plan.route.alias}' answered within the request's time limit. "
            "Retry later or use another model.",
            status=504,
            code="upstream_timeout",
            attempts=tuple(attempts),
        )


def upstream_failure(
    message: str, kind: ProviderFailureKind, attempts: tuple[Attempt, ...] = ()
) -> UpstreamUnavailableError:
    """The error a provider failure of `kind` answers as: when no target answered, and when a stream
    fails after its first event (then the caller sends it in the stream, its status in the audit)."""
    return UpstreamUnavailableError(
        message,
        status=_STATUS_BY_FAILURE.get(kind, 502),
        code={"throttled": "upstream_throttled", "timeout": "upstream_timeout"}.get(kind.value, "upstream_error"),
        retry_after_s=1 if kind is ProviderFailureKind.THROTTLED else None,
        attempts=attempts,
    )


def _buffered_stream(
    provider: ChatProvider, target: Target, request: ChatRequest, timeout_s: float | None
) -> Iterator[StreamEvent]:
    """A provider that cannot stream, as a stream: its whole completion as one event, then the end."""
    completion = provider.complete(target, request, timeout_s=timeout_s)
    for block in completion.reasoning:
        yield ReasoningDelta(block.text, block.signature, block.redacted)
    if completion.text:
        yield TextDelta(completion.text)
    for index, call in enumerate(completion.tool_calls):
        yield ToolCallDelta(index, call.arguments, call.id, call.name)
    yield StreamEnd(completion.finish_reason, completion.usage, completion.raw_model)


def _close(events: Iterator[StreamEvent]) -> None:
    close = getattr(events, "close", None)
    if close is not None:
        close()
