"""The on-call topic every alarm notifies, optionally with an e-mail subscription.

Alarms added by later capabilities call `alerting.notify(alarm)`. The topic is encrypted with its
own key because CloudWatch cannot publish to a topic under the AWS-managed SNS key (that key's
policy cannot grant the CloudWatch service principal).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.config import GatewayConfig

__all__ = ["Alerting"]


class Alerting(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: GatewayConfig) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description=f"llmops-gateway {config.stage.value}: on-call topic",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN if config.is_prod else cdk.RemovalPolicy.DESTROY,
            pending_window=cdk.Duration.days(30 if config.is_prod else 7),
        )
        self.key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey")
        self.topic = sns.Topic(
            self,
            "OnCall",
            display_name=f"llmops-gateway {config.stage.value} on-call",
            master_key=self.key,
            enforce_ssl=True,
        )
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        self._action = cloudwatch_actions.SnsAction(self.topic)

    def notify(self, alarm: cloudwatch.AlarmBase, *, on_ok: bool = True) -> None:
        """Page on ALARM (and tell on-call when it clears, unless `on_ok` is False)."""
        alarm.add_alarm_action(self._action)
        if on_ok:
            alarm.add_ok_action(self._action)
