"""One request's quota reservation, from reserve to settle or release: the mechanism chat and
embeddings share (docs/architecture.md, "The request path").

The reservation is taken before the model is called, released when no target answered, and settled
to the tokens the model reported once it did, exactly once either way. `settle` and `release` only
decide it (`trace.settlement`): `ChatEndpoint.record` writes it with the request's audit record, in
one write after the answer's last byte (`RequestBooks.settle_and_write`), and `trace.settle_pending`
then records a settle or release the quota store did not apply (the sweeper or a replay finishes it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from llmops.domain.chat import Usage
from llmops.domain.deadline import Deadline
from llmops.domain.errors import GatewayError
from llmops.domain.quotas import (
    Demand,
    QuotaLedger,
    Reservation,
    UsageEntry,
    actual_from_usage,
    release_at_for,
    release_for,
    settlement_for,
)
from llmops.domain.request_trace import RequestTrace
from llmops.domain.routing import Target

__all__ = ["call_releasing_on_failure", "release", "reserve", "settle"]

_Answer = TypeVar("_Answer")


def reserve(ledger: QuotaLedger, trace: RequestTrace, demand: Demand, deadline: Deadline) -> Reservation:
    now = time.time()
    # Past this moment the invocation is over, settled or not: the sweeper may release it.
    release_at = release_at_for(now, deadline.remaining_s()) if deadline.bounded else None
    return ledger.reserve(trace.tenant, trace.request_id, demand, now, release_at=release_at)


def call_releasing_on_failure(reservation: Reservation, trace: RequestTrace, call: Callable[[], _Answer]) -> _Answer:
    """`call()` (the provider stage); when it fails, the attempts are recorded and the reservation released."""
    try:
        return call()
    except GatewayError as error:
        trace.provider_attempts = tuple(getattr(error, "attempts", ()))
        trace.attempts = len(trace.provider_attempts)
        release(reservation, trace)
        raise
    except Exception:
        release(reservation, trace)
        raise


def settle(reservation: Reservation, trace: RequestTrace, alias: str, target: Target, usage: Usage) -> None:
    """The reservation is to be settled to `usage`, written with the audit record."""
    entry = UsageEntry.for_request(trace.tenant.tenant_id, alias, target, usage, time.time())
    trace.settlement = settlement_for(reservation, actual_from_usage(target, usage), entry)


def release(reservation: Reservation, trace: RequestTrace) -> None:
    """The reservation is to be given back (no target answered), written with the audit record."""
    released = release_for(reservation)
    trace.settlement = None if released.changes_nothing else released
