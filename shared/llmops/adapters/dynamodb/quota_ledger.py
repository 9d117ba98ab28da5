"""The `QuotaLedger` port on DynamoDB: one conditional transaction to reserve, one to settle.

On the request path the settle (with the per-alias usage increment) rides in the audit record's
transaction (`request_books.DynamoRequestBooks`, through `settle_transaction`), so an admitted
request costs two write calls in all: the reserve, then settle + audit record. `write_calls`
counts the ledger's own for the benchmark.

Failure handling:
- reserve: a full window -> 429 naming it (from the transaction's CancellationReasons);
  contention between transactions (`TransactionConflict`) -> a few jittered retries; anything
  else (throttling after botocore's standard retries, timeouts, a missing table) -> 503
  `quota_unavailable`, or, for tenants with `quota_fail_open`, an unreserved admission whose
  actual usage is still recorded at settle.
- settle / release: retried like reserve; if it still fails the adjustment is returned as a
  `PendingSettlement` and handed to `on_settle_failure` (the lead wires the SQS dead-letter queue,
  drained by `llmops audit replay` through `apply_pending`). A per-request sentinel item makes
  every application idempotent, so nothing is lost and nothing counts twice.
- a request that never settles (its function was killed): the reservation record the reserve
  transaction wrote is found by `sweep` once due, and released in one transaction that claims the
  same sentinel - so a late settle and the sweep cannot both apply. A settlement parked in the
  dead-letter queue and replayed after its reservation was swept is skipped as already applied:
  that request is counted as released.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from llmops.adapters.dynamodb.quota_items import (
    RESERVATION_SHARDS,
    SettleTransaction,
    cancellation_codes,
    expired_reservations_query,
    reservation_from_item,
    reservation_record,
    reservation_record_key,
    reserve_transaction,
    settle_transaction,
    sweep_transaction,
    used_by_key,
    window_read_request,
)
from llmops.adapters.dynamodb.store_errors import unavailable_as
from llmops.config.timeouts import GATEWAY_TIMEOUT_S
from llmops.domain.errors import StoreUnavailableError
from llmops.domain.quotas import (
    Actual,
    Charge,
    Demand,
    ExpiredReservation,
    PendingSettlement,
    Reservation,
    SettleOutcome,
    SweepReport,
    UsageEntry,
    WindowStatus,
    plan_charges,
    plan_windows,
    rejection_for,
    release_at_for,
    release_for,
    settlement_for,
    window_statuses,
)
from llmops.domain.tenancy import TenantContext

__all__ = ["DynamoQuotaLedger"]

_log = logging.getLogger(__name__)

_RETRYABLE_REASONS = frozenset({"None", "TransactionConflict"})
_MAX_BACKOFF_S = 0.1


class _ContentionError(Exception):
    """Every cancellation reason was a transaction conflict: safe to try again."""


class DynamoQuotaLedger:
    def __init__(
        self,
        client: Any,
        quotas_table: str,
        usage_table: str,
        *,
        on_settle_failure: Callable[[PendingSettlement], None] | None = None,
        conflict_attempts: int = 4,
        backoff_s: float = 0.01,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._quotas = quotas_table
        self._usage = usage_table
        self._on_settle_failure = on_settle_failure
        self._attempts = max(1, conflict_attempts)
        self._backoff_s = backoff_s
        self._sleep = sleep
        self._lock = threading.Lock()
        self._write_calls = 0

    @property
    def write_calls(self) -> int:
        """TransactWriteItems calls made so far (each retry counts): the benchmark's cost driver."""
        return self._write_calls

    # -- reserve ---------------------------------------------------------------------------------

    def reserve(
        self, tenant: TenantContext, request_id: str, demand: Demand, now: float, *, release_at: int | None = None
    ) -> Reservation:
        charges = plan_charges(tenant, demand, now)  # 429 at once if the request can never fit
        reservation = Reservation(request_id, tenant.tenant_id, tenant.key_id, charges, now)
        if not charges:
            return reservation
        due = release_at if release_at is not None else release_at_for(now, GATEWAY_TIMEOUT_S)
        record = reservation_record(request_id, tenant.tenant_id, tenant.key_id, charges, due)
        items = reserve_transaction(self._quotas, charges, record)
        try:
            self._transact_with_retries(items, already_applied_index=None)
        except ClientError as exc:
            codes = cancellation_codes(exc.response)
            full = next((i for i, code in enumerate(codes) if code == "ConditionalCheckFailed"), None)
            if full is not None and full < len(charges):
                raise rejection_for(charges[full].window, now) from None
            return self._unavailable(tenant, reservation, exc)
        except (BotoCoreError, _ContentionError) as exc:
            return self._unavailable(tenant, reservation, exc)
        return reservation

    def _unavailable(self, tenant: TenantContext, reservation: Reservation, exc: Exception) -> Reservation:
        _log.warning(
            "quota reserve failed",
            extra={"tenant": tenant.tenant_id, "request_id": reservation.request_id, "error": _code(exc)},
        )
        if not tenant.quota_fail_open:
            raise StoreUnavailableError(
                "quota", "Quota accounting is temporarily unavailable; the request was not sent. Retry shortly."
            ) from None
        unreserved = tuple(Charge(c.window, 0) for c in reservation.charges)
        return replace(reservation, charges=unreserved, reserved=False)

    # -- settle / release ------------------------------------------------------------------------

    def settle(self, reservation: Reservation, actual: Actual, usage: UsageEntry | None, now: float) -> SettleOutcome:
        return self.apply_or_park(settlement_for(reservation, actual, usage), now)

    def release(self, reservation: Reservation, now: float) -> SettleOutcome:
        return self.apply_or_park(release_for(reservation), now)

    def settle_transaction(self, pending: PendingSettlement, now: float) -> SettleTransaction:
        """The TransactWriteItems items that apply `pending` once (its sentinel says when it was already)."""
        return settle_transaction(
            self._quotas,
            self._usage,
            request_id=pending.request_id,
            deltas=pending.deltas,
            usage=pending.usage,
            now=now,
        )

    def apply_pending(self, pending: PendingSettlement, now: float) -> bool:
        """Applies a settle or release exactly once: False if it had already been applied.

        Raises botocore errors when the table is still unavailable (the caller keeps the message).
        """
        if pending.changes_nothing:
            return True
        txn = self.settle_transaction(pending, now)
        try:
            self._transact_with_retries(txn.items, already_applied_index=txn.sentinel_index)
        except _AlreadyAppliedError:
            return False
        return True

    def apply_or_park(self, pending: PendingSettlement, now: float) -> SettleOutcome:
        """Applies `pending` (retried); if it still fails, parks it (`on_settle_failure`) and says so."""
        try:
            self.apply_pending(pending, now)
        except (ClientError, BotoCoreError, _ContentionError) as exc:
            parked = replace(pending, reason=_code(exc))
            _log.error(
                "quota settle failed; parking it",
                extra={"tenant": pending.tenant_id, "request_id": pending.request_id, "error": parked.reason},
            )
            if self._on_settle_failure is not None:
                self._on_settle_failure(parked)
            return SettleOutcome(applied=False, pending=parked)
        return SettleOutcome(applied=True)

    # -- reservations whose request never settled ------------------------------------------------

    def sweep(self, now: float, *, limit: int = 500) -> SweepReport:
        """Releases up to `limit` reservations due at `now`, each exactly once (see `expire`)."""
        released, already, tenants = 0, 0, set[str]()
        for reservation in self.expired_reservations(now, limit=limit):
            if self.expire(reservation, now):
                released += 1
                tenants.add(reservation.tenant_id)
            else:
                already += 1
        return SweepReport(released=released, already_settled=already, tenants=tuple(sorted(tenants)))

    def expired_reservations(self, now: float, *, limit: int = 500) -> list[ExpiredReservation]:
        """Reservations still recorded after their `release_at`, oldest first within each shard.

        The index is eventually consistent, so a reservation settled a moment ago may still be
        listed; `expire` then finds its record gone and changes nothing.
        """
        found: list[ExpiredReservation] = []
        for shard in range(RESERVATION_SHARDS):
            request = expired_reservations_query(self._quotas, shard, now, limit)
            while len(found) < limit:
                page = self._client.query(**request)
                found.extend(reservation_from_item(item) for item in page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    break
                request = {**request, "ExclusiveStartKey": page["LastEvaluatedKey"]}
            if len(found) >= limit:
                return found[:limit]
        return found

    def expire(self, reservation: ExpiredReservation, now: float) -> bool:
        """Gives an expired reservation's charges back; False if its request settled or released first."""
        txn = sweep_transaction(self._quotas, reservation, now)
        try:
            self._transact_with_retries(txn.items, already_applied_index=txn.record_index)
        except _AlreadyAppliedError:
            return False
        except ClientError as exc:
            codes = cancellation_codes(exc.response)
            if len(codes) > txn.sentinel_index and codes[txn.sentinel_index] == "ConditionalCheckFailed":
                # Settled, yet its record survived (a settle from before records existed): drop it.
                self._client.delete_item(TableName=self._quotas, Key=reservation_record_key(reservation.request_id))
                return False
            raise
        _log.warning(
            "released an expired quota reservation",
            extra={"tenant": reservation.tenant_id, "request_id": reservation.request_id},
        )
        return True

    # -- GET /v1/usage ---------------------------------------------------------------------------

    def usage(self, tenant: TenantContext, now: float) -> list[WindowStatus]:
        """The caller's own windows only: keys are derived from its tenant and key id."""
        windows = plan_windows(tenant, now)
        if not windows:
            return []
        request = window_read_request(self._quotas, windows)
        items: list[dict[str, Any]] = []
        with unavailable_as("quota"):
            for _ in range(5):
                page = self._client.batch_get_item(**request)
                items.extend(page.get("Responses", {}).get(self._quotas, []))
                unprocessed = page.get("UnprocessedKeys") or {}
                if not unprocessed:
                    break
                request = {"RequestItems": unprocessed}
        return window_statuses(windows, used_by_key(items))

    # -- internals -------------------------------------------------------------------------------

    def _transact_with_retries(self, items: list[dict[str, Any]], *, already_applied_index: int | None) -> None:
        for attempt in range(self._attempts):
            with self._lock:
                self._write_calls += 1
            try:
                self._client.transact_write_items(TransactItems=items)
                return
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                codes = cancellation_codes(exc.response)
                if (
                    already_applied_index is not None
                    and len(codes) > already_applied_index
                    and codes[already_applied_index] == "ConditionalCheckFailed"
                ):
                    raise _AlreadyAppliedError() from None
                if not codes or not set(codes) <= _RETRYABLE_REASONS:
                    raise
            if attempt + 1 < self._attempts:
                # Full jitter keeps contending Lambdas from retrying in lockstep.
                self._sleep(random.uniform(0, min(_MAX_BACKOFF_S, self._backoff_s * 2**attempt)))
        raise _ContentionError("transaction conflicts persisted")


class _AlreadyAppliedError(Exception):
    pass


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__
