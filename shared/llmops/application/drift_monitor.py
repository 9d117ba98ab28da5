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

Only the job is here. Its settings and the names it writes under (dataset keys, run names) are in
`llmops.config.drift_monitor`, its ports and their AWS implementations in
`llmops.adapters.drift_monitor_io`, the Lambda's wiring in `llmops.application.drift_monitor_wiring`
and the `DriftScore` line in `llmops.observability.drift_metric`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from llmops.adapters.drift_monitor_io import MonitorPorts
from llmops.config.drift_monitor import (
    DriftMonitorSettings,
    latest_dataset_key,
    retraining_run_name,
    staged_dataset_key,
)
from llmops.domain.audit import AuditRecord
from llmops.domain.drift import DriftReport, InputSample, drift_score
from llmops.domain.feedback import Feedback, aggregate, trusted_votes
from llmops.domain.finetune_export import export_finetune_jsonl
from llmops.domain.tenancy import TextRetention
from llmops.workflows.retraining_input import RetrainingInput, Signals, Thresholds

__all__ = ["AliasOutcome", "input_sample", "run_drift_monitor"]


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
                "thresholds": Thresholds(
                    negative_feedback_rate=settings.negative_feedback_threshold,
                    drift_score=settings.drift_threshold,
                ).model_dump(),
            }
        )
    except ValidationError:
        return "invalid_input"
    outcome.execution_name = retraining_run_name(outcome.alias, now)
    started = ports.retraining.start(outcome.execution_name, request.to_execution_input())
    return "started" if started else "already_started"
