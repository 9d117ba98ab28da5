"""The control plane: canary, retraining and approval state machines, the drift monitor, and the
EventBridge wiring that closes the loop.

    drift monitor (schedule) --DriftScore--> alarm --\\
    gateway --FeedbackNegative-----------> alarm ----> EventBridge -> retraining state machine
    retraining -> model package (PendingManualApproval) --approved--> approval state machine
    approval state machine -> canary state machine

The ASL files are the ones the local stack and the tests run (`llmops.workflows`), with every
`${Placeholder}` bound to a real resource here. Each machine has its own least-privilege role, logs
to its own log group (ALL events, never execution data: inputs and outputs could name prompts'
metadata) and is traced with X-Ray; each has a failure alarm.

The stack does not create the SageMaker pipeline or the model package group; it names them
(context `retrainingPipelineName`, `modelPackageGroupName`, defaults `llmops-<stage>-fine-tuning`
and `llmops-<stage>-candidates`), and the pipeline must follow the contract in docs/workflows.md
(parameters `TrainingDataS3Uri` and `ModelOutputS3Uri`, `model.tar.gz` under the latter).

Approval starts a canary through a small service-integration-only state machine (approval.asl.json)
rather than an input transformer: transformer paths cannot contain ':' (the `llmops:*` metadata keys)
and the event is not documented to carry the package's metadata, so the machine reads the package
(DescribeModelPackage) and needs these customer metadata properties on it:

    llmops:alias              the route alias to move                          (required)
    llmops:baseline-target    its current target                               (required)
    llmops:candidate-target   the route target serving the new model           (required)
    llmops:endpoint-name      with the two variants below: a `sagemaker` canary (optional)
    llmops:baseline-variant / llmops:candidate-variant

The retraining run sets the first two; whoever deploys the approved model as a route target adds the
candidate (UpdateModelPackage can set metadata and approve in one call). Incomplete metadata starts
nothing and notifies on-call. The canary runs the default steps, `canaryBakeSeconds`, and the four
gate alarms of the candidate target; the execution is named `canary-<group>-v<version>`, so a
duplicate event cannot start a second canary.

Retraining alarms exist for each alias served by a SageMaker target (a fine-tuned model comes back
as a SageMaker model package). The alarms always notify on-call; they start a retraining run only
when context `retrainingInferenceImage` is set, since a run without an inference image cannot
register its model. The drift monitor itself never starts runs in a deployed stack (the alarms do,
once per crossing); it measures, publishes and stages `staging/drift-monitor/<alias>/latest.jsonl`,
the dataset the alarm-started runs train on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from infra.capabilities.alarms import CANARY_GATES, Alarms, catalogue_metric
from infra.capabilities.alerting import Alerting
from infra.capabilities.artifacts import RETRAINING_PREFIX, STAGING_PREFIX, ArtifactBuckets
from infra.capabilities.model_access import sagemaker_endpoint_arn
from infra.capabilities.python_function import FunctionSpec, PythonFunction, retention
from infra.capabilities.tables import TableAccess, Tables
from infra.config import ConfigError, GatewayConfig
from infra.nag import acknowledge
from llmops.config.drift_monitor import latest_dataset_key
from llmops.config.env import EnvVar
from llmops.observability.metrics import DRIFT_MONITOR_SERVICE, DRIFT_SCORE, FEEDBACK_NEGATIVE, NAMESPACE, Dim
from llmops.workflows import APPROVAL, CANARY, RETRAINING, load_definition
from llmops.workflows.canary_input import CanaryInput, TargetRef
from llmops.workflows.retraining_input import RetrainingInput, Thresholds

__all__ = [
    "RETRAINING_TRIGGER_RUNBOOK",
    "WorkflowSettings",
    "Workflows",
    "retrainable_aliases",
    "workflow_settings_from_context",
]

RETRAINING_TRIGGER_RUNBOOK = "retraining-trigger"
_SCHEDULE = r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\([^()]+\))$"


class WorkflowSettings(BaseModel):
    """Workflow knobs from CDK context; every one has a working default."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    pipeline_name: str | None = Field(default=None, alias="retrainingPipelineName", pattern=r"^[a-zA-Z0-9-]{1,80}$")
    model_package_group_name: str | None = Field(
        default=None, alias="modelPackageGroupName", pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,55}$"
    )
    inference_image: str | None = Field(default=None, alias="retrainingInferenceImage", max_length=255)
    drift_schedule: str = Field(default="rate(1 day)", alias="driftSchedule", pattern=_SCHEDULE)
    drift_threshold: float = Field(default=Thresholds().drift_score, gt=0, le=1, alias="driftThreshold")
    negative_feedback_threshold: float = Field(
        default=Thresholds().negative_feedback_rate, gt=0, le=1, alias="negativeFeedbackThreshold"
    )
    # Ratings per hour below which the feedback alarm stays quiet: two thumbs-down are not a trend.
    min_hourly_ratings: int = Field(default=20, ge=1, alias="retrainingMinHourlyRatings")
    canary_bake_seconds: int = Field(default=600, ge=0, le=7 * 86_400, alias="canaryBakeSeconds")

    @field_validator("inference_image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        return value or None

    def pipeline(self, config: GatewayConfig) -> str:
        return self.pipeline_name or f"llmops-{config.stage.value}-fine-tuning"

    def model_package_group(self, config: GatewayConfig) -> str:
        return self.model_package_group_name or f"llmops-{config.stage.value}-candidates"


def workflow_settings_from_context(get: Callable[[str], Any]) -> WorkflowSettings:
    keys = [field.alias or name for name, field in WorkflowSettings.model_fields.items()]
    values = {key: value for key in keys if (value := get(key)) is not None}
    try:
        return WorkflowSettings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"context {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"invalid CDK context for llmops-gateway workflows: {problems}") from None


def _main_target(route: Mapping[str, Any]) -> str | None:
    entries = sorted(route.get("targets", []), key=lambda e: -float(e.get("weight", 1)))
    return str(entries[0]["target"]) if entries else None


def retrainable_aliases(routes: Mapping[str, Any]) -> dict[str, str]:
    """alias -> the SageMaker target serving most of it (the baseline a retrained model replaces)."""
    found: dict[str, str] = {}
    for alias, route in sorted(routes.get("routes", {}).items()):
        target = _main_target(route)
        if target and routes.get("targets", {}).get(target, {}).get("provider") == "sagemaker":
            found[alias] = target
    return found


def _sagemaker_arn(stack: cdk.Stack, resource: str, name: str) -> str:
    # SageMaker lower-cases resource names in its ARNs.
    return stack.format_arn(service="sagemaker", resource=resource, resource_name=name.lower())


class Workflows(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: GatewayConfig,
        tables: Tables,
        alerting: Alerting,
        alarms: Alarms,
        layer: lambda_.ILayerVersion,
        routes: Mapping[str, Any],
        settings: WorkflowSettings | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.settings = settings or workflow_settings_from_context(self.node.try_get_context)
        self.stack = cdk.Stack.of(self)
        self.topic = alerting.topic
        self.alerting = alerting
        self.alarms = alarms
        self.pipeline_name = self.settings.pipeline(config)
        self.model_package_group_name = self.settings.model_package_group(config)
        self.artifacts = ArtifactBuckets(self, "Artifacts", config=config)

        self.canary = self._canary(tables)
        self.retraining = self._retraining()
        self.approval = self._approval()
        for name, machine in (("canary", self.canary), ("retraining", self.retraining), ("approval", self.approval)):
            alarms.add_state_machine_failure_alarm(machine, name=name)

        self.drift_monitor = self._drift_monitor(tables, layer)
        self.trigger_alarms: list[cloudwatch.Alarm] = []
        for alias, baseline in retrainable_aliases(routes).items():
            self._retraining_triggers(alias, baseline)

    # --- state machines -------------------------------------------------------------------------

    def _state_machine(self, name: str, definition: str, role: iam.Role, *, unscoped: str = "") -> sfn.StateMachine:
        removal = cdk.RemovalPolicy.RETAIN if self.config.is_prod else cdk.RemovalPolicy.DESTROY
        log_group = logs.LogGroup(
            self,
            f"{name.capitalize()}Logs",
            # The /aws/vendedlogs/ prefix keeps Step Functions from growing the account's (size
            # limited) CloudWatch Logs resource policy by one statement per machine.
            log_group_name=f"/aws/vendedlogs/states/llmops-{self.config.stage.value}-{name}",
            retention=retention(self.config.retention_days),
            removal_policy=removal,
        )
        machine = sfn.StateMachine(
            self,
            f"{name.capitalize()}StateMachine",
            state_machine_name=f"llmops-{self.config.stage.value}-{name}",
            definition_body=sfn.DefinitionBody.from_string(definition),
            role=role,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        )
        acknowledge(
            role,
            (
                "AwsSolutions-IAM5[Resource::*]",
                "Step Functions log delivery (logs:CreateLogDelivery and friends) and X-Ray "
                "(PutTraceSegments, PutTelemetryRecords) support no resource-level permissions; CDK adds "
                f"them for logging and tracing.{unscoped}",
            ),
        )
        return machine

    def _role(self, name: str) -> iam.Role:
        return iam.Role(
            self,
            f"{name.capitalize()}Role",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description=f"llmops {name} state machine ({self.config.stage.value})",
        )

    def _grant_notify(self, role: iam.Role) -> None:
        role.add_to_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn]))
        # The on-call topic is encrypted with its own key; publishing needs a data key from it.
        self.alerting.key.grant(role, "kms:Decrypt", "kms:GenerateDataKey")

    def _canary(self, tables: Tables) -> sfn.StateMachine:
        role = self._role("canary")
        routes_table = tables.table("Routes")
        routes_table.grant(role, "dynamodb:UpdateItem")
        # Release bundles: read a prompt label and candidate version before any traffic moves, move
        # the label at 100% and back on rollback (conditional writes on the label item only).
        prompts_table = tables.table("Prompts")
        prompts_table.grant(role, "dynamodb:GetItem", "dynamodb:UpdateItem")
        tables.key.grant(role, "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey")
        if self.config.sagemaker_endpoint_names:
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="MoveConfiguredEndpointVariants",
                    actions=["sagemaker:UpdateEndpointWeightsAndCapacities", "sagemaker:DescribeEndpoint"],
                    resources=[sagemaker_endpoint_arn(self.stack, n) for n in self.config.sagemaker_endpoint_names],
                )
            )
        role.add_to_policy(
            iam.PolicyStatement(sid="ReadGateAlarms", actions=["cloudwatch:DescribeAlarms"], resources=["*"])
        )
        self._grant_notify(role)
        definition = load_definition(
            CANARY,
            {
                "RoutesTable": routes_table.table_name,
                "PromptsTable": prompts_table.table_name,
                "NotificationTopicArn": self.topic.topic_arn,
            },
        )
        return self._state_machine(
            "canary",
            definition,
            role,
            unscoped=" cloudwatch:DescribeAlarms (read-only) is granted on all alarms too: the gates are "
            "alarm names chosen per execution.",
        )

    def _retraining(self) -> sfn.StateMachine:
        role = self._role("retraining")
        bucket = self.artifacts.bucket
        staged = bucket.arn_for_objects(f"{STAGING_PREFIX}*")
        run_artifacts = bucket.arn_for_objects(f"{RETRAINING_PREFIX}*")
        role.add_to_policy(iam.PolicyStatement(sid="ReadStagedDatasets", actions=["s3:GetObject"], resources=[staged]))
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteRunArtifacts",
                actions=["s3:PutObject"],
                resources=[run_artifacts],
            )
        )
        pipeline = _sagemaker_arn(self.stack, "pipeline", self.pipeline_name)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="RunFineTuningPipeline", actions=["sagemaker:StartPipelineExecution"], resources=[pipeline]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="FollowFineTuningPipeline",
                actions=["sagemaker:DescribePipelineExecution"],
                resources=[pipeline_executions := f"{pipeline}/execution/*"],
            )
        )
        group = self.model_package_group_name
        role.add_to_policy(
            iam.PolicyStatement(
                sid="RegisterCandidates",
                actions=["sagemaker:CreateModelPackage"],
                resources=[
                    _sagemaker_arn(self.stack, "model-package-group", group),
                    packages := _sagemaker_arn(self.stack, "model-package", f"{group}/*"),
                ],
            )
        )
        self._grant_notify(role)
        definition = load_definition(
            RETRAINING,
            {
                "ArtifactBucket": bucket.bucket_name,
                "PipelineName": self.pipeline_name,
                "ModelPackageGroupName": group,
                "NotificationTopicArn": self.topic.topic_arn,
            },
        )
        machine = self._state_machine("retraining", definition, role)
        self._acknowledge_resources(
            role,
            {
                staged: "Reads only staged exports, under staging/.",
                run_artifacts: "Writes only under retraining/, one prefix per execution named at run time.",
                pipeline_executions: "Pipeline execution ids are generated per run; the pipeline itself is fixed.",
                packages: "Model package versions are numbered by SageMaker; the group is fixed.",
            },
        )
        return machine

    def gate_alarm_prefix(self) -> str:
        """`llmops-<stage>-`: the canary gates are `<prefix><gate>-<target>` (see approval.asl.json)."""
        probe = "target"
        prefix = f"llmops-{self.config.stage.value}-"
        expected = [f"{prefix}{gate.value}-{probe}" for gate in CANARY_GATES]
        if self.alarms.gate_names(probe) != expected:
            raise ConfigError("canary gate alarm names no longer match the approval workflow's gate names")
        return prefix

    def _approval(self) -> sfn.StateMachine:
        role = self._role("approval")
        group = self.model_package_group_name
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadApprovedCandidates",
                actions=["sagemaker:DescribeModelPackage"],
                resources=[packages := _sagemaker_arn(self.stack, "model-package", f"{group}/*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="StartCanary", actions=["states:StartExecution"], resources=[self.canary.state_machine_arn]
            )
        )
        self._grant_notify(role)
        # Gate poll and bake as CanaryInput computes them, so the event-built input matches the CLI's.
        defaults = CanaryInput(
            alias="alias",
            baseline=TargetRef(target="baseline"),
            candidate=TargetRef(target="candidate"),
            bake_seconds=self.settings.canary_bake_seconds,
        ).to_execution_input()
        definition = load_definition(
            APPROVAL,
            {
                "CanaryStateMachineArn": self.canary.state_machine_arn,
                "NotificationTopicArn": self.topic.topic_arn,
                "GateAlarmPrefix": self.gate_alarm_prefix(),
                "CanaryBakeSeconds": str(defaults["bake_seconds"]),
                "CanaryGatePollSeconds": str(defaults["gate_poll_seconds"]),
            },
        )
        machine = self._state_machine("approval", definition, role)
        self._acknowledge_resources(
            role,
            {packages: "Model package versions are numbered by SageMaker; the group is fixed."},
        )
        rule = events.Rule(
            self,
            "CandidateApproved",
            description="Model package approved in the candidates group: start its canary.",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Package State Change"],
                detail={"ModelPackageGroupName": [group], "ModelApprovalStatus": ["Approved"]},
            ),
        )
        rule.add_target(targets.SfnStateMachine(machine, retry_attempts=3))
        self.approval_rule = rule
        return machine

    # --- drift monitor and triggers -------------------------------------------------------------

    def _drift_monitor(self, tables: Tables, layer: lambda_.ILayerVersion) -> PythonFunction:
        s = self.settings
        function = PythonFunction(
            self,
            "DriftMonitor",
            config=self.config,
            layer=layer,
            spec=FunctionSpec(
                directory="drift_monitor",
                service=DRIFT_MONITOR_SERVICE,
                description="llmops drift monitor: drift score, fine-tuning export, retraining signals",
                memory_mb=1024,
                timeout_s=900,
                reserved_concurrency=1,
                environment={
                    EnvVar.ARTIFACT_BUCKET: self.artifacts.bucket.bucket_name,
                    EnvVar.DRIFT_THRESHOLD: str(s.drift_threshold),
                    EnvVar.NEGATIVE_FEEDBACK_THRESHOLD: str(s.negative_feedback_threshold),
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
                resources=[exports := self.artifacts.bucket.arn_for_objects(f"{STAGING_PREFIX}drift-monitor/*")],
            )
        )
        self._acknowledge_resources(
            function.role,
            {exports: "Writes only its own exports, under staging/drift-monitor/<alias>/."},
        )
        events.Rule(
            self,
            "DriftSchedule",
            description="Runs the drift monitor.",
            schedule=events.Schedule.expression(s.drift_schedule),
            targets=[targets.LambdaFunction(function.function, retry_attempts=2)],
        )
        return function

    def _retraining_triggers(self, alias: str, baseline: str) -> None:
        s = self.settings
        day, hour = cdk.Duration.days(1), cdk.Duration.hours(1)
        drift = cloudwatch.Metric(
            namespace=NAMESPACE,
            metric_name=DRIFT_SCORE.name,
            dimensions_map={Dim.SERVICE.value: DRIFT_MONITOR_SERVICE, Dim.ALIAS.value: alias},
            statistic="Maximum",
            period=day,
        )
        ratings = {Dim.ALIAS: alias}
        feedback = cloudwatch.MathExpression(
            expression=f"IF(FILL(n, 0) >= {s.min_hourly_ratings}, FILL(r, 0), 0)",
            using_metrics={
                "r": catalogue_metric(FEEDBACK_NEGATIVE, statistic="Average", period=hour, dimensions=ratings),
                "n": catalogue_metric(FEEDBACK_NEGATIVE, statistic="SampleCount", period=hour, dimensions=ratings),
            },
            label=f"{alias} negative feedback rate (hours with at least {s.min_hourly_ratings} ratings)",
            period=hour,
        )
        for trigger, metric, threshold, periods, summary in (
            (
                "drift",
                drift,
                s.drift_threshold,
                1,
                f"Input drift of alias {alias} ({DRIFT_SCORE.name}) reached {s.drift_threshold:g}.",
            ),
            (
                "feedback",
                feedback,
                s.negative_feedback_threshold,
                3,
                f"More than {s.negative_feedback_threshold:.0%} of alias {alias}'s ratings were negative "
                f"({FEEDBACK_NEGATIVE.name}) for 3 hours.",
            ),
        ):
            self._trigger(alias, baseline, trigger, metric, threshold, periods, summary)

    def _trigger(
        self,
        alias: str,
        baseline: str,
        trigger: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        periods: int,
        summary: str,
    ) -> None:
        name = f"llmops-{self.config.stage.value}-{RETRAINING_TRIGGER_RUNBOOK}-{trigger}-{alias}"
        starts = self.settings.inference_image is not None
        action = "Starts a retraining run." if starts else "Set retrainingInferenceImage to start runs from it."
        alarm = cloudwatch.Alarm(
            self,
            f"Retrain{trigger.capitalize()}{''.join(p.capitalize() for p in alias.replace('.', '-').split('-'))}",
            alarm_name=name,
            alarm_description=(
                f"{summary} {action} Runbook: "
                f"{self.alarms.settings.runbook_base_url.rstrip('/')}/{RETRAINING_TRIGGER_RUNBOOK}.md"
            ),
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alerting.notify(alarm, on_ok=False)
        self.trigger_alarms.append(alarm)
        if not starts:
            return
        document = RetrainingInput(
            trigger="drift" if trigger == "drift" else "feedback",
            alias=alias,
            baseline_target=baseline,
            dataset_key=latest_dataset_key(alias),
            inference_image=str(self.settings.inference_image),
            # The alarm already compared the signal with its threshold.
            force=True,
        ).to_execution_input()
        events.Rule(
            self,
            f"{alarm.node.id}Starts",
            description=f"{name} in ALARM: start a retraining run for {alias}.",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=["CloudWatch Alarm State Change"],
                resources=[alarm.alarm_arn],
                detail={"state": {"value": ["ALARM"]}},
            ),
            targets=[
                targets.SfnStateMachine(
                    self.retraining, input=events.RuleTargetInput.from_object(document), retry_attempts=3
                )
            ],
        )

    # --- outputs and nag helpers ----------------------------------------------------------------

    def outputs(self) -> dict[str, str]:
        """Stack output name -> value; the CLI finds the deployed workflows by these names."""
        return {
            "CanaryStateMachineArn": self.canary.state_machine_arn,
            "RetrainingStateMachineArn": self.retraining.state_machine_arn,
            "ApprovalStateMachineArn": self.approval.state_machine_arn,
            "ArtifactBucket": self.artifacts.bucket.bucket_name,
            "PipelineName": self.pipeline_name,
            "ModelPackageGroupName": self.model_package_group_name,
        }

    def _nag_resource(self, value: str) -> str:
        """How cdk-nag spells a resource in a finding id: tokens as <Ref> or <LogicalId.Attr>."""
        resolved = self.stack.resolve(value)
        if isinstance(resolved, str):
            return resolved
        separator, parts = resolved["Fn::Join"]
        return str(separator).join(_nag_part(part) for part in parts)

    def _acknowledge_resources(self, role: iam.IRole, reasons: Mapping[str, str]) -> None:
        """Acknowledges IAM5 for each wildcard resource (given as the ARN granted) with its reason."""
        acknowledge(
            role,
            *(
                (f"AwsSolutions-IAM5[Resource::{self._nag_resource(resource)}]", reason)
                for resource, reason in reasons.items()
            ),
        )


def _nag_part(part: Any) -> str:
    if isinstance(part, str):
        return part
    if "Ref" in part:
        return f"<{part['Ref']}>"
    if "Fn::GetAtt" in part:
        return f"<{'.'.join(part['Fn::GetAtt'])}>"
    raise ValueError(f"cannot name {part!r} in a cdk-nag finding")
