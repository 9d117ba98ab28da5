"""Environment variable names and the typed settings read from them.

CDK sets these on the Lambdas, the local stack sets them in-process, the runtime reads them here
and nowhere else. AWS endpoints are not ours: botocore already honours AWS_ENDPOINT_URL_<SERVICE>,
which is how the local stack points unchanged boto3 clients at moto and the emulators.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from llmops.config import timeouts
from llmops.config.tables import TABLES

__all__ = ["EnvVar", "Settings"]


class EnvVar(StrEnum):
    STAGE = "LLMOPS_STAGE"
    ROUTES_TABLE = "LLMOPS_ROUTES_TABLE"
    KEYS_TABLE = "LLMOPS_KEYS_TABLE"
    QUOTAS_TABLE = "LLMOPS_QUOTAS_TABLE"
    USAGE_TABLE = "LLMOPS_USAGE_TABLE"
    AUDIT_TABLE = "LLMOPS_AUDIT_TABLE"
    PROMPTS_TABLE = "LLMOPS_PROMPTS_TABLE"
    FEEDBACK_TABLE = "LLMOPS_FEEDBACK_TABLE"
    CACHE_TABLE = "LLMOPS_CACHE_TABLE"
    CONFIG_TTL_S = "LLMOPS_CONFIG_TTL_S"
    MAX_BODY_BYTES = "LLMOPS_MAX_BODY_BYTES"
    PROVIDER_CONNECT_TIMEOUT_S = "LLMOPS_PROVIDER_CONNECT_TIMEOUT_S"
    PROVIDER_READ_TIMEOUT_S = "LLMOPS_PROVIDER_READ_TIMEOUT_S"
    PROVIDER_MAX_ATTEMPTS = "LLMOPS_PROVIDER_MAX_ATTEMPTS"
    DEADLINE_MARGIN_S = "LLMOPS_DEADLINE_MARGIN_S"
    BREAKER_COOLDOWN_S = "LLMOPS_BREAKER_COOLDOWN_S"
    KEY_PEPPER = "LLMOPS_KEY_PEPPER"
    KEY_PEPPER_SECRET_ARN = "LLMOPS_KEY_PEPPER_SECRET_ARN"  # noqa: S105 - a variable name, not a secret
    ROUTES_FILE = "LLMOPS_ROUTES_FILE"
    AUDIT_DLQ_URL = "LLMOPS_AUDIT_DLQ_URL"
    GUARD_POLICIES = "LLMOPS_GUARD_POLICIES"
    # The Bedrock guardrails the stack grants (CDK context bedrockGuardrails), comma-separated ids or
    # ARNs; unset (the local stack): any. A policy naming another is not called (it would be denied).
    GRANTED_GUARDRAILS = "LLMOPS_GRANTED_GUARDRAILS"
    # "true"/"false": whether the stack grants comprehend:DetectPiiEntities; unset (local): granted.
    COMPREHEND_GRANTED = "LLMOPS_COMPREHEND_GRANTED"
    # The scheduled drift monitor's settings (llmops.config.drift_monitor).
    ARTIFACT_BUCKET = "LLMOPS_ARTIFACT_BUCKET"
    RETRAINING_STATE_MACHINE_ARN = "LLMOPS_RETRAINING_STATE_MACHINE_ARN"
    RETRAINING_INFERENCE_IMAGE = "LLMOPS_RETRAINING_INFERENCE_IMAGE"
    DRIFT_RECENT_HOURS = "LLMOPS_DRIFT_RECENT_HOURS"
    DRIFT_REFERENCE_HOURS = "LLMOPS_DRIFT_REFERENCE_HOURS"
    DRIFT_MIN_SAMPLES = "LLMOPS_DRIFT_MIN_SAMPLES"
    DRIFT_THRESHOLD = "LLMOPS_DRIFT_THRESHOLD"
    NEGATIVE_FEEDBACK_THRESHOLD = "LLMOPS_NEGATIVE_FEEDBACK_THRESHOLD"
    DRIFT_START_RETRAINING = "LLMOPS_DRIFT_START_RETRAINING"


# Keeps table env var names and table definitions from drifting apart.
assert {t.env_var for t in TABLES} <= {v.value for v in EnvVar}


DEFAULT_MAX_BODY_BYTES = 5_767_168  # 5.5 MiB


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    stage: str = "dev"
    routes_table: str = ""
    keys_table: str = ""
    quotas_table: str = ""
    usage_table: str = ""
    audit_table: str = ""
    prompts_table: str = ""
    feedback_table: str = ""
    cache_table: str = ""
    config_ttl_s: float = Field(default=10.0, ge=0)
    # 5.5 MiB: an image at the default per-image limit (3.75 MiB, Bedrock's) is 5 MiB as base64 in a
    # data URL, and a Lambda invocation's payload (the whole API Gateway event) may not exceed 6 MB.
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0)
    # The deployed gateway's values (llmops.config.timeouts); every call is further bounded by the
    # request's deadline, what the Lambda context says remains minus `deadline_margin_s`.
    provider_connect_timeout_s: float = Field(default=timeouts.PROVIDER_CONNECT_TIMEOUT_S, gt=0)
    provider_read_timeout_s: float = Field(default=timeouts.provider_read_timeout_s(timeouts.GATEWAY_TIMEOUT_S), gt=0)
    provider_max_attempts: int = Field(default=timeouts.PROVIDER_MAX_ATTEMPTS, ge=1, le=5)  # calls per target
    deadline_margin_s: float = Field(default=timeouts.DEADLINE_MARGIN_S, ge=0)
    # How long a container skips a target after consecutive failures (llmops.domain.routing.CircuitBreaker);
    # the local stack shortens it with its alarm periods, so a broken canary keeps being probed per period.
    breaker_cooldown_s: float = Field(default=30.0, gt=0)
    key_pepper: str = ""  # local stack and tests; deployed stacks use key_pepper_secret_arn
    key_pepper_secret_arn: str = ""
    routes_file: str = ""
    audit_dlq_url: str = ""
    guard_policies: str = ""  # JSON: {"policy-name": {...GuardPolicy fields...}}, layered on the default
    granted_guardrails: str | None = None  # None: not restricted (the local stack grants no IAM)
    comprehend_granted: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values = {var.name.lower(): env[var.value] for var in EnvVar if var.value in env and env[var.value] != ""}
        return cls.model_validate(values)
