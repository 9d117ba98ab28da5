"""The drift monitor's EMF line: `DriftScore` per alias under the drift monitor's own service value."""

from __future__ import annotations

from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from llmops.domain.drift import DriftReport
from llmops.observability.metrics import DRIFT_MONITOR_SERVICE, DRIFT_SCORE, NAMESPACE, Dim

__all__ = ["emit_drift_metric"]


def emit_drift_metric(alias: str, report: DriftReport) -> None:
    """One EMF line: DriftScore with (service, alias), the feature distances as properties."""
    provider = AmazonCloudWatchEMFProvider(namespace=NAMESPACE, service=DRIFT_MONITOR_SERVICE)
    provider.add_dimension(name=Dim.ALIAS.value, value=alias)
    provider.add_metric(name=DRIFT_SCORE.name, unit=DRIFT_SCORE.unit.value, value=report.score)
    provider.add_metadata(key="record", value="drift")
    provider.add_metadata(key="drift_parts", value=dict(report.parts))
    provider.add_metadata(key="recent_count", value=report.recent_count)
    provider.add_metadata(key="reference_count", value=report.reference_count)
    provider.flush_metrics()
