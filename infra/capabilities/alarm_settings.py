"""What the alarms are and how sensitive: stable runbook ids and the thresholds, from CDK context.

Knobs (CDK context, all optional): availabilitySlo, latencyP99Seconds, ttftP99Seconds, monthlyBudgetUsd,
costBurnFactor, runbookBaseUrl and the rate thresholds of `AlarmSettings`.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from infra.config import REPO_ROOT, ConfigError

__all__ = ["RUNBOOK_DIR", "AlarmSettings", "RunbookId", "settings_from_context"]

RUNBOOK_DIR = REPO_ROOT / "docs" / "runbooks"
_HOURS_PER_MONTH = 730  # 365 * 24 / 12


class RunbookId(StrEnum):
    """Stable alarm ids; docs/runbooks/<id>.md exists for each (tests check)."""

    AVAILABILITY_FAST_BURN = "availability-fast-burn"
    AVAILABILITY_SLOW_BURN = "availability-slow-burn"
    LATENCY_P99 = "latency-p99"
    TTFT_P99 = "ttft-p99"
    PROVIDER_ERROR_RATE = "provider-error-rate"
    PROVIDER_THROTTLE_RATE = "provider-throttle-rate"
    FALLBACK_RATE = "fallback-rate"
    GUARD_BLOCK_SPIKE = "guard-block-spike"
    GUARD_BYPASS = "guard-bypass"
    GUARD_BUDGET_EXCEEDED = "guard-budget-exceeded"
    QUOTA_REJECTION_SPIKE = "quota-rejection-spike"
    COST_BURN = "cost-burn"
    API_5XX = "api-5xx"
    LAMBDA_ERRORS = "lambda-errors"
    LAMBDA_THROTTLES = "lambda-throttles"
    DLQ_DEPTH = "dlq-depth"
    STATE_MACHINE_FAILURES = "state-machine-failures"
    CANARY_ERROR_RATE = "canary-error-rate"
    CANARY_LATENCY_P99 = "canary-latency-p99"
    CANARY_TTFT_P99 = "canary-ttft-p99"
    CANARY_GUARD_BLOCK_RATE = "canary-guard-block-rate"
    CANARY_NEGATIVE_FEEDBACK = "canary-negative-feedback"


class AlarmSettings(BaseModel):
    """Thresholds, from CDK context; defaults suit a first deployment and are meant to be tuned."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    availability_slo: float = Field(default=0.999, gt=0.9, lt=1, alias="availabilitySlo")
    latency_p99_s: float = Field(default=15.0, gt=0, le=900, alias="latencyP99Seconds")
    # Streamed requests: the input guard, routing and the model's own first token (a few hundred ms
    # on Bedrock's smaller models); a p99 above this is what a chat UI's user notices.
    ttft_p99_s: float = Field(default=3.0, gt=0, le=900, alias="ttftP99Seconds")
    monthly_budget_usd: float = Field(default=1000.0, gt=0, alias="monthlyBudgetUsd")
    # Page when the last hour's spend, kept up for a month, would exceed the budget this many times.
    cost_burn_factor: float = Field(default=3.0, ge=1, alias="costBurnFactor")
    provider_error_rate: float = Field(default=0.05, gt=0, lt=1, alias="providerErrorRate")
    provider_throttle_rate: float = Field(default=0.05, gt=0, lt=1, alias="providerThrottleRate")
    fallback_rate: float = Field(default=0.10, gt=0, lt=1, alias="fallbackRate")
    guard_block_rate: float = Field(default=0.05, gt=0, lt=1, alias="guardBlockRate")
    quota_rejection_rate: float = Field(default=0.10, gt=0, lt=1, alias="quotaRejectionRate")
    api_5xx_rate: float = Field(default=0.01, gt=0, lt=1, alias="api5xxRate")
    lambda_error_rate: float = Field(default=0.01, gt=0, lt=1, alias="lambdaErrorRate")
    canary_error_rate: float = Field(default=0.02, gt=0, lt=1, alias="canaryErrorRate")
    canary_guard_block_rate: float = Field(default=0.05, gt=0, lt=1, alias="canaryGuardBlockRate")
    canary_negative_feedback_rate: float = Field(default=0.20, gt=0, lt=1, alias="canaryNegativeFeedbackRate")
    runbook_base_url: str = Field(default="docs/runbooks", min_length=1, max_length=300, alias="runbookBaseUrl")

    @property
    def error_budget(self) -> float:
        return round(1 - self.availability_slo, 9)

    @property
    def hourly_cost_threshold_usd(self) -> float:
        return self.monthly_budget_usd / _HOURS_PER_MONTH * self.cost_burn_factor

    def runbook_url(self, runbook: RunbookId) -> str:
        return f"{self.runbook_base_url.rstrip('/')}/{runbook.value}.md"


def settings_from_context(get: Callable[[str], Any]) -> AlarmSettings:
    keys = [field.alias or name for name, field in AlarmSettings.model_fields.items()]
    values = {key: value for key in keys if (value := get(key)) is not None}
    try:
        return AlarmSettings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"context {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"invalid CDK context for llmops-gateway alarms: {problems}") from None
