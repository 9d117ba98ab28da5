"""The audit trail's durable fallback: an SQS queue that holds audit records and quota settlements
the gateway could not write to DynamoDB, until `llmops audit replay` drains it exactly once."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import GatewayConfig
from infra.nag import acknowledge
from llmops.config.env import EnvVar

__all__ = ["AuditDeadLetters"]


class AuditDeadLetters(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: GatewayConfig) -> None:
        super().__init__(scope, construct_id)
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # The longest SQS allows: replay may wait for an on-call engineer over a long weekend.
            retention_period=cdk.Duration.days(14),
            removal_policy=cdk.RemovalPolicy.RETAIN if config.is_prod else cdk.RemovalPolicy.DESTROY,
        )
        acknowledge(
            self.queue,
            (
                "AwsSolutions-SQS3",
                "This queue is itself the dead-letter store for audit writes; records leave it only "
                "through `llmops audit replay`, which is idempotent per request id.",
            ),
        )

    def attach(self, function: lambda_.Function) -> None:
        """Lets `function` dead-letter into the queue and tells it where the queue is."""
        self.queue.grant_send_messages(function)
        function.add_environment(EnvVar.AUDIT_DLQ_URL, self.queue.queue_url)
