"""A Python Lambda the way every function in this project runs: arm64, 3.12, shared layer, traced.

Each function gets its own role (no AWS managed policy: it may write only to its own log group)
and an explicit log group with a retention, so nothing is created lazily by the Lambda service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import REPO_ROOT, GatewayConfig
from infra.nag import acknowledge
from llmops.config.env import EnvVar
from llmops.observability.metrics import NAMESPACE
from llmops.observability.powertools_env import powertools_environment

__all__ = ["FUNCTIONS_DIR", "METRICS_NAMESPACE", "FunctionSpec", "PythonFunction", "retention"]

FUNCTIONS_DIR = REPO_ROOT / "functions"
METRICS_NAMESPACE = NAMESPACE  # the metric catalogue is the one source of the namespace

_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def retention(days: int) -> logs.RetentionDays:
    return _RETENTION[days]


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    directory: str  # functions/<directory>/, holding handler.py
    service: str  # POWERTOOLS_SERVICE_NAME: the service dimension on metrics, logs and traces
    description: str
    memory_mb: int = 512
    timeout_s: int = 10
    reserved_concurrency: int | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    handler: str = "handler.handler"


class PythonFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: FunctionSpec,
        layer: lambda_.ILayerVersion,
        config: GatewayConfig,
    ) -> None:
        super().__init__(scope, construct_id)
        source = FUNCTIONS_DIR / spec.directory
        if not source.is_dir():
            raise FileNotFoundError(f"Lambda source directory {source} does not exist (expected handler.py there)")
        removal = cdk.RemovalPolicy.RETAIN if config.is_prod else cdk.RemovalPolicy.DESTROY

        self.log_group = logs.LogGroup(self, "Logs", retention=retention(config.retention_days), removal_policy=removal)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"llmops {spec.service} function ({config.stage.value})",
        )
        self.log_group.grant_write(self.role)

        environment = {
            EnvVar.STAGE: config.stage.value,
            **powertools_environment(spec.service),
            **spec.environment,
        }
        self.function = lambda_.Function(
            self,
            "Function",
            description=spec.description,
            code=lambda_.Code.from_asset(str(source), exclude=["__pycache__", "*.pyc"]),
            handler=spec.handler,
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.ARM_64,
            layers=[layer],
            memory_size=spec.memory_mb,
            timeout=cdk.Duration.seconds(spec.timeout_s),
            reserved_concurrent_executions=spec.reserved_concurrency,
            tracing=lambda_.Tracing.ACTIVE,
            role=self.role,
            log_group=self.log_group,
            environment=environment,
        )
        acknowledge(
            self,
            (
                "AwsSolutions-L1",
                "Pinned to python3.12 on purpose: the shared layer's compiled wheels (pydantic-core) "
                "are built for cp312 and the runtime is moved deliberately, with the layer.",
            ),
            (
                "AwsSolutions-IAM5[Resource::*]",
                "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions; "
                "added by CDK for active tracing.",
            ),
        )

    def add_environment(self, name: str, value: str) -> None:
        self.function.add_environment(name, value)
