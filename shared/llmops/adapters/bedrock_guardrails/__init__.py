"""Amazon Bedrock ApplyGuardrail as a service guard detector (names, addresses, topics, words, filters)."""

from llmops.adapters.bedrock_guardrails.client import BedrockGuardrailDetector, default_bedrock_runtime_client
from llmops.adapters.bedrock_guardrails.transformation import (
    BEDROCK_PII_TO_FINDING_TYPE,
    GUARDRAIL_ACTIONS,
    detection_from_response,
    findings_from_response,
    locate,
    to_apply_guardrail_request,
)

__all__ = [
    "BEDROCK_PII_TO_FINDING_TYPE",
    "GUARDRAIL_ACTIONS",
    "BedrockGuardrailDetector",
    "default_bedrock_runtime_client",
    "detection_from_response",
    "findings_from_response",
    "locate",
    "to_apply_guardrail_request",
]
