"""The scheduled drift monitor's settings and the names it writes under, shared by the job
(`llmops.application.drift_monitor`), the local stack and the CDK app.

The CDK app sets the environment (`DRIFT_MONITOR_ENV`) and points the alarm-started retraining runs
at `latest_dataset_key`, so both read those here rather than from the job's module. The default
thresholds are the retraining input's too (`llmops.workflows.retraining_input.Thresholds`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from llmops.config.env import EnvVar
from llmops.domain.guard import safe_regex

__all__ = [
    "DEFAULT_DRIFT_THRESHOLD",
    "DEFAULT_NEGATIVE_FEEDBACK_THRESHOLD",
    "DRIFT_MONITOR_ENV",
    "DriftMonitorSettings",
    "latest_dataset_key",
    "retraining_run_name",
    "staged_dataset_key",
]

# A retraining run starts when a signal reaches its threshold.
DEFAULT_DRIFT_THRESHOLD = 0.3
DEFAULT_NEGATIVE_FEEDBACK_THRESHOLD = 0.15

# Env var -> settings field.
DRIFT_MONITOR_ENV: Mapping[str, str] = {
    EnvVar.AUDIT_TABLE: "audit_table",
    EnvVar.FEEDBACK_TABLE: "feedback_table",
    EnvVar.ARTIFACT_BUCKET: "artifact_bucket",
    EnvVar.RETRAINING_STATE_MACHINE_ARN: "retraining_state_machine_arn",
    EnvVar.RETRAINING_INFERENCE_IMAGE: "inference_image",
    EnvVar.DRIFT_RECENT_HOURS: "recent_hours",
    EnvVar.DRIFT_REFERENCE_HOURS: "reference_hours",
    EnvVar.DRIFT_MIN_SAMPLES: "min_samples",
    EnvVar.DRIFT_THRESHOLD: "drift_threshold",
    EnvVar.NEGATIVE_FEEDBACK_THRESHOLD: "negative_feedback_threshold",
    EnvVar.DRIFT_START_RETRAINING: "start_retraining",
}

_STAGING_PREFIX = "staging/drift-monitor"
_NAME_UNSAFE = safe_regex.compile(r"[^A-Za-z0-9_-]+")


class DriftMonitorSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    audit_table: str = Field(min_length=1)
    feedback_table: str = Field(min_length=1)
    artifact_bucket: str = Field(min_length=1)
    retraining_state_machine_arn: str = ""
    inference_image: str = ""  # without one no run can register a model package, so none starts
    recent_hours: float = Field(default=24.0, gt=0, le=24 * 31)
    reference_hours: float = Field(default=24.0 * 7, gt=0, le=24 * 365)
    min_samples: int = Field(default=30, ge=1)
    drift_threshold: float = Field(default=DEFAULT_DRIFT_THRESHOLD, ge=0, le=1)
    negative_feedback_threshold: float = Field(default=DEFAULT_NEGATIVE_FEEDBACK_THRESHOLD, ge=0, le=1)
    # Off where alarms on the published metrics start the runs (the deployed stack), so one crossing
    # starts one run; on for the local stack, whose alarms moto never evaluates.
    start_retraining: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> DriftMonitorSettings:
        values = {name: environ[var] for var, name in DRIFT_MONITOR_ENV.items() if environ.get(var, "") != ""}
        return cls.model_validate(values)


def _day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y%m%d")


def _safe(alias: str) -> str:
    return _NAME_UNSAFE.sub("-", alias).strip("-") or "alias"


def staged_dataset_key(alias: str, now: float) -> str:
    return f"{_STAGING_PREFIX}/{_safe(alias)}/{_day(now)}.jsonl"


def latest_dataset_key(alias: str) -> str:
    """Where the newest export for `alias` waits; alarm-started runs name this key in their input."""
    return f"{_STAGING_PREFIX}/{_safe(alias)}/latest.jsonl"


def retraining_run_name(alias: str, now: float) -> str:
    """One name per alias and day, so a retried invocation finds the run it already started."""
    suffix = f"-drift-monitor-{_day(now)}"
    return f"retraining-{_safe(alias)[: 80 - len('retraining-') - len(suffix)]}{suffix}"
