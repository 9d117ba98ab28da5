"""Bedrock model identifiers: foundation model ids, inference profiles and the model family behind them.

A Bedrock target's `model_id` is one of:

- a foundation model id, `anthropic.claude-3-5-haiku-20241022-v1:0`;
- a cross-region (system-defined) inference profile id, the model id behind a geography prefix,
  `us.anthropic.claude-sonnet-4-5-20250929-v1:0` or `global.anthropic...`;
- the ARN of either (`...:foundation-model/<id>`, `...:inference-profile/<profile id>`);
- an application inference profile ARN (`...:application-inference-profile/<random id>`), whose
  model cannot be read from the id: routes.json names it in the target's `foundation_model`.

The request mapping (which reasoning fields a model takes), the IAM grants (infra) and the emulator
read the same prefixes from here, so a new geography is added once.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "INFERENCE_PROFILE_PREFIXES",
    "ModelFamily",
    "foundation_model_id",
    "is_application_inference_profile",
    "is_cross_region_profile",
    "model_family",
]

# Geography prefixes of cross-region inference profile ids (global. is the worldwide profile).
INFERENCE_PROFILE_PREFIXES = ("us.", "us-gov.", "eu.", "apac.", "jp.", "au.", "ca.", "global.")


class ModelFamily(StrEnum):
    """Model families whose Converse requests differ (reasoning fields, sampling rules)."""

    ANTHROPIC_CLAUDE = "anthropic_claude"
    AMAZON_NOVA = "amazon_nova"  # Nova 1 (no reasoning)
    AMAZON_NOVA_2 = "amazon_nova_2"  # Nova 2: reasoningConfig
    DEEPSEEK_R1 = "deepseek_r1"  # always reasons, takes no reasoning settings
    OPENAI_GPT_OSS = "openai_gpt_oss"  # reasoning_effort
    OTHER = "other"


def is_cross_region_profile(model_id: str) -> bool:
    return model_id.startswith(INFERENCE_PROFILE_PREFIXES)


def is_application_inference_profile(model_id: str) -> bool:
    return model_id.startswith("arn:") and ":application-inference-profile/" in model_id


def foundation_model_id(model_id: str) -> str | None:
    """The foundation model `model_id` invokes, or None when the id does not say (an application
    inference profile ARN, or an ARN of a kind this does not know)."""
    if model_id.startswith("arn:"):
        resource = model_id.split(":", 5)[-1] if model_id.count(":") >= 5 else ""
        kind, _, name = resource.partition("/")
        if kind not in ("foundation-model", "inference-profile") or not name:
            return None
        model_id = name
    for prefix in INFERENCE_PROFILE_PREFIXES:
        if model_id.startswith(prefix):
            return model_id.removeprefix(prefix)
    return model_id


def model_family(model_id: str, foundation_model: str = "") -> ModelFamily:
    """The family of the model behind `model_id`; `foundation_model` (the target's configured one)
    wins, since only it can name the model of an application inference profile."""
    base = foundation_model_id(foundation_model) if foundation_model else foundation_model_id(model_id)
    if not base:
        return ModelFamily.OTHER
    if base.startswith("anthropic.claude"):
        return ModelFamily.ANTHROPIC_CLAUDE
    if base.startswith("amazon.nova-2"):
        return ModelFamily.AMAZON_NOVA_2
    if base.startswith("amazon.nova"):
        return ModelFamily.AMAZON_NOVA
    if base.startswith("deepseek.r1"):
        return ModelFamily.DEEPSEEK_R1
    if base.startswith("openai.gpt-oss"):
        return ModelFamily.OPENAI_GPT_OSS
    return ModelFamily.OTHER
