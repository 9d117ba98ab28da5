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
(parameters `TrainingDataS3Uri` and `ModelOutputS3Uri`, `model.tar.gz` under the latter; optionally
`Alias` and `BaselineTarget`, and its own package naming the execution in `llmops:pipeline-execution`).

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

One module per part, each creating its resources in this construct's scope (so the logical ids are
the stack's own): `workflow_settings` (context knobs, retrainable aliases), `state_machines` (role,
logs, tracing, nag acknowledgements shared by the machines), `canary_workflow`,
`retraining_workflow`, `approval_workflow`, `drift_monitor` and `retraining_triggers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.capabilities.alarms import Alarms
from infra.capabilities.alerting import Alerting
from infra.capabilities.approval_workflow import approval_state_machine
from infra.capabilities.artifacts import ArtifactBuckets
from infra.capabilities.canary_workflow import canary_state_machine
from infra.capabilities.drift_monitor import drift_monitor_function
from infra.capabilities.retraining_triggers import RETRAINING_TRIGGER_RUNBOOK, RetrainingTriggers
from infra.capabilities.retraining_workflow import retraining_state_machine
from infra.capabilities.tables import Tables
from infra.capabilities.workflow_settings import WorkflowSettings, retrainable_aliases, workflow_settings_from_context
from infra.config import GatewayConfig

__all__ = [
    "RETRAINING_TRIGGER_RUNBOOK",
    "WorkflowSettings",
    "Workflows",
    "retrainable_aliases",
    "workflow_settings_from_context",
]


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
        self.pipeline_name = self.settings.pipeline(config)
        self.model_package_group_name = self.settings.model_package_group(config)
        self.artifacts = ArtifactBuckets(self, "Artifacts", config=config)

        self.canary = canary_state_machine(self, config, tables, alerting)
        self.retraining = retraining_state_machine(
            self,
            config,
            self.artifacts,
            alerting,
            pipeline_name=self.pipeline_name,
            model_package_group_name=self.model_package_group_name,
        )
        self.approval, self.approval_rule = approval_state_machine(
            self,
            config,
            alerting,
            alarms,
            self.canary,
            model_package_group_name=self.model_package_group_name,
            canary_bake_seconds=self.settings.canary_bake_seconds,
        )
        for name, machine in (("canary", self.canary), ("retraining", self.retraining), ("approval", self.approval)):
            alarms.add_state_machine_failure_alarm(machine, name=name)

        self.drift_monitor = drift_monitor_function(self, config, self.settings, tables, layer, self.artifacts)
        triggers = RetrainingTriggers(
            self, config=config, settings=self.settings, alerting=alerting, alarms=alarms, retraining=self.retraining
        )
        for alias, baseline in retrainable_aliases(routes).items():
            triggers.add(alias, baseline)
        self.trigger_alarms: list[cloudwatch.Alarm] = triggers.alarms

    def outputs(self) -> dict[str, str]:
        """Stack output name -> value; the CLI finds the deployed workflows by these names."""
        return {
            "CanaryStateMachineArn": self.canary.state_machine_arn,
            "RetrainingStateMachineArn": self.retraining.state_machine_arn,
            "ApprovalStateMachineArn": self.approval.state_machine_arn,
            "ArtifactBucket": self.artifacts.bucket.bucket_name,
            "PipelineName": self.pipeline_name,
            "ModelPackageGroupName": self.model_package_group_name,
            # `llmops canary start` gates on the candidate's alarms by default: llmops-<stage>-canary-*.
            "AlarmStage": self.config.stage.value,
        }
