"""Drift monitor Lambda, run on an EventBridge schedule: drift score, staged dataset, retraining.

Thin: read the settings from the environment, build the AWS-backed ports, call
`llmops.application.drift_monitor.run_drift_monitor`, log and return the per-alias summary (counts
and scores only, never text).
"""

from __future__ import annotations

import os
import time
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from llmops.application.drift_monitor import run_drift_monitor
from llmops.application.drift_monitor_wiring import build_monitor_ports
from llmops.config.drift_monitor import DriftMonitorSettings

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = DriftMonitorSettings.from_env(os.environ)
    outcomes = run_drift_monitor(settings, build_monitor_ports(settings), now=time.time())
    summary = [outcome.to_dict() for outcome in outcomes]
    logger.info("drift monitor finished", extra={"aliases": summary, "scheduled_at": event.get("time")})
    return {"aliases": summary}
