"""Reservation sweeper Lambda, run every minute by EventBridge: releases quota reservations whose
gateway invocation ended without settling them (see llmops.application.reservation_sweeper).

Thin: read the settings, sweep once, publish the count, return it (counts and tenant ids only).
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from llmops.application.reservation_sweeper import build_sweeper_ledger, emit_sweep_metric, sweep_expired_reservations
from llmops.config.env import Settings

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = sweep_expired_reservations(build_sweeper_ledger(Settings.from_env()), time.time())
    emit_sweep_metric(report)
    logger.info("reservation sweep finished", extra={**report.to_json(), "scheduled_at": event.get("time")})
    return report.to_json()
