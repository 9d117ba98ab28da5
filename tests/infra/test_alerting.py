"""The on-call topic subscribes the configured e-mail and becomes the action of alarms it is given."""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
from aws_cdk import assertions
from aws_cdk import aws_cloudwatch as cloudwatch

from infra.capabilities.alerting import Alerting
from infra.config import GatewayConfig


def test_alarm_email_is_subscribed_and_alarms_notify_the_topic() -> None:
    stack = cdk.Stack(cdk.App(), "S")
    alerting = Alerting(stack, "Alerting", config=GatewayConfig(alarmEmail="oncall@example.com"))
    alarm = cloudwatch.Alarm(
        stack,
        "A",
        metric=cloudwatch.Metric(namespace="LLMOps", metric_name="Errors"),
        threshold=1,
        evaluation_periods=1,
    )
    alerting.notify(alarm)
    template = assertions.Template.from_stack(stack)
    template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "oncall@example.com"})
    topic_ref = {"Ref": stack.resolve(alerting.topic.topic_arn)["Ref"]}
    template.has_resource_properties("AWS::CloudWatch::Alarm", {"AlarmActions": [topic_ref], "OKActions": [topic_ref]})
