"""Drift monitor Lambda, run on an EventBridge schedule: drift score, staged dataset, retraining.

Thin: read the settings from the environment, build the AWS-backed ports, call
`llmops.application.drift_monitor.run_drift_monitor`, log and return the per-alias summary (counts
and scores only, never text).
"""

from __future__ import annotations

import os
import time
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from llmops.application.drift_monitor import (
    DriftMonitorSettings,
    DynamoAuditScan,
    DynamoFeedbackReader,
    MonitorPorts,
    S3DatasetStager,
    StepFunctionsRetraining,
    emit_drift_metric,
    run_drift_monitor,
)

logger = Logger()
tracer = Tracer()

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


def _ports(settings: DriftMonitorSettings) -> MonitorPorts:
    dynamodb = boto3.client("dynamodb", config=_CONFIG)
    retraining = (
        StepFunctionsRetraining(boto3.client("stepfunctions", config=_CONFIG), settings.retraining_state_machine_arn)
        if settings.retraining_state_machine_arn
        else None
    )
    return MonitorPorts(
        audit=DynamoAuditScan(dynamodb, settings.audit_table),
        feedback=DynamoFeedbackReader(dynamodb, settings.feedback_table),
        datasets=S3DatasetStager(boto3.client("s3", config=_CONFIG), settings.artifact_bucket),
        retraining=retraining,
        emit=emit_drift_metric,
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = DriftMonitorSettings.from_env(os.environ)
    outcomes = run_drift_monitor(settings, _ports(settings), now=time.time())
    summary = [outcome.to_dict() for outcome in outcomes]
    logger.info("drift monitor finished", extra={"aliases": summary, "scheduled_at": event.get("time")})
    return {"aliases": summary}
