"""Operational alarms: gateway rates (provider errors and throttles, fallbacks, guard blocks and
bypasses, quota rejections), guard budget hits, expired reservations (invocations that died before
settling), model spend, and the AWS services' own metrics (API Gateway 5xx,
Lambda errors and throttles, dead-letter queue depth, state machine failures). Those over gateway
metrics are the alarm catalogue's (`llmops.observability.alarm_catalogue`), evaluated locally too."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn

from infra.capabilities.alarm_factory import AlarmFactory
from infra.capabilities.alarm_settings import RunbookId
from infra.capabilities.catalogue_metrics import ratio
from llmops.observability import alarm_catalogue

__all__ = [
    "add_api_alarms",
    "add_cost_alarm",
    "add_dlq_depth_alarm",
    "add_function_alarms",
    "add_gateway_rate_alarms",
    "add_state_machine_failure_alarm",
]


def add_gateway_rate_alarms(factory: AlarmFactory) -> None:
    for definition in alarm_catalogue.gateway_rate_alarms(factory.stage, factory.settings):
        factory.from_definition(definition)


def add_cost_alarm(factory: AlarmFactory) -> None:
    factory.from_definition(alarm_catalogue.cost_alarm(factory.stage, factory.settings))


def add_api_alarms(factory: AlarmFactory, api: apigw.RestApi) -> None:
    stage = api.deployment_stage
    five = cdk.Duration.minutes(5)
    factory.metric_alarm(
        RunbookId.API_5XX,
        ratio(
            [stage.metric_server_error(period=five, statistic="Sum")],
            [stage.metric_count(period=five, statistic="SampleCount")],
            label="API Gateway 5XXError rate",
            period=five,
        ),
        summary=f"API Gateway 5XXError above {factory.settings.api_5xx_rate:.0%} of requests for 15 minutes.",
        threshold=factory.settings.api_5xx_rate,
    )


def add_function_alarms(factory: AlarmFactory, name: str, function: lambda_.IFunction) -> None:
    five = cdk.Duration.minutes(5)
    factory.metric_alarm(
        RunbookId.LAMBDA_ERRORS,
        ratio(
            [function.metric_errors(period=five)],
            [function.metric_invocations(period=five)],
            label=f"{name} Lambda error rate",
            period=five,
        ),
        qualifier=name,
        summary=f"The {name} Lambda's Errors above {factory.settings.lambda_error_rate:.0%} of Invocations.",
        threshold=factory.settings.lambda_error_rate,
    )
    factory.metric_alarm(
        RunbookId.LAMBDA_THROTTLES,
        function.metric_throttles(period=five, statistic="Sum"),
        qualifier=name,
        summary=f"The {name} Lambda was throttled (Throttles > 0) in 2 of the last 3 five-minute periods.",
        threshold=0,
        datapoints_to_alarm=2,
    )


def add_dlq_depth_alarm(factory: AlarmFactory, queue: sqs.IQueue, *, name: str) -> cloudwatch.Alarm:
    """Pages when a dead-letter queue holds a message (audit records, settlements, workflows)."""
    return factory.metric_alarm(
        RunbookId.DLQ_DEPTH,
        queue.metric_approximate_number_of_messages_visible(period=cdk.Duration.minutes(5), statistic="Maximum"),
        qualifier=name,
        summary=f"Dead-letter queue {name} holds messages (ApproximateNumberOfMessagesVisible > 0).",
        threshold=0,
        evaluation_periods=1,
    )


def add_state_machine_failure_alarm(
    factory: AlarmFactory, state_machine: sfn.IStateMachine, *, name: str
) -> cloudwatch.Alarm:
    """Pages when an execution of the state machine fails, times out or is aborted."""
    five = cdk.Duration.minutes(5)
    failures = cloudwatch.MathExpression(
        expression="FILL(failed, 0) + FILL(timedout, 0) + FILL(aborted, 0)",
        using_metrics={
            "failed": state_machine.metric_failed(period=five, statistic="Sum"),
            "timedout": state_machine.metric_timed_out(period=five, statistic="Sum"),
            "aborted": state_machine.metric_aborted(period=five, statistic="Sum"),
        },
        label=f"{name} executions failed, timed out or aborted",
        period=five,
    )
    return factory.metric_alarm(
        RunbookId.STATE_MACHINE_FAILURES,
        failures,
        qualifier=name,
        summary=f"State machine {name}: ExecutionsFailed + ExecutionsTimedOut + ExecutionsAborted > 0.",
        threshold=0,
        evaluation_periods=1,
    )
