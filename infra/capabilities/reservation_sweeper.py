"""The reservation sweeper: a small Lambda that EventBridge runs every minute.

A gateway invocation killed at its timeout never settles nor releases its quota reservation; the
sweeper gives those charges back once they are due (llmops.application.reservation_sweeper). It may
touch only the Quotas table, and one invocation at a time is enough (a sweep claims each
reservation in a conditional transaction, so an overlapping run would only find less to do).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.capabilities.python_function import FunctionSpec, PythonFunction
from infra.capabilities.tables import TableAccess, Tables
from infra.config import GatewayConfig
from llmops.config.timeouts import RESERVATION_SWEEP_SCHEDULE_MINUTES, SWEEPER_TIMEOUT_S
from llmops.observability.metrics import RESERVATION_SWEEPER_SERVICE

__all__ = ["ReservationSweeper"]


class ReservationSweeper(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: GatewayConfig,
        tables: Tables,
        layer: lambda_.ILayerVersion,
    ) -> None:
        super().__init__(scope, construct_id)
        self.sweeper = PythonFunction(
            self,
            "Sweeper",
            config=config,
            layer=layer,
            spec=FunctionSpec(
                directory="reservation_sweeper",
                service=RESERVATION_SWEEPER_SERVICE,
                description="llmops reservation sweeper: releases quota reservations no request settled",
                memory_mb=256,
                timeout_s=SWEEPER_TIMEOUT_S,
                reserved_concurrency=1,
            ),
        )
        tables.grant(self.sweeper.function, {"Quotas": TableAccess.READ_WRITE})
        self.schedule = events.Rule(
            self,
            "Schedule",
            description="Releases quota reservations whose gateway invocation ended without settling them.",
            schedule=events.Schedule.rate(cdk.Duration.minutes(RESERVATION_SWEEP_SCHEDULE_MINUTES)),
            targets=[targets.LambdaFunction(self.sweeper.function, retry_attempts=2)],
        )

    @property
    def function(self) -> lambda_.IFunction:
        return self.sweeper.function
