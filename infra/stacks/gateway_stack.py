"""The gateway stack: wires the capability constructs together and nothing else."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from infra.capabilities.alarms import Alarms
from infra.capabilities.alerting import Alerting
from infra.capabilities.audit_dead_letters import AuditDeadLetters
from infra.capabilities.dashboards import Dashboards
from infra.capabilities.gateway_api import GatewayApi
from infra.capabilities.key_pepper import KeyPepper
from infra.capabilities.lambda_layer import SharedLayer, shared_layer_build
from infra.capabilities.reservation_sweeper import ReservationSweeper
from infra.capabilities.route_seed import RouteSeed
from infra.capabilities.tables import Tables
from infra.capabilities.workflows import Workflows
from infra.config import GatewayConfig, routes_document

__all__ = ["GatewayStack"]


class GatewayStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: GatewayConfig, **kwargs: Any) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"llmops-gateway ({config.stage.value}): OpenAI-compatible LLM gateway",
            termination_protection=config.is_prod,
            **kwargs,
        )
        self.config = config
        self.alerting = Alerting(self, "Alerting", config=config)
        self.tables = Tables(self, "Tables", config=config)
        self.key_pepper = KeyPepper(self, "KeyPepper", config=config)
        self.shared_code = SharedLayer(
            self, "SharedCode", build=shared_layer_build(install_requirements=config.bundle_dependencies)
        )
        self.gateway = GatewayApi(
            self,
            "Gateway",
            config=config,
            tables=self.tables,
            layer=self.shared_code.layer,
            key_pepper=self.key_pepper,
        )
        self.reservation_sweeper = ReservationSweeper(
            self, "ReservationSweeper", config=config, tables=self.tables, layer=self.shared_code.layer
        )
        self.audit_dead_letters = AuditDeadLetters(self, "AuditDeadLetters", config=config)
        self.audit_dead_letters.attach(self.gateway.gateway.function)
        self.route_seed = RouteSeed(self, "RouteSeed", tables=self.tables, document=routes_document(), config=config)
        self._observability(config)
        self.workflows = Workflows(
            self,
            "Workflows",
            config=config,
            tables=self.tables,
            alerting=self.alerting,
            alarms=self.alarms,
            layer=self.shared_code.layer,
            routes=routes_document(),
        )
        self._outputs()

    def _observability(self, config: GatewayConfig) -> None:
        functions = {
            "gateway": self.gateway.gateway.function,
            "authorizer": self.gateway.authorizer.function,
            "reservation-sweeper": self.reservation_sweeper.function,
        }
        self.alarms = Alarms(
            self,
            "Alarms",
            config=config,
            alerting=self.alerting,
            api=self.gateway.api,
            functions=functions,
            routes=routes_document(),
        )
        self.alarms.add_dlq_depth_alarm(self.audit_dead_letters.queue, name="audit")
        self.dashboards = Dashboards(
            self,
            "Dashboards",
            config=config,
            alarms=self.alarms,
            api=self.gateway.api,
            functions=functions,
            gateway_logs=self.gateway.gateway.log_group,
            routes=routes_document(),
        )
        # Named by the runbooks' Logs Insights queries.
        cdk.CfnOutput(self, "GatewayLogGroupName", value=self.gateway.gateway.log_group.log_group_name)
        cdk.CfnOutput(self, "ApiAccessLogGroupName", value=self.gateway.access_logs.log_group_name)

    def _outputs(self) -> None:
        cdk.CfnOutput(
            self, "KeyPepperSecretArn", value=self.key_pepper.secret.secret_arn, description="for llmops keys create"
        )
        cdk.CfnOutput(self, "OnCallTopicArn", value=self.alerting.topic.topic_arn)
        cdk.CfnOutput(self, "AuditDeadLetterQueueUrl", value=self.audit_dead_letters.queue.queue_url)
        cdk.CfnOutput(self, "ApiUrl", value=self.gateway.url, description="API Gateway stage URL")
        cdk.CfnOutput(
            self,
            "OpenAIBaseUrl",
            value=f"{self.gateway.url}v1",
            description="base_url for OpenAI SDKs",
        )
        for logical_name, table in self.tables.tables.items():
            cdk.CfnOutput(self, f"{logical_name}TableName", value=table.table_name)
        for output_name, value in self.workflows.outputs().items():  # names the CLI looks up
            cdk.CfnOutput(self, output_name, value=value)
