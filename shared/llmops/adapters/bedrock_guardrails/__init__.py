"""Amazon Bedrock ApplyGuardrail as a pluggable guard detector (names, addresses, topics, words)."""

from llmops.adapters.bedrock_guardrails.client import BedrockGuardrailDetector, default_bedrock_runtime_client
from llmops.adapters.bedrock_guardrails.transformation import (
    BEDROCK_PII_TO_FINDING_TYPE,
    findings_from_response,
    locate,
    to_apply_guardrail_request,
)

__all__ = [
    "BEDROCK_PII_TO_FINDING_TYPE",
    "BedrockGuardrailDetector",
    "default_bedrock_runtime_client",
    "findings_from_response",
    "locate",
    "to_apply_guardrail_request",
]
