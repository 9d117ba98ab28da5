"""Function timeouts and the request path's time budget, in one place for CDK and the local stack.

`infra/` deploys the functions with these timeouts and sets the provider timeouts below on the
gateway; the local front door gives each invocation a Lambda context that runs out at the same
moment, so a hung model behaves the same on `llmops serve` as in AWS.
"""

from __future__ import annotations

__all__ = [
    "AUTHORIZER_TIMEOUT_S",
    "BUFFERED_ANSWER_TIMEOUT_S",
    "DEADLINE_MARGIN_S",
    "GATEWAY_TIMEOUT_S",
    "PROVIDER_CONNECT_TIMEOUT_S",
    "PROVIDER_MAX_ATTEMPTS",
    "RESERVATION_SWEEP_SCHEDULE_MINUTES",
    "STREAM_IDLE_TIMEOUT_S",
    "SWEEPER_TIMEOUT_S",
    "provider_read_timeout_s",
]

# The gateway function's timeout, and its API Gateway integration's. The integration streams
# (responseTransferMode STREAM), which lifts the buffered integration's 29 s limit: a stream may
# last 15 minutes, also Lambda's own maximum, so long generations are not cut.
GATEWAY_TIMEOUT_S = 900
# API Gateway cuts a stream that sends nothing for this long (regional and private endpoints).
STREAM_IDLE_TIMEOUT_S = 300
# A buffered answer (a JSON completion) sends nothing until it is complete, so it must be done
# before the idle timeout; the request's deadline is capped at this for it.
BUFFERED_ANSWER_TIMEOUT_S = STREAM_IDLE_TIMEOUT_S - 10
AUTHORIZER_TIMEOUT_S = 10
SWEEPER_TIMEOUT_S = 60
RESERVATION_SWEEP_SCHEDULE_MINUTES = 1

# Kept back from every provider call for the output guard, quota settle, audit write and response.
DEADLINE_MARGIN_S = 2.0
PROVIDER_CONNECT_TIMEOUT_S = 2.0
# Calls per target for throttling and 5xx answers; a timed-out target is never called twice.
PROVIDER_MAX_ATTEMPTS = 2


def provider_read_timeout_s(function_timeout_s: float) -> float:
    """The longest one provider call may wait for an answer inside a function of that timeout.

    The per-request deadline lowers it further for every call (see `CompletionService`); this is
    the cap for an alias with a single target, which may use all the time there is.
    """
    return max(1.0, function_timeout_s - DEADLINE_MARGIN_S - PROVIDER_CONNECT_TIMEOUT_S)
