"""Model ARNs the gateway may invoke: foundation models, inference profiles, explicit ARNs."""

from __future__ import annotations

import os

import aws_cdk as cdk

from infra.capabilities.model_access import bedrock_resource_arns, sagemaker_endpoint_arn

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def _stack() -> cdk.Stack:
    return cdk.Stack(cdk.App(), "S", env=cdk.Environment(account="111122223333", region="eu-west-1"))


def test_foundation_model_arn_has_no_account() -> None:
    stack = _stack()
    (arn,) = bedrock_resource_arns(stack, "amazon.nova-lite-v1:0")
    assert stack.resolve(arn) == {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, ":bedrock:eu-west-1::foundation-model/amazon.nova-lite-v1:0"],
        ]
    }


def test_inference_profile_allows_the_profile_and_its_model_in_any_region() -> None:
    stack = _stack()
    profile, model = (stack.resolve(a) for a in bedrock_resource_arns(stack, "eu.anthropic.claude-3-haiku-v1:0"))
    assert "inference-profile/eu.anthropic.claude-3-haiku-v1:0" in str(profile)
    assert "111122223333" in str(profile)
    assert ":bedrock:*::foundation-model/anthropic.claude-3-haiku-v1:0" in str(model)


def test_explicit_arns_pass_through() -> None:
    arn = "arn:aws:bedrock:us-east-1:111122223333:provisioned-model/abc123"
    assert bedrock_resource_arns(_stack(), arn) == [arn]


def test_sagemaker_endpoint_arns_are_lower_case() -> None:
    stack = _stack()
    assert "endpoint/my-endpoint" in str(stack.resolve(sagemaker_endpoint_arn(stack, "My-Endpoint")))


def test_an_application_inference_profile_allows_the_profile_and_its_model() -> None:
    stack = _stack()
    arn = "arn:aws:bedrock:eu-west-1:111122223333:application-inference-profile/a1b2c3"
    profile, model = (str(stack.resolve(a)) for a in bedrock_resource_arns(stack, arn, "anthropic.claude-3-haiku-v1:0"))
    assert profile == arn
    assert ":bedrock:*::foundation-model/anthropic.claude-3-haiku-v1:0" in model
