"""The secret pepper API keys are hashed with (`LLMOPS_KEY_PEPPER`), generated at deploy time.

The value never appears in the template: CloudFormation resolves a Secrets Manager dynamic
reference into the authorizer's environment. It is visible in that function's configuration to
principals allowed `lambda:GetFunctionConfiguration`. Reading it from Secrets Manager at cold
start would close that, but it needs the runtime to accept a secret ARN instead of the value.

Losing or rotating the pepper invalidates every issued key, hence RETAIN in prod and no rotation.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.config import GatewayConfig
from infra.nag import acknowledge

__all__ = ["PEPPER_ENV_VAR", "KeyPepper"]

PEPPER_ENV_VAR = "LLMOPS_KEY_PEPPER"


class KeyPepper(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: GatewayConfig) -> None:
        super().__init__(scope, construct_id)
        self.secret = secretsmanager.Secret(
            self,
            "Secret",
            description=f"llmops-gateway {config.stage.value}: API key hashing pepper",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True, include_space=False
            ),
            removal_policy=cdk.RemovalPolicy.RETAIN if config.is_prod else cdk.RemovalPolicy.DESTROY,
        )
        acknowledge(
            self.secret,
            (
                "AwsSolutions-SMG4",
                "Rotating the pepper would invalidate every issued API key; keys are rotated instead "
                "(llmops keys rotate).",
            ),
        )

    def inject(self, function: lambda_.Function) -> None:
        function.add_environment(PEPPER_ENV_VAR, self.secret.secret_value.unsafe_unwrap())
