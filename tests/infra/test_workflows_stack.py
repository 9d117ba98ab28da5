"""The workflows capability in the synthesized stack: buckets, state machines, IAM, EventBridge,
the drift monitor and the stack outputs the CLI reads."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import pytest

from infra.app import build_app, cdk_json_context
from infra.capabilities.alarms import CANARY_GATES
from infra.capabilities.workflows import WorkflowSettings, retrainable_aliases
from infra.config import GatewayConfig, routes_document
from llmops.config.drift_monitor import latest_dataset_key
from llmops.workflows import APPROVAL, CANARY, RETRAINING, asl_path
from llmops.workflows.retraining_input import RetrainingInput

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cdk-synth")]

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/llm-inference:1"
# Actions AWS authorizes on no resource narrower than "*".
UNSCOPABLE = frozenset(
    {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
        "cloudwatch:DescribeAlarms",
        "sagemaker:ListModelPackages",
    }
)


@pytest.fixture(scope="module", params=["dev", "prod"])
def synth(request: pytest.FixtureRequest, synthesized: Any) -> Any:
    return synthesized(request.param)


@pytest.fixture(scope="module")
def with_image(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A dev synth with an inference image configured, so the alarms start retraining runs."""
    outdir = tmp_path_factory.mktemp("cdk-image")
    context = {**cdk_json_context(), "stage": "dev", "bundleDependencies": False, "retrainingInferenceImage": IMAGE}
    assembly = build_app(context, outdir=str(outdir)).synth()
    template: dict[str, Any] = json.loads(
        Path(outdir, assembly.get_stack_by_name("LlmopsGateway-dev").template_file).read_text()
    )
    return template


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _ref(synth: Any, output: str) -> str:
    ref: str = synth.template["Outputs"][output]["Value"]["Ref"]
    return ref


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _render(value: Any) -> str:
    """An intrinsic as text: Fn::Join flattened, every Ref/GetAtt shown as <LogicalId>."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_render(p) for p in parts)
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    return json.dumps(value)


def _machines(synth: Any) -> dict[str, dict[str, Any]]:
    """workflow name -> state machine properties, found through the stack outputs."""
    return {
        name: synth.template["Resources"][_ref(synth, output)]["Properties"]
        for name, output in (
            (CANARY, "CanaryStateMachineArn"),
            (RETRAINING, "RetrainingStateMachineArn"),
            (APPROVAL, "ApprovalStateMachineArn"),
        )
    }


def _role_statements(synth: Any, role_logical_id: str) -> Iterator[dict[str, Any]]:
    for policy in synth.resources("AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            yield from policy["Properties"]["PolicyDocument"]["Statement"]


# --- outputs ----------------------------------------------------------------------------------


def test_outputs_name_the_workflows_the_way_the_cli_reads_them(synth: Any) -> None:
    outputs = synth.template["Outputs"]
    for name, kind in (
        ("CanaryStateMachineArn", "AWS::StepFunctions::StateMachine"),
        ("RetrainingStateMachineArn", "AWS::StepFunctions::StateMachine"),
        ("ApprovalStateMachineArn", "AWS::StepFunctions::StateMachine"),
        ("ArtifactBucket", "AWS::S3::Bucket"),
    ):
        assert synth.template["Resources"][outputs[name]["Value"]["Ref"]]["Type"] == kind
    defaults = WorkflowSettings()
    config = GatewayConfig(stage=synth.stage)
    assert outputs["PipelineName"]["Value"] == defaults.pipeline(config) == f"llmops-{synth.stage}-fine-tuning"
    assert outputs["ModelPackageGroupName"]["Value"] == f"llmops-{synth.stage}-candidates"


# --- buckets ----------------------------------------------------------------------------------


def test_artifact_bucket_is_encrypted_versioned_private_logged_and_tls_only(synth: Any) -> None:
    bucket_id = _ref(synth, "ArtifactBucket")
    props = synth.template["Resources"][bucket_id]["Properties"]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    log_bucket_id = props["LoggingConfiguration"]["DestinationBucketName"]["Ref"]
    log_props = synth.template["Resources"][log_bucket_id]["Properties"]
    assert log_props["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    assert "BucketEncryption" in log_props
    policies = {p["Properties"]["Bucket"]["Ref"]: p for p in synth.resources("AWS::S3::BucketPolicy").values()}
    for bucket in (bucket_id, log_bucket_id):
        statements = policies[bucket]["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        ), bucket
    expected = "Retain" if synth.stage == "prod" else "Delete"
    assert synth.template["Resources"][bucket_id]["DeletionPolicy"] == expected


# --- state machines ---------------------------------------------------------------------------


def test_every_state_machine_logs_without_execution_data_and_is_traced(synth: Any) -> None:
    for name, props in _machines(synth).items():
        assert props["TracingConfiguration"] == {"Enabled": True}, name
        logging = props["LoggingConfiguration"]
        assert logging["Level"] == "ALL" and logging["IncludeExecutionData"] is False, name
        assert props["StateMachineName"] == f"llmops-{synth.stage}-{name}"


def test_definitions_are_the_asl_files_with_every_placeholder_bound(synth: Any) -> None:
    for name, props in _machines(synth).items():
        text = _render(props["DefinitionString"])
        assert not re.search(r"\$\{[A-Za-z][A-Za-z0-9_]*\}", text), f"{name} has an unresolved placeholder"
        definition = json.loads(re.sub(r"<[A-Za-z0-9.]+>", "TOKEN", text))
        source = json.loads(asl_path(name).read_text())
        assert definition["StartAt"] == source["StartAt"]
        assert set(definition["States"]) == set(source["States"]), name


def test_the_canary_moves_prompt_labels_in_the_prompts_table(synth: Any) -> None:
    text = _render(_machines(synth)[CANARY]["DefinitionString"])
    definition = json.loads(re.sub(r"<[A-Za-z0-9.]+>", lambda m: m.group(0).replace('"', ""), text))
    prompts = synth.template["Outputs"]["PromptsTableName"]["Value"]["Ref"]
    for state in ("ReadPromptLabel", "ReadPromptCandidate", "MovePromptLabel", "RestorePromptLabel"):
        assert definition["States"][state]["Parameters"]["TableName"] == f"<{prompts}>", state


def test_approval_input_names_the_canary_gates_the_alarms_create(synth: Any) -> None:
    text = _render(_machines(synth)[APPROVAL]["DefinitionString"])
    for gate in CANARY_GATES:
        assert f"llmops-{synth.stage}-{gate.value}-{{}}" in text
    assert "<" + _ref(synth, "CanaryStateMachineArn") + ">" in text


# --- IAM --------------------------------------------------------------------------------------


def _machine_role(synth: Any, name: str) -> str:
    role: str = _machines(synth)[name]["RoleArn"]["Fn::GetAtt"][0]
    return role


def test_machine_roles_use_no_wildcard_resource_but_for_unscopable_actions(synth: Any) -> None:
    for name in (CANARY, RETRAINING, APPROVAL):
        for statement in _role_statements(synth, _machine_role(synth, name)):
            actions = set(_as_list(statement["Action"]))
            assert not any(a == "*" or a.endswith(":*") for a in actions), statement
            assert "iam:PassRole" not in actions and "states:SendTaskSuccess" not in actions
            if "*" in _as_list(statement["Resource"]):
                assert actions <= UNSCOPABLE, (name, statement)


def test_canary_role_moves_only_the_routes_table_prompt_labels_and_configured_endpoints(synth: Any) -> None:
    statements = list(_role_statements(synth, _machine_role(synth, CANARY)))
    routes = synth.template["Outputs"]["RoutesTableName"]["Value"]["Ref"]
    prompts = synth.template["Outputs"]["PromptsTableName"]["Value"]["Ref"]
    dynamodb = [s for s in statements if any(a.startswith("dynamodb:") for a in _as_list(s["Action"]))]
    assert [(_as_list(s["Action"]), [_render(r) for r in _as_list(s["Resource"])]) for s in dynamodb] == [
        (["dynamodb:UpdateItem"], [f"<{routes}.Arn>"]),
        # Release bundles: the label check before traffic moves, the move at 100% and the rollback.
        (["dynamodb:GetItem", "dynamodb:UpdateItem"], [f"<{prompts}.Arn>"]),
    ]
    (sagemaker,) = [s for s in statements if any(a.startswith("sagemaker:") for a in _as_list(s["Action"]))]
    assert set(_as_list(sagemaker["Action"])) == {
        "sagemaker:UpdateEndpointWeightsAndCapacities",
        "sagemaker:DescribeEndpoint",
    }
    assert {_render(r).rsplit("/", 1)[-1] for r in _as_list(sagemaker["Resource"])} == set(
        GatewayConfig().sagemaker_endpoint_names
    )
    topic = synth.template["Outputs"]["OnCallTopicArn"]["Value"]["Ref"]
    assert any(s["Action"] == "sns:Publish" and s["Resource"] == {"Ref": topic} for s in statements)


def test_retraining_role_is_scoped_to_its_prefixes_pipeline_and_group(synth: Any) -> None:
    statements = list(_role_statements(synth, _machine_role(synth, RETRAINING)))
    bucket = _ref(synth, "ArtifactBucket")
    granted = {
        action: sorted(_render(r) for r in _as_list(s["Resource"]))
        for s in statements
        for action in _as_list(s["Action"])
        if action.split(":")[0] in {"s3", "sagemaker"}
    }
    stage = synth.stage
    prefix = "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>"
    assert granted == {
        "s3:GetObject": [f"<{bucket}.Arn>/staging/*"],
        "s3:PutObject": [f"<{bucket}.Arn>/retraining/*"],
        "sagemaker:DescribePipeline": [f"{prefix}:pipeline/llmops-{stage}-fine-tuning"],
        "sagemaker:StartPipelineExecution": [f"{prefix}:pipeline/llmops-{stage}-fine-tuning"],
        "sagemaker:DescribePipelineExecution": [f"{prefix}:pipeline/llmops-{stage}-fine-tuning/execution/*"],
        "sagemaker:CreateModelPackage": [
            f"{prefix}:model-package-group/llmops-{stage}-candidates",
            f"{prefix}:model-package/llmops-{stage}-candidates/*",
        ],
        # The package the pipeline registered, if any (it has no resource type to list by).
        "sagemaker:DescribeModelPackage": [f"{prefix}:model-package/llmops-{stage}-candidates/*"],
        "sagemaker:ListModelPackages": ["*"],
    }


def test_approval_role_only_reads_candidates_and_starts_the_canary(synth: Any) -> None:
    statements = list(_role_statements(synth, _machine_role(synth, APPROVAL)))
    (start,) = [s for s in statements if s["Action"] == "states:StartExecution"]
    assert start["Resource"] == {"Ref": _ref(synth, "CanaryStateMachineArn")}
    (describe,) = [s for s in statements if s["Action"] == "sagemaker:DescribeModelPackage"]
    assert _render(describe["Resource"]).endswith(f":model-package/llmops-{synth.stage}-candidates/*")


# --- EventBridge, alarms and the drift monitor ------------------------------------------------


def _drift_monitor(synth: Any) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (logical_id, resource["Properties"])
        for logical_id, resource in synth.resources("AWS::Lambda::Function").items()
        if resource["Properties"].get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME")
        == "drift-monitor"
    ]
    return found


def test_drift_monitor_is_a_single_traced_arm64_function_on_a_daily_schedule(synth: Any) -> None:
    logical_id, props = _drift_monitor(synth)
    assert props["Architectures"] == ["arm64"] and props["TracingConfig"] == {"Mode": "Active"}
    assert props["ReservedConcurrentExecutions"] == 1
    assert len(props["Layers"]) == 1
    variables = props["Environment"]["Variables"]
    assert variables["LLMOPS_ARTIFACT_BUCKET"] == {"Ref": _ref(synth, "ArtifactBucket")}
    assert variables["LLMOPS_DRIFT_START_RETRAINING"] == "false"
    assert {"LLMOPS_AUDIT_TABLE", "LLMOPS_FEEDBACK_TABLE"} <= variables.keys()
    # Other functions have schedules too (the reservation sweeper's runs every minute): exactly one
    # rule invokes the drift monitor, daily.
    (schedule,) = [
        r["Properties"]
        for r in synth.resources("AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
        and any(t["Arn"] == {"Fn::GetAtt": [logical_id, "Arn"]} for t in r["Properties"]["Targets"])
    ]
    assert schedule["ScheduleExpression"] == "rate(1 day)"


def test_drift_monitor_reads_audit_and_feedback_and_writes_only_its_staging_prefix(synth: Any) -> None:
    _, props = _drift_monitor(synth)
    role = props["Role"]["Fn::GetAtt"][0]
    writes = {
        _render(r)
        for s in _role_statements(synth, role)
        for r in _as_list(s["Resource"])
        if {"s3:PutObject", "dynamodb:PutItem", "dynamodb:UpdateItem", "states:StartExecution"}
        & set(_as_list(s["Action"]))
    }
    assert writes == {f"<{_ref(synth, 'ArtifactBucket')}.Arn>/staging/drift-monitor/*"}


def test_an_approved_candidate_starts_the_approval_machine(synth: Any) -> None:
    (rule,) = [
        r["Properties"]
        for r in synth.resources("AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.sagemaker"]
    ]
    assert rule["EventPattern"]["detail-type"] == ["SageMaker Model Package State Change"]
    assert rule["EventPattern"]["detail"] == {
        "ModelPackageGroupName": [f"llmops-{synth.stage}-candidates"],
        "ModelApprovalStatus": ["Approved"],
    }
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": _ref(synth, "ApprovalStateMachineArn")}


def test_every_machine_has_a_failure_alarm_and_each_retrainable_alias_two_trigger_alarms(synth: Any) -> None:
    names = {a["Properties"]["AlarmName"] for a in synth.resources("AWS::CloudWatch::Alarm").values()}
    for machine in (CANARY, RETRAINING, APPROVAL):
        assert f"llmops-{synth.stage}-state-machine-failures-{machine}" in names
    aliases = retrainable_aliases(routes_document())
    # SageMaker chat aliases (the route document grows; embedding aliases are never retrained).
    assert {"llama3-8b", "mistral-7b"} <= set(aliases)
    assert not {alias for alias in aliases if "embed" in alias}
    for alias in aliases:
        for trigger in ("drift", "feedback"):
            assert f"llmops-{synth.stage}-retraining-trigger-{trigger}-{alias}" in names


def test_without_an_inference_image_no_alarm_starts_a_run(synth: Any) -> None:
    retraining = {"Ref": _ref(synth, "RetrainingStateMachineArn")}
    for rule in synth.resources("AWS::Events::Rule").values():
        assert all(t["Arn"] != retraining for t in rule["Properties"].get("Targets", []))


def test_with_an_inference_image_each_trigger_alarm_starts_a_valid_retraining_run(with_image: dict[str, Any]) -> None:
    machines = _resources(with_image, "AWS::StepFunctions::StateMachine")
    (retraining_id,) = [
        k for k, v in machines.items() if v["Properties"]["StateMachineName"] == "llmops-dev-retraining"
    ]
    alarms = {
        k: v["Properties"]["AlarmName"]
        for k, v in _resources(with_image, "AWS::CloudWatch::Alarm").items()
        if "retraining-trigger" in v["Properties"]["AlarmName"]
    }
    started: dict[str, RetrainingInput] = {}
    for rule in _resources(with_image, "AWS::Events::Rule").values():
        props = rule["Properties"]
        if props.get("EventPattern", {}).get("source") != ["aws.cloudwatch"]:
            continue
        assert props["EventPattern"]["detail"] == {"state": {"value": ["ALARM"]}}
        (resource,) = props["EventPattern"]["resources"]
        alarm_name = alarms[resource["Fn::GetAtt"][0]]
        (target,) = props["Targets"]
        assert target["Arn"] == {"Ref": retraining_id}
        started[alarm_name] = RetrainingInput.model_validate_json(target["Input"])
    aliases = retrainable_aliases(routes_document())
    assert set(started) == set(alarms.values())
    for name, document in started.items():
        assert name.endswith(f"-{document.alias}")
        assert document.trigger in name and document.force
        assert document.baseline_target == aliases[document.alias]
        assert document.dataset_key == latest_dataset_key(document.alias)
        assert document.inference_image == IMAGE
