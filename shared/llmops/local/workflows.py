"""The workflows half of the local stack: the three state machines in moto, and what they act on.

`provision_workflows` creates, from the same ASL files CDK deploys, the canary, retraining and
approval machines and everything a deployed stack gets from its workflow constructs: an execution
role (moto wants one, and ignores it), the notification topic, the artifact bucket, the SageMaker
pipeline and model package group the retraining machine drives, and SageMaker endpoints for the
route targets that name a variant, so a local SageMaker canary has real (moto) variant weights to
move. Idempotent.

The returned names use the deployed stack's output keys, so the CLI reads either the same way.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from llmops.config.env import EnvVar
from llmops.workflows import APPROVAL, CANARY, RETRAINING, load_definition
from llmops.workflows.canary_input import CanaryInput, TargetRef
from llmops.workflows.retraining_input import REQUIRED_PIPELINE_PARAMETERS, RUN_CONTEXT_PIPELINE_PARAMETERS

__all__ = [
    "LOCAL_PREFIX",
    "OUTPUT_ALARM_STAGE",
    "OUTPUT_APPROVAL_ARN",
    "OUTPUT_ARTIFACT_BUCKET",
    "OUTPUT_CANARY_ARN",
    "OUTPUT_MODEL_PACKAGE_GROUP",
    "OUTPUT_NOTIFICATION_TOPIC",
    "OUTPUT_PIPELINE_NAME",
    "OUTPUT_RETRAINING_ARN",
    "local_artifact_bucket",
    "local_model_package_group",
    "local_pipeline_name",
    "local_state_machine_name",
    "local_workflows_role",
    "provision_workflows",
]

LOCAL_PREFIX = "llmops-local"

# Stack output keys (the CDK stack exports the same names).
OUTPUT_CANARY_ARN = "CanaryStateMachineArn"
OUTPUT_RETRAINING_ARN = "RetrainingStateMachineArn"
OUTPUT_APPROVAL_ARN = "ApprovalStateMachineArn"
OUTPUT_NOTIFICATION_TOPIC = "NotificationTopicArn"
OUTPUT_ARTIFACT_BUCKET = "ArtifactBucket"
OUTPUT_PIPELINE_NAME = "PipelineName"
OUTPUT_MODEL_PACKAGE_GROUP = "ModelPackageGroupName"
OUTPUT_ALARM_STAGE = "AlarmStage"  # alarm names are llmops-<stage>-...

ClientFactory = Callable[[str], Any]

_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
# A pipeline that declares every parameter the retraining machine passes (the run context with a
# default, as the shipped pipeline does); moto never runs steps, so nothing registers a package and
# the machine registers the model itself, as for a pipeline that only trains.
_PIPELINE_DEFINITION = {
    "Version": "2020-12-01",
    "Parameters": [
        *({"Name": name, "Type": "String"} for name in REQUIRED_PIPELINE_PARAMETERS),
        *({"Name": name, "Type": "String", "DefaultValue": ""} for name in RUN_CONTEXT_PIPELINE_PARAMETERS),
    ],
    "Steps": [],
}
_LOCAL_INSTANCE_TYPE = "ml.g4dn.xlarge"  # moto validates instance types; nothing runs on it


def local_state_machine_name(workflow: str, prefix: str = LOCAL_PREFIX) -> str:
    return f"{prefix}-{workflow}"


def local_artifact_bucket(prefix: str = LOCAL_PREFIX) -> str:
    return f"{prefix}-artifacts"


def local_pipeline_name(prefix: str = LOCAL_PREFIX) -> str:
    return f"{prefix}-fine-tuning"


def local_model_package_group(prefix: str = LOCAL_PREFIX) -> str:
    return f"{prefix}-candidates"


def local_workflows_role(iam: Any, prefix: str = LOCAL_PREFIX) -> str:
    """The role the local workflows run as (moto ignores it): created if missing."""
    return _role(iam, f"{prefix}-workflows")


def _role(iam: Any, name: str) -> str:
    try:
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(_TRUST_POLICY))["Role"]["Arn"])


def _bucket(s3: Any, name: str) -> str:
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        s3.create_bucket(Bucket=name)
    return name


def _pipeline(sagemaker: Any, name: str, role_arn: str) -> str:
    existing = {p["PipelineName"] for p in sagemaker.list_pipelines().get("PipelineSummaries", [])}
    if name not in existing:
        sagemaker.create_pipeline(
            PipelineName=name,
            PipelineDefinition=json.dumps(_PIPELINE_DEFINITION),
            RoleArn=role_arn,
            PipelineDescription="Local stand-in for the fine-tuning pipeline (moto marks executions Succeeded).",
        )
    return name


def _model_package_group(sagemaker: Any, name: str) -> str:
    existing = {
        g["ModelPackageGroupName"]
        for g in sagemaker.list_model_package_groups().get("ModelPackageGroupSummaryList", [])
    }
    if name not in existing:
        sagemaker.create_model_package_group(
            ModelPackageGroupName=name, ModelPackageGroupDescription="Retrained candidates awaiting approval."
        )
    return name


def _variant_endpoints(routes_document: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """endpoint name -> {variant: initial weight}, from the route targets that name a variant."""
    weights: dict[str, float] = {}
    for route in routes_document.get("routes", {}).values():
        for entry in route.get("targets", []):
            weights[str(entry["target"])] = float(entry.get("weight", 1))
    endpoints: dict[str, dict[str, float]] = {}
    for target_id, spec in routes_document.get("targets", {}).items():
        if spec.get("provider") == "sagemaker" and spec.get("variant") and spec.get("endpoint_name"):
            variants = endpoints.setdefault(str(spec["endpoint_name"]), {})
            variants[str(spec["variant"])] = weights.get(target_id, 0.0)
    return endpoints


def _endpoints(sagemaker: Any, routes_document: Mapping[str, Any], role_arn: str) -> None:
    existing = {e["EndpointName"] for e in sagemaker.list_endpoints().get("Endpoints", [])}
    for endpoint, variants in _variant_endpoints(routes_document).items():
        if endpoint in existing:
            continue
        production_variants = []
        for variant, weight in sorted(variants.items()):
            model = f"{endpoint}-{variant}"[:63]
            sagemaker.create_model(
                ModelName=model, ExecutionRoleArn=role_arn, PrimaryContainer={"Image": "local/emulated:latest"}
            )
            production_variants.append(
                {
                    "VariantName": variant,
                    "ModelName": model,
                    "InitialInstanceCount": 1,
                    "InstanceType": _LOCAL_INSTANCE_TYPE,
                    "InitialVariantWeight": weight,
                }
            )
        sagemaker.create_endpoint_config(EndpointConfigName=endpoint, ProductionVariants=production_variants)
        sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=endpoint)


def _state_machine(sfn: Any, name: str, definition: str, role_arn: str) -> str:
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page.get("stateMachines", []):
            if machine["name"] == name:
                arn = str(machine["stateMachineArn"])
                sfn.update_state_machine(stateMachineArn=arn, definition=definition, roleArn=role_arn)
                return arn
    return str(sfn.create_state_machine(name=name, definition=definition, roleArn=role_arn)["stateMachineArn"])


def _approval_substitutions(canary_arn: str, topic_arn: str, prefix: str, canary_bake_seconds: int) -> dict[str, str]:
    # Bake and gate poll as CanaryInput computes them, as the CDK stack does.
    defaults = CanaryInput(
        alias="alias",
        baseline=TargetRef(target="baseline"),
        candidate=TargetRef(target="candidate"),
        bake_seconds=canary_bake_seconds,
    ).to_execution_input()
    return {
        "CanaryStateMachineArn": canary_arn,
        "NotificationTopicArn": topic_arn,
        # The CDK alarms are `llmops-<stage>-<gate>-<target>`; locally the stage is the prefix.
        "GateAlarmPrefix": f"{prefix}-",
        "CanaryBakeSeconds": str(defaults["bake_seconds"]),
        "CanaryGatePollSeconds": str(defaults["gate_poll_seconds"]),
    }


def provision_workflows(
    client_factory: ClientFactory,
    env: Mapping[str, str],
    routes_document: Mapping[str, Any] | None = None,
    prefix: str = LOCAL_PREFIX,
    canary_bake_seconds: int = 600,
) -> dict[str, str]:
    """Creates the workflow resources in moto and returns them under the stack output keys.

    `client_factory(service)` returns a boto3 client pointed at moto; `env` is the local stack's
    environment (the Routes and Prompts table names come from `LLMOPS_ROUTES_TABLE` and
    `LLMOPS_PROMPTS_TABLE`); `routes_document` (the routes.json contents) decides which SageMaker
    endpoints and variants to create; `canary_bake_seconds` is the bake of canaries the approval
    machine starts.
    """
    routes_table = env.get(EnvVar.ROUTES_TABLE.value) or f"{prefix}-Routes"
    prompts_table = env.get(EnvVar.PROMPTS_TABLE.value) or f"{prefix}-Prompts"
    role_arn = local_workflows_role(client_factory("iam"), prefix)
    topic_arn = str(client_factory("sns").create_topic(Name=f"{prefix}-notifications")["TopicArn"])
    bucket = _bucket(client_factory("s3"), local_artifact_bucket(prefix))
    sagemaker = client_factory("sagemaker")
    pipeline = _pipeline(sagemaker, local_pipeline_name(prefix), role_arn)
    group = _model_package_group(sagemaker, local_model_package_group(prefix))
    if routes_document is not None:
        _endpoints(sagemaker, routes_document, role_arn)

    sfn = client_factory("stepfunctions")
    canary = load_definition(
        CANARY, {"RoutesTable": routes_table, "PromptsTable": prompts_table, "NotificationTopicArn": topic_arn}
    )
    retraining = load_definition(
        RETRAINING,
        {
            "ArtifactBucket": bucket,
            "PipelineName": pipeline,
            "ModelPackageGroupName": group,
            "NotificationTopicArn": topic_arn,
        },
    )
    canary_arn = _state_machine(sfn, local_state_machine_name(CANARY, prefix), canary, role_arn)
    approval = load_definition(APPROVAL, _approval_substitutions(canary_arn, topic_arn, prefix, canary_bake_seconds))
    return {
        OUTPUT_CANARY_ARN: canary_arn,
        OUTPUT_RETRAINING_ARN: _state_machine(sfn, local_state_machine_name(RETRAINING, prefix), retraining, role_arn),
        OUTPUT_APPROVAL_ARN: _state_machine(sfn, local_state_machine_name(APPROVAL, prefix), approval, role_arn),
        OUTPUT_NOTIFICATION_TOPIC: topic_arn,
        OUTPUT_ARTIFACT_BUCKET: bucket,
        OUTPUT_PIPELINE_NAME: pipeline,
        OUTPUT_MODEL_PACKAGE_GROUP: group,
    }
