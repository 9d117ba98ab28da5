"""IAM for calling models: Bedrock and SageMaker invoke rights scoped to the configured models only."""

from __future__ import annotations

from collections.abc import Iterable

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from infra.config import GatewayConfig
from infra.nag import acknowledge
from llmops.domain.model_ids import foundation_model_id, is_cross_region_profile

__all__ = [
    "BEDROCK_INVOKE_ACTIONS",
    "SAGEMAKER_INVOKE_ACTIONS",
    "bedrock_resource_arns",
    "grant_model_invoke",
    "sagemaker_endpoint_arn",
]

# Converse authorizes as InvokeModel, ConverseStream as InvokeModelWithResponseStream.
BEDROCK_INVOKE_ACTIONS = ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream")
SAGEMAKER_INVOKE_ACTIONS = ("sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream")


def bedrock_resource_arns(stack: cdk.Stack, model: str, foundation_model: str | None = None) -> list[str]:
    """The ARNs an InvokeModel call for `model` (an id or an ARN) is authorized against.

    `foundation_model` is the model behind an application inference profile ARN: IAM checks the
    profile and the model it invokes, in whichever region the profile sends the call to.
    """
    if model.startswith("arn:"):
        if foundation_model:
            return [model, f"arn:{stack.partition}:bedrock:*::foundation-model/{foundation_model}"]
        return [model]
    if is_cross_region_profile(model):
        # A profile routes to the foundation model in any region of its geography, and IAM
        # checks both the profile and the underlying model.
        base_model = foundation_model_id(model)
        return [
            stack.format_arn(service="bedrock", resource="inference-profile", resource_name=model),
            f"arn:{stack.partition}:bedrock:*::foundation-model/{base_model}",
        ]
    return [stack.format_arn(service="bedrock", account="", resource="foundation-model", resource_name=model)]


def sagemaker_endpoint_arn(stack: cdk.Stack, endpoint_name: str) -> str:
    # SageMaker lower-cases endpoint names in ARNs.
    return stack.format_arn(service="sagemaker", resource="endpoint", resource_name=endpoint_name.lower())


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def grant_model_invoke(role: iam.IRole, config: GatewayConfig) -> None:
    stack = cdk.Stack.of(role)
    if config.bedrock_model_ids:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="InvokeConfiguredBedrockModels",
                actions=list(BEDROCK_INVOKE_ACTIONS),
                resources=_unique(
                    arn
                    for m in config.bedrock_model_ids
                    for arn in bedrock_resource_arns(stack, m, config.bedrock_profile_models.get(m))
                ),
            )
        )
        profiles = [m for m in config.bedrock_model_ids if is_cross_region_profile(m)]
        acknowledge(
            role,
            *(
                (
                    f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/"
                    f"{foundation_model_id(m)}]",
                    "Cross-region inference profiles invoke the model in any region of the geography; "
                    "the model is fixed, only the region is open.",
                )
                for m in profiles
            ),
            *(
                (
                    f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/{model}]",
                    "An application inference profile invokes its model in the regions the profile "
                    "spans; the model is fixed, only the region is open.",
                )
                for arn, model in config.bedrock_profile_models.items()
                if arn in config.bedrock_model_ids
            ),
        )
    if config.sagemaker_endpoint_names:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="InvokeConfiguredSageMakerEndpoints",
                actions=list(SAGEMAKER_INVOKE_ACTIONS),
                resources=_unique(sagemaker_endpoint_arn(stack, n) for n in config.sagemaker_endpoint_names),
            )
        )
