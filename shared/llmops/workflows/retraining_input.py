"""The retraining state machine's input.

The dataset is exported before the execution starts (by `llmops retrain start` or the scheduled
job, with `llmops.domain.finetune_export`) and staged at `dataset_key` in the artifact bucket. The
state machine then copies it into the run's own prefix, so each run's training data is immutable
and named after the execution:

    s3://<artifact bucket>/retraining/<execution name>/train.jsonl     (training data)
    s3://<artifact bucket>/retraining/<execution name>/manifest.json   (why the run started)
    s3://<artifact bucket>/retraining/<execution name>/model/          (pipeline output)

The SageMaker pipeline must declare the parameters `TrainingDataS3Uri` and `ModelOutputS3Uri` and
write `model.tar.gz` under the latter. The machine also passes the run context, `Alias` and
`BaselineTarget`, to a pipeline that declares them (it reads the declared parameters with
DescribePipeline first: StartPipelineExecution rejects undeclared ones).

Exactly one model package per run: a pipeline that registers the model itself (the shipped
`fine_tuning_pipeline` does, with its evaluation) puts its execution ARN in the package's
`llmops:pipeline-execution` customer metadata, and the machine uses that package; otherwise (a
pipeline that only trains) the machine registers `model.tar.gz` itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from llmops.config.drift_monitor import DEFAULT_DRIFT_THRESHOLD, DEFAULT_NEGATIVE_FEEDBACK_THRESHOLD, latest_dataset_key

__all__ = [
    "PIPELINE_EXECUTION_METADATA",
    "REQUIRED_PIPELINE_PARAMETERS",
    "RUN_CONTEXT_PIPELINE_PARAMETERS",
    "RetrainingInput",
    "Signals",
    "Thresholds",
    "retrainable_aliases",
    "retraining_trigger_input",
]

# What retraining.asl.json passes to the pipeline (its OfferPipelineParameters state): always the
# data and output locations; the run context only to a pipeline that declares it.
REQUIRED_PIPELINE_PARAMETERS = ("TrainingDataS3Uri", "ModelOutputS3Uri")
RUN_CONTEXT_PIPELINE_PARAMETERS = ("Alias", "BaselineTarget")
# The customer metadata key by which a pipeline's own package names the execution that registered
# it, so the machine registers no second package (and never takes another run's).
PIPELINE_EXECUTION_METADATA = "llmops:pipeline-execution"

S3Key = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9!_.*'()=-][A-Za-z0-9!_.*'()/=+-]{0,1023}$")]


class Signals(BaseModel):
    """What the trigger observed; both are in [0, 1]."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    negative_feedback_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    drift_score: float = Field(default=0.0, ge=0.0, le=1.0)


class Thresholds(BaseModel):
    """A run starts when any signal reaches its threshold (or `force` is set)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    negative_feedback_rate: float = Field(default=DEFAULT_NEGATIVE_FEEDBACK_THRESHOLD, ge=0.0, le=1.0)
    drift_score: float = Field(default=DEFAULT_DRIFT_THRESHOLD, ge=0.0, le=1.0)


class RetrainingInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    trigger: Literal["schedule", "feedback", "drift", "manual"] = "manual"
    alias: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
    baseline_target: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    dataset_key: S3Key
    inference_image: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    signals: Signals = Signals()
    thresholds: Thresholds = Thresholds()
    force: bool = False
    poll_seconds: int = Field(default=60, ge=0, le=3600)

    def exceeds_thresholds(self) -> bool:
        """The same decision as the state machine's `CheckThresholds` choice, for the CLI to preview."""
        return (
            self.force
            or self.signals.negative_feedback_rate >= self.thresholds.negative_feedback_rate
            or self.signals.drift_score >= self.thresholds.drift_score
        )

    def to_execution_input(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def retraining_trigger_input(
    trigger: Literal["drift", "feedback"], alias: str, baseline: str, inference_image: str
) -> dict[str, Any]:
    """What a trigger alarm's EventBridge rule starts the retraining machine with: the alias's
    latest staged dataset, forced (the alarm already compared the signal with its threshold)."""
    return RetrainingInput(
        trigger=trigger,
        alias=alias,
        baseline_target=baseline,
        dataset_key=latest_dataset_key(alias),
        inference_image=inference_image,
        force=True,
    ).to_execution_input()


def _main_target(route: Mapping[str, Any]) -> str | None:
    entries = sorted(route.get("targets", []), key=lambda e: -float(e.get("weight", 1)))
    return str(entries[0]["target"]) if entries else None


def retrainable_aliases(routes: Mapping[str, Any]) -> dict[str, str]:
    """alias -> the SageMaker chat target serving most of it (the baseline a retrained model replaces).

    Embedding aliases are not retrained: the fine-tuning dataset is chat conversations."""
    found: dict[str, str] = {}
    for alias, route in sorted(routes.get("routes", {}).items()):
        target = _main_target(route)
        spec = routes.get("targets", {}).get(target, {}) if target else {}
        if target and spec.get("provider") == "sagemaker" and spec.get("kind", "chat") == "chat":
            found[alias] = target
    return found
