"""The workflows' CDK context knobs and which aliases can be retrained."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from infra.config import ConfigError, GatewayConfig
from llmops.observability.alarm_catalogue import DEFAULT_MIN_HOURLY_RATINGS
from llmops.workflows.retraining_input import Thresholds, retrainable_aliases

__all__ = ["WorkflowSettings", "retrainable_aliases", "workflow_settings_from_context"]

_SCHEDULE = r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\([^()]+\))$"


class WorkflowSettings(BaseModel):
    """Workflow knobs from CDK context; every one has a working default."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    pipeline_name: str | None = Field(default=None, alias="retrainingPipelineName", pattern=r"^[a-zA-Z0-9-]{1,80}$")
    model_package_group_name: str | None = Field(
        default=None, alias="modelPackageGroupName", pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,55}$"
    )
    inference_image: str | None = Field(default=None, alias="retrainingInferenceImage", max_length=255)
    drift_schedule: str = Field(default="rate(1 day)", alias="driftSchedule", pattern=_SCHEDULE)
    drift_threshold: float = Field(default=Thresholds().drift_score, gt=0, le=1, alias="driftThreshold")
    negative_feedback_threshold: float = Field(
        default=Thresholds().negative_feedback_rate, gt=0, le=1, alias="negativeFeedbackThreshold"
    )
    # Ratings per hour below which the feedback alarm stays quiet: two thumbs-down are not a trend.
    min_hourly_ratings: int = Field(default=DEFAULT_MIN_HOURLY_RATINGS, ge=1, alias="retrainingMinHourlyRatings")
    canary_bake_seconds: int = Field(default=600, ge=0, le=7 * 86_400, alias="canaryBakeSeconds")

    @field_validator("inference_image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        return value or None

    def pipeline(self, config: GatewayConfig) -> str:
        return self.pipeline_name or f"llmops-{config.stage.value}-fine-tuning"

    def model_package_group(self, config: GatewayConfig) -> str:
        return self.model_package_group_name or f"llmops-{config.stage.value}-candidates"


def workflow_settings_from_context(get: Callable[[str], Any]) -> WorkflowSettings:
    keys = [field.alias or name for name, field in WorkflowSettings.model_fields.items()]
    values = {key: value for key in keys if (value := get(key)) is not None}
    try:
        return WorkflowSettings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"context {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"invalid CDK context for llmops-gateway workflows: {problems}") from None
