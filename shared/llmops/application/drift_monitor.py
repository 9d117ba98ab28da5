"""The scheduled drift job: measure each alias's input drift and feedback, stage a fine-tuning set,
and start the retraining state machine when a threshold is crossed.

One run looks back over two adjacent windows of audit records (recent: the last `recent_hours`;
reference: the `reference_hours` before that) and, per alias:

1. builds model-free samples from the audit records (input tokens, input-guard findings and the
   guard-redacted prompt where the tenant's policy kept one; hashes and nothing are never text),
   and scores drift with `llmops.domain.drift.drift_score`;
2. reads the negative-feedback rate of the recent window from the Feedback table, over trusted
   votes only (`llmops.domain.feedback.trusted_votes`: one per key per request, so made-up `user`
   values cannot stuff the ballot that starts a retraining run);
3. publishes `DriftScore` (service=drift-monitor, alias) as an EMF line, only when both windows
   had enough samples (a score of 0 from too little data must not clear an alarm);
4. exports the rated, redacted examples of both windows with
   `llmops.domain.finetune_export.export_finetune_jsonl` and stages them at
   `staging/drift-monitor/<alias>/<YYYYMMDD>.jsonl`, plus a copy at `.../latest.jsonl`, the key
   the alarm-started runs (fixed EventBridge input) train on;
5. starts a retraining run (`RetrainingInput`, trigger `drift` or `feedback`, the measured
   signals) when a signal reaches its threshold and `start_retraining` is set. The execution is
   named `retraining-<alias>-drift-monitor-<YYYYMMDD>`, so a retried invocation on the same day
   finds the run it already started instead of starting a second one.

Nothing here logs or returns text: reports carry counts, scores and keys only.

The audit read is a filtered Scan of the Audit table (chain entries only). That is fine for a daily
job on a modest trail; a high-volume deployment would feed the job from an export or a stream.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmops.adapters import aws_clients
from llmops.adapters.drift_monitor_io import (
    DynamoAuditScan,
    DynamoFeedbackReader,
    S3DatasetStager,
    StepFunctionsRetraining,
)
from llmops.config.env import EnvVar
from llmops.domain.audit import AuditRecord
from llmops.domain.drift import DriftReport, InputSample, drift_score
from llmops.domain.feedback import Feedback, aggregate, trusted_votes
from llmops.domain.finetune_export import export_finetune_jsonl
from llmops.domain.tenancy import TextRetention
from llmops.observability.metrics import DRIFT_MONITOR_SERVICE, DRIFT_SCORE, NAMESPACE, Dim
from llmops.workflows.retraining_input import RetrainingInput, Signals, Thresholds

__all__ = [
    "DRIFT_MONITOR_ENV",
    "AliasOutcome",
    "AuditReader",
    "DatasetStager",
    "DriftMonitorSettings",
    "FeedbackReader",
    "MonitorPorts",
    "RetrainingStarter",
    "emit_drift_metric",
    "input_sample",
    "latest_dataset_key",
    "retraining_run_name",
    "run_drift_monitor",
    "staged_dataset_key",
]

# Env var -> settings field. Specific to this function, so kept next to the settings it fills.
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
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


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
    drift_threshold: float = Field(default=Thresholds().drift_score, ge=0, le=1)
    negative_feedback_threshold: float = Field(default=Thresholds().negative_feedback_rate, ge=0, le=1)
    # Off where alarms on the published metrics start the runs (the deployed stack), so one crossing
    # starts one run; on for the local stack, whose alarms moto never evaluates.
    start_retraining: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> DriftMonitorSettings:
        values = {name: environ[var] for var, name in DRIFT_MONITOR_ENV.items() if environ.get(var, "") != ""}
        return cls.model_validate(values)

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(
            negative_feedback_rate=self.negative_feedback_threshold,
            drift_score=self.drift_threshold,
        )


# --- ports ------------------------------------------------------------------------------------


class AuditReader(Protocol):
    def records_since(self, since: float) -> Iterable[AuditRecord]: ...


class FeedbackReader(Protocol):
    def feedback_since(self, since: float) -> Iterable[Feedback]: ...


class DatasetStager(Protocol):
    def put(self, key: str, body: bytes) -> None: ...


class RetrainingStarter(Protocol):
    def start(self, name: str, document: Mapping[str, Any]) -> bool:
        """Starts the execution; False when one with this name already exists."""
        ...


@dataclass(frozen=True, slots=True)
class MonitorPorts:
    audit: AuditReader
    feedback: FeedbackReader
    datasets: DatasetStager
    retraining: RetrainingStarter | None
    emit: Callable[[str, DriftReport], None]


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


# --- the job ----------------------------------------------------------------------------------


@dataclass
class AliasOutcome:
    alias: str
    drift: DriftReport
    negative_feedback_rate: float
    ratings: int
    baseline_target: str
    examples: int = 0
    skipped: Mapping[str, int] = field(default_factory=dict)
    dataset_key: str | None = None
    retraining: str = "not_needed"  # not_needed | started | already_started | disabled | <why not>
    execution_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "drift": self.drift.to_dict(),
            "negative_feedback_rate": self.negative_feedback_rate,
            "ratings": self.ratings,
            "baseline_target": self.baseline_target,
            "examples": self.examples,
            "skipped": dict(self.skipped),
            "dataset_key": self.dataset_key,
            "retraining": self.retraining,
            "execution_name": self.execution_name,
        }


def input_sample(record: AuditRecord) -> InputSample:
    """The record's model-free features; text only when the tenant kept the redacted prompt."""
    text = record.prompt.value if record.prompt and record.prompt.mode is TextRetention.REDACTED else None
    findings: Counter[str] = Counter()
    for verdict in record.guard:
        if verdict.stage == "input":
            findings.update(verdict.findings)
    return InputSample(input_tokens=record.input_tokens, text=text or None, guard_findings=dict(findings))


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
    suffix = f"-drift-monitor-{_day(now)}"
    return f"retraining-{_safe(alias)[: 80 - len('retraining-') - len(suffix)]}{suffix}"


def _main_target(records: Sequence[AuditRecord]) -> str:
    # The target that served most of the alias's recent traffic is the one a candidate replaces.
    counts = Counter(r.target for r in records if r.target)
    return counts.most_common(1)[0][0] if counts else ""


def run_drift_monitor(settings: DriftMonitorSettings, ports: MonitorPorts, now: float) -> list[AliasOutcome]:
    recent_start = now - settings.recent_hours * 3600
    reference_start = recent_start - settings.reference_hours * 3600

    recent: dict[str, list[AuditRecord]] = defaultdict(list)
    reference: dict[str, list[AuditRecord]] = defaultdict(list)
    for record in ports.audit.records_since(reference_start):
        if not record.alias or record.started_at >= now:
            continue
        (recent if record.started_at >= recent_start else reference)[record.alias].append(record)

    feedback_by_alias: dict[str, list[Feedback]] = defaultdict(list)
    for item in ports.feedback.feedback_since(reference_start):
        if item.alias:
            feedback_by_alias[item.alias].append(item)

    outcomes = []
    for alias in sorted(recent):
        outcome = _monitor_alias(
            settings, ports, now, alias, recent[alias], reference.get(alias, []), feedback_by_alias.get(alias, [])
        )
        outcomes.append(outcome)
    return outcomes


def _monitor_alias(
    settings: DriftMonitorSettings,
    ports: MonitorPorts,
    now: float,
    alias: str,
    recent: Sequence[AuditRecord],
    reference: Sequence[AuditRecord],
    feedback: Sequence[Feedback],
) -> AliasOutcome:
    recent_start = now - settings.recent_hours * 3600
    report = drift_score(
        [input_sample(r) for r in recent], [input_sample(r) for r in reference], min_samples=settings.min_samples
    )
    votes = trusted_votes(feedback)
    rates = aggregate(v for v in votes if v.created_at >= recent_start)
    outcome = AliasOutcome(
        alias=alias,
        drift=report,
        negative_feedback_rate=round(rates.negative_rate, 6),
        ratings=rates.count,
        baseline_target=_main_target(recent),
    )
    if report.sufficient:
        ports.emit(alias, report)

    # The dataset is labelled by the same votes: a stuffed ballot must not relabel training data.
    export = export_finetune_jsonl([*reference, *recent], votes)
    outcome.examples, outcome.skipped = export.count, export.skipped
    if export.count:
        body = export.jsonl().encode("utf-8")
        outcome.dataset_key = staged_dataset_key(alias, now)
        ports.datasets.put(outcome.dataset_key, body)
        ports.datasets.put(latest_dataset_key(alias), body)

    signals = Signals(negative_feedback_rate=outcome.negative_feedback_rate, drift_score=report.score)
    # Too few ratings make a rate meaningless: one thumbs-down out of two is not a trend.
    feedback_crossed = rates.count >= settings.min_samples and (
        signals.negative_feedback_rate >= settings.negative_feedback_threshold
    )
    drift_crossed = report.sufficient and signals.drift_score >= settings.drift_threshold
    if not (feedback_crossed or drift_crossed):
        return outcome
    outcome.retraining = _start(settings, ports, now, outcome, signals, "drift" if drift_crossed else "feedback")
    return outcome


def _start(
    settings: DriftMonitorSettings,
    ports: MonitorPorts,
    now: float,
    outcome: AliasOutcome,
    signals: Signals,
    trigger: str,
) -> str:
    if not settings.start_retraining or ports.retraining is None:
        return "disabled"
    if outcome.dataset_key is None:
        return "no_examples"
    if not outcome.baseline_target:
        return "no_baseline_target"
    if not settings.inference_image:
        return "no_inference_image"
    try:
        request = RetrainingInput.model_validate(
            {
                "trigger": trigger,
                "alias": outcome.alias,
                "baseline_target": outcome.baseline_target,
                "dataset_key": outcome.dataset_key,
                "inference_image": settings.inference_image,
                "signals": signals.model_dump(),
                "thresholds": settings.thresholds.model_dump(),
            }
        )
    except ValidationError:
        return "invalid_input"
    outcome.execution_name = retraining_run_name(outcome.alias, now)
    started = ports.retraining.start(outcome.execution_name, request.to_execution_input())
    return "started" if started else "already_started"
