"""The secret pepper API keys are hashed with (`LLMOPS_KEY_PEPPER`), generated at deploy time.

The value never appears in the template nor in any function's configuration: the functions get
the secret's ARN and read it once per container at cold start (llmops.application.wiring).

Losing or rotating the pepper invalidates every issued key, hence RETAIN in prod and no rotation.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.config import GatewayConfig
from infra.nag import acknowledge
from llmops.config.env import EnvVar

__all__ = ["KeyPepper"]


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
        function.add_environment(EnvVar.KEY_PEPPER_SECRET_ARN, self.secret.secret_arn)
        self.secret.grant_read(function)
