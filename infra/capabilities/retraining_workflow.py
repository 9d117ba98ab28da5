"""The retraining state machine: copies a staged dataset into the run's prefix, runs the fine-tuning
pipeline with the parameters it declares, and uses the package the pipeline registered or else
registers the model as a candidate package (PendingManualApproval)."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.capabilities.alerting import Alerting
from infra.capabilities.artifacts import RETRAINING_PREFIX, STAGING_PREFIX, ArtifactBuckets
from infra.capabilities.state_machines import (
    acknowledge_resources,
    grant_notify,
    logged_state_machine,
    sagemaker_arn,
    state_machine_role,
)
from infra.config import GatewayConfig
from llmops.workflows import RETRAINING, load_definition

__all__ = ["retraining_state_machine"]


def retraining_state_machine(
    scope: Construct,
    config: GatewayConfig,
    artifacts: ArtifactBuckets,
    alerting: Alerting,
    *,
    pipeline_name: str,
    model_package_group_name: str,
) -> sfn.StateMachine:
    role = state_machine_role(scope, config, "retraining")
    bucket = artifacts.bucket
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
    pipeline = sagemaker_arn(scope, "pipeline", pipeline_name)
    role.add_to_policy(
        iam.PolicyStatement(
            sid="RunFineTuningPipeline",
            # DescribePipeline: the machine passes only the parameters the pipeline declares.
            actions=["sagemaker:DescribePipeline", "sagemaker:StartPipelineExecution"],
            resources=[pipeline],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="FollowFineTuningPipeline",
            actions=["sagemaker:DescribePipelineExecution"],
            resources=[pipeline_executions := f"{pipeline}/execution/*"],
        )
    )
    group = model_package_group_name
    role.add_to_policy(
        iam.PolicyStatement(
            sid="RegisterCandidates",
            actions=["sagemaker:CreateModelPackage"],
            resources=[
                sagemaker_arn(scope, "model-package-group", group),
                packages := sagemaker_arn(scope, "model-package", f"{group}/*"),
            ],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="FindPipelineRegisteredCandidate",
            actions=["sagemaker:DescribeModelPackage"],
            resources=[packages],
        )
    )
    # ListModelPackages has no resource type; the call names the group, and DescribeModelPackage
    # (which reads the metadata) is scoped to it.
    role.add_to_policy(
        iam.PolicyStatement(sid="ListCandidates", actions=["sagemaker:ListModelPackages"], resources=["*"])
    )
    grant_notify(role, alerting)
    definition = load_definition(
        RETRAINING,
        {
            "ArtifactBucket": bucket.bucket_name,
            "PipelineName": pipeline_name,
            "ModelPackageGroupName": group,
            "NotificationTopicArn": alerting.topic.topic_arn,
        },
    )
    machine = logged_state_machine(
        scope,
        config,
        "retraining",
        definition,
        role,
        unscoped=" sagemaker:ListModelPackages (read-only) is granted on all resources too: it has no "
        "resource type (the machine lists its own group and describes only packages in it).",
    )
    acknowledge_resources(
        role,
        {
            staged: "Reads only staged exports, under staging/.",
            run_artifacts: "Writes only under retraining/, one prefix per execution named at run time.",
            pipeline_executions: "Pipeline execution ids are generated per run; the pipeline itself is fixed.",
            packages: "Model package versions are numbered by SageMaker; the group is fixed.",
        },
    )
    return machine
