"""Deployment configuration, read from CDK context and validated at synth time.

Every knob has a default that deploys a working dev stack, so `npx cdk synth` needs no flags.
Values come from `cdk.json` or `-c key=value` (the CLI passes those as strings, hence the
comma-separated list parsing). A bad value stops the synth with a message naming the context key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llmops.config.timeouts import GATEWAY_TIMEOUT_S

__all__ = [
    "LOG_RETENTION_DAYS",
    "REPO_ROOT",
    "ROUTES_FILE",
    "ConfigError",
    "GatewayConfig",
    "Stage",
    "config_from_context",
    "routes_document",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
ROUTES_FILE = REPO_ROOT / "shared" / "llmops" / "config" / "routes.json"

# The values CloudWatch Logs accepts for a retention period.
LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)


class Stage(StrEnum):
    DEV = "dev"
    PROD = "prod"


class ConfigError(ValueError):
    """The CDK context does not describe a deployable stack."""


def routes_document(path: Path = ROUTES_FILE) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def _targets(doc: Mapping[str, Any], provider: str, field: str) -> list[str]:
    values = {str(spec[field]) for spec in doc.get("targets", {}).values() if spec.get("provider") == provider}
    return sorted(values)


def _profile_models(doc: Mapping[str, Any]) -> dict[str, str]:
    return {
        str(spec["model_id"]): str(spec["foundation_model"])
        for spec in doc.get("targets", {}).values()
        if spec.get("provider") == "bedrock" and spec.get("foundation_model")
    }


_GUARDRAIL = re.compile(r"[a-z0-9]{1,64}|arn:aws[a-z-]*:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:guardrail/[a-z0-9]{1,64}")


def _split_list(value: Any) -> Any:
    # `-c bedrockModelIds=a,b` arrives as one string; cdk.json may hold a real JSON list.
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class GatewayConfig(BaseModel):
    """What one deployment of the gateway may do and how big it is."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    stage: Stage = Stage.DEV
    # Bedrock model ids (or full model / inference-profile ARNs) the gateway may invoke.
    bedrock_model_ids: tuple[str, ...] = Field(
        default_factory=lambda: tuple(_targets(routes_document(), "bedrock", "model_id")),
        alias="bedrockModelIds",
    )
    # The foundation model behind each application inference profile ARN (routes.json's
    # `foundation_model`): IAM authorizes the call against the profile and the model it invokes.
    bedrock_profile_models: dict[str, str] = Field(
        default_factory=lambda: _profile_models(routes_document()), alias="bedrockProfileModels"
    )
    sagemaker_endpoint_names: tuple[str, ...] = Field(
        default_factory=lambda: tuple(_targets(routes_document(), "sagemaker", "endpoint_name")),
        alias="sagemakerEndpointNames",
    )
    # The Amazon Bedrock guardrails (ids or ARNs) tenants' guard policies may name: the gateway gets
    # bedrock:ApplyGuardrail on exactly these (for ApplyGuardrail and Converse's guardrailConfig), and
    # is told them (LLMOPS_GRANTED_GUARDRAILS): a policy naming another gets its fail mode (docs/iam.md).
    bedrock_guardrails: tuple[str, ...] = Field(default=(), alias="bedrockGuardrails")
    # true when some tenant's guard policy uses Amazon Comprehend (`comprehend`): grants DetectPiiEntities.
    comprehend_pii_detection: bool = Field(default=False, alias="comprehendPiiDetection")
    alarm_email: str | None = Field(
        default=None, alias="alarmEmail", pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254
    )
    throttle_rate_limit: float = Field(default=50.0, gt=0, le=10_000, alias="throttleRateLimit")
    throttle_burst_limit: int = Field(default=100, gt=0, le=5_000, alias="throttleBurstLimit")
    gateway_memory_mb: int = Field(default=1024, ge=128, le=10_240, alias="gatewayMemoryMb")
    # The gateway function's and its STREAM integration's timeout (up to 15 minutes for a streaming
    # integration); the local stack runs with the same default (llmops.config.timeouts).
    gateway_timeout_s: int = Field(default=GATEWAY_TIMEOUT_S, ge=5, le=900, alias="gatewayTimeoutSeconds")
    gateway_reserved_concurrency: int | None = Field(default=None, ge=1, alias="gatewayReservedConcurrency")
    authorizer_reserved_concurrency: int | None = Field(default=None, ge=1, alias="authorizerReservedConcurrency")
    log_retention_days: int | None = Field(default=None, alias="logRetentionDays")
    # false: the shared layer carries only the llmops package (no uv, no network). For tests and
    # quick template checks; a stack synthesized this way deploys but its functions cannot import.
    bundle_dependencies: bool = Field(default=True, alias="bundleDependencies")

    @field_validator("bedrock_model_ids", "sagemaker_endpoint_names", "bedrock_guardrails", mode="before")
    @classmethod
    def _parse_list(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("sagemaker_endpoint_names")
    @classmethod
    def _endpoint_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not name.replace("-", "").isalnum() or len(name) > 63:
                raise ValueError(f"{name!r} is not a SageMaker endpoint name")
        return value

    @field_validator("bedrock_model_ids")
    @classmethod
    def _model_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for model in value:
            if not model or "*" in model or any(ch.isspace() for ch in model):
                raise ValueError(f"{model!r} is not a Bedrock model id or ARN (wildcards are not allowed)")
        return value

    @field_validator("bedrock_guardrails")
    @classmethod
    def _guardrails(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for guardrail in value:
            if not _GUARDRAIL.fullmatch(guardrail):
                raise ValueError(
                    f"{guardrail!r} is not a Bedrock guardrail id or ARN (arn:<partition>:bedrock:<region>:"
                    "<account>:guardrail/<id>; no wildcards, no version: IAM grants the guardrail, all versions)"
                )
        return tuple(dict.fromkeys(value))

    @field_validator("comprehend_pii_detection", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> Any:
        # `-c comprehendPiiDetection=true` arrives as a string.
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int | None) -> int | None:
        if value is not None and value not in LOG_RETENTION_DAYS:
            raise ValueError(f"must be one of {sorted(LOG_RETENTION_DAYS)}")
        return value

    @model_validator(mode="after")
    def _burst_covers_rate(self) -> GatewayConfig:
        if self.throttle_burst_limit < self.throttle_rate_limit:
            raise ValueError("throttleBurstLimit must be at least throttleRateLimit")
        return self

    @property
    def is_prod(self) -> bool:
        return self.stage is Stage.PROD

    @property
    def retention_days(self) -> int:
        if self.log_retention_days is not None:
            return self.log_retention_days
        return 365 if self.is_prod else 30

    @property
    def stack_name(self) -> str:
        return f"LlmopsGateway-{self.stage.value}"

    @classmethod
    def context_keys(cls) -> tuple[str, ...]:
        return tuple(field.alias or name for name, field in cls.model_fields.items())


def config_from_context(get: Callable[[str], Any]) -> GatewayConfig:
    """Build the config from a context lookup such as `app.node.try_get_context`."""
    values = {key: value for key in GatewayConfig.context_keys() if (value := get(key)) is not None}
    try:
        return GatewayConfig.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"context {'.'.join(str(p) for p in err['loc']) or '(config)'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid CDK context for llmops-gateway: {problems}") from None
