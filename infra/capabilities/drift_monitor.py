"""The drift monitor Lambda and its schedule: it measures, publishes `DriftScore` and stages
`staging/drift-monitor/<alias>/latest.jsonl`; in a deployed stack it never starts runs itself (the
retraining trigger alarms do, once per crossing)."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.capabilities.artifacts import STAGING_PREFIX, ArtifactBuckets
from infra.capabilities.python_function import FunctionSpec, PythonFunction
from infra.capabilities.state_machines import acknowledge_resources
from infra.capabilities.tables import TableAccess, Tables
from infra.capabilities.workflow_settings import WorkflowSettings
from infra.config import GatewayConfig
from llmops.config.env import EnvVar
from llmops.observability.metrics import DRIFT_MONITOR_SERVICE

__all__ = ["drift_monitor_function"]


def drift_monitor_function(
    scope: Construct,
    config: GatewayConfig,
    settings: WorkflowSettings,
    tables: Tables,
    layer: lambda_.ILayerVersion,
    artifacts: ArtifactBuckets,
) -> PythonFunction:
    function = PythonFunction(
        scope,
        "DriftMonitor",
        config=config,
        layer=layer,
        spec=FunctionSpec(
            directory="drift_monitor",
            service=DRIFT_MONITOR_SERVICE,
            description="llmops drift monitor: drift score, fine-tuning export, retraining signals",
            memory_mb=1024,
            timeout_s=900,
            reserved_concurrency=1,
            environment={
                EnvVar.ARTIFACT_BUCKET: artifacts.bucket.bucket_name,
                EnvVar.DRIFT_THRESHOLD: str(settings.drift_threshold),
                EnvVar.NEGATIVE_FEEDBACK_THRESHOLD: str(settings.negative_feedback_threshold),
                # The alarms on its metrics start the runs here, once per crossing.
                EnvVar.DRIFT_START_RETRAINING: "false",
            },
        ),
    )
    tables.grant(function.function, {"Audit": TableAccess.READ, "Feedback": TableAccess.READ})
    function.role.add_to_policy(
        iam.PolicyStatement(
            sid="StageExports",
            actions=["s3:PutObject"],
            resources=[exports := artifacts.bucket.arn_for_objects(f"{STAGING_PREFIX}drift-monitor/*")],
        )
    )
    acknowledge_resources(
        function.role,
        {exports: "Writes only its own exports, under staging/drift-monitor/<alias>/."},
    )
    events.Rule(
        scope,
        "DriftSchedule",
        description="Runs the drift monitor.",
        schedule=events.Schedule.expression(settings.drift_schedule),
        targets=[targets.LambdaFunction(function.function, retry_attempts=2)],
    )
    return function
