"""IAM for the service guard detectors: exactly the configured Bedrock guardrails, Comprehend when used.

The guardrails come from one place, the CDK context `bedrockGuardrails` (ids or ARNs): tenants'
guard policies name one of them (`bedrock_guardrail.guardrail_id`), and the gateway may apply no
other. The same grant covers Converse's `guardrailConfig`, which Bedrock authorizes as
ApplyGuardrail on the guardrail. Comprehend's DetectPiiEntities has no resource to scope to, so
it is granted only when `comprehendPiiDetection` says some policy uses it.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from infra.config import GatewayConfig
from infra.nag import acknowledge

__all__ = ["APPLY_GUARDRAIL_ACTIONS", "COMPREHEND_PII_ACTIONS", "grant_guard_detectors", "guardrail_arn"]

APPLY_GUARDRAIL_ACTIONS = ("bedrock:ApplyGuardrail",)
COMPREHEND_PII_ACTIONS = ("comprehend:DetectPiiEntities",)


def guardrail_arn(stack: cdk.Stack, guardrail: str) -> str:
    """The ARN IAM checks for `guardrail` (an id in the stack's account and region, or an ARN)."""
    if guardrail.startswith("arn:"):
        return guardrail
    return stack.format_arn(service="bedrock", resource="guardrail", resource_name=guardrail)


def grant_guard_detectors(role: iam.IRole, config: GatewayConfig) -> None:
    stack = cdk.Stack.of(role)
    if config.bedrock_guardrails:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ApplyConfiguredGuardrails",
                actions=list(APPLY_GUARDRAIL_ACTIONS),
                resources=[guardrail_arn(stack, g) for g in config.bedrock_guardrails],
            )
        )
    if config.comprehend_pii_detection:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DetectPiiWithComprehend",
                actions=list(COMPREHEND_PII_ACTIONS),
                resources=["*"],
            )
        )
        acknowledge(
            role,
            (
                "AwsSolutions-IAM5[Resource::*]",
                "comprehend:DetectPiiEntities supports no resource-level permissions (it reads only the "
                "text in the request); granted only because comprehendPiiDetection is set.",
            ),
        )
