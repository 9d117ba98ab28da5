"""What the alarms are and how sensitive: stable runbook ids and the thresholds, from CDK context.

The ids and the thresholds' model live in the alarm catalogue (`llmops.observability.alarm_catalogue`),
which the local stack reads too; this module reads them from CDK context.

Knobs (CDK context, all optional): availabilitySlo, latencyP99Seconds, ttftP99Seconds, monthlyBudgetUsd,
costBurnFactor, runbookBaseUrl and the rate thresholds of `AlarmSettings`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from infra.config import REPO_ROOT, ConfigError
from llmops.observability.alarm_catalogue import AlarmSettings, RunbookId

__all__ = ["RUNBOOK_DIR", "AlarmSettings", "RunbookId", "settings_from_context"]

RUNBOOK_DIR = REPO_ROOT / "docs" / "runbooks"


def settings_from_context(get: Callable[[str], Any]) -> AlarmSettings:
    keys = [field.alias or name for name, field in AlarmSettings.model_fields.items()]
    values = {key: value for key in keys if (value := get(key)) is not None}
    try:
        return AlarmSettings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"context {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"invalid CDK context for llmops-gateway alarms: {problems}") from None
