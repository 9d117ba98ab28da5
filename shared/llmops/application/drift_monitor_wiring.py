"""The drift monitor's composition root: the AWS-backed ports its Lambda runs the job with.

Kept apart from the gateway's `wiring`, whose imports (providers, guards, quotas) the drift monitor
never needs.
"""

from __future__ import annotations

from typing import Any

from llmops.adapters import aws_clients
from llmops.adapters.drift_monitor_io import (
    DynamoAuditScan,
    DynamoFeedbackReader,
    MonitorPorts,
    S3DatasetStager,
    StepFunctionsRetraining,
)
from llmops.config.drift_monitor import DriftMonitorSettings
from llmops.observability.drift_metric import emit_drift_metric

__all__ = ["build_monitor_ports"]


def build_monitor_ports(settings: DriftMonitorSettings) -> MonitorPorts:
    """The AWS-backed ports, built once per container by the Lambda (never at import time)."""

    def client(service: str) -> Any:
        # A scheduled batch job: generous timeouts and retries, unlike the request path.
        return aws_clients.client(service, connect_timeout_s=5, read_timeout_s=30, max_attempts=5)

    dynamodb = client("dynamodb")
    retraining = (
        StepFunctionsRetraining(client("stepfunctions"), settings.retraining_state_machine_arn)
        if settings.retraining_state_machine_arn
        else None
    )
    return MonitorPorts(
        audit=DynamoAuditScan(dynamodb, settings.audit_table),
        feedback=DynamoFeedbackReader(dynamodb, settings.feedback_table),
        datasets=S3DatasetStager(client("s3"), settings.artifact_bucket),
        retraining=retraining,
        emit=emit_drift_metric,
    )
