"""The scheduled sweep of quota reservations whose request never settled them.

A gateway invocation killed at its timeout (or out of memory) neither settles nor releases its
reservation. `DynamoQuotaLedger.sweep` gives such charges back once they are due, each exactly once;
this module builds the ledger from Settings, runs one sweep and publishes `ReservationsExpired`.
Run by functions/reservation_sweeper on an EventBridge schedule, by `llmops serve` on a timer and
by `llmops usage sweep`.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from llmops.adapters import aws_clients
from llmops.adapters.dynamodb.quota_ledger import DynamoQuotaLedger
from llmops.config.env import Settings
from llmops.domain.quotas import SweepReport
from llmops.observability.metrics import NAMESPACE, RESERVATION_SWEEPER_SERVICE, RESERVATIONS_EXPIRED

__all__ = ["SWEEP_LIMIT", "build_sweeper_ledger", "emit_sweep_metric", "sweep_expired_reservations"]

# Per run; a backlog larger than this (a long outage of the sweeper) drains over the next runs.
SWEEP_LIMIT = 1000


def build_sweeper_ledger(settings: Settings) -> DynamoQuotaLedger:
    dynamodb = aws_clients.client("dynamodb", connect_timeout_s=2.0, read_timeout_s=5.0, max_attempts=3)
    return DynamoQuotaLedger(dynamodb, settings.quotas_table, settings.usage_table)


def sweep_expired_reservations(ledger: DynamoQuotaLedger, now: float, *, limit: int = SWEEP_LIMIT) -> SweepReport:
    return ledger.sweep(now, limit=limit)


def emit_sweep_metric(report: SweepReport) -> None:
    """One EMF line: ReservationsExpired (service=reservation-sweeper), 0 included, so the alarm sees data."""
    provider = AmazonCloudWatchEMFProvider(namespace=NAMESPACE, service=RESERVATION_SWEEPER_SERVICE)
    provider.add_metric(name=RESERVATIONS_EXPIRED.name, unit=RESERVATIONS_EXPIRED.unit.value, value=report.released)
    provider.add_metadata(key="record", value="reservation_sweep")
    provider.add_metadata(key="already_settled", value=report.already_settled)
    provider.flush_metrics()
