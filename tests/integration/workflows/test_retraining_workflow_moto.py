"""The retraining ASL, executed unchanged by moto: thresholds, export, pipeline, registration.

Exactly one model package per run, for both kinds of pipeline: one that registers the model itself
(the shipped fine-tuning pipeline: simulated here, since moto runs no pipeline steps) and one that
only trains (moto's stand-in as provisioned), for which the machine registers it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.sagemaker import models as sagemaker_models
from moto_workflow_stack import WorkflowStack

from llmops.workflows import RETRAINING as RETRAINING_WORKFLOW
from llmops.workflows import asl_path
from llmops.workflows.retraining_input import (
    PIPELINE_EXECUTION_METADATA,
    REQUIRED_PIPELINE_PARAMETERS,
    RUN_CONTEXT_PIPELINE_PARAMETERS,
    RetrainingInput,
    Signals,
)

RETRAINING = "RetrainingStateMachineArn"
DATASET = '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n'


def retraining_input(workflow_stack: WorkflowStack, **options: Any) -> dict[str, Any]:
    key = "staging/test.jsonl"
    workflow_stack.client("s3").put_object(Bucket=workflow_stack.outputs["ArtifactBucket"], Key=key, Body=DATASET)
    defaults: dict[str, Any] = {
        "trigger": "feedback",
        "alias": "llama3-8b",
        "baseline_target": "sm-llama3-8b-primary",
        "dataset_key": key,
        "inference_image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/vllm:latest",
        "signals": Signals(negative_feedback_rate=0.4, drift_score=0.1),
        "poll_seconds": 0,
    }
    return RetrainingInput(**{**defaults, **options}).to_execution_input()


def model_packages(workflow_stack: WorkflowStack) -> list[dict[str, Any]]:
    sagemaker = workflow_stack.client("sagemaker")
    summaries = sagemaker.list_model_packages(ModelPackageGroupName=workflow_stack.outputs["ModelPackageGroupName"])
    return [
        sagemaker.describe_model_package(ModelPackageName=s["ModelPackageArn"])
        for s in summaries["ModelPackageSummaryList"]
    ]


def pipeline_parameters(workflow_stack: WorkflowStack, execution_arn: str) -> dict[str, str]:
    listed = workflow_stack.client("sagemaker").list_pipeline_parameters_for_execution(
        PipelineExecutionArn=execution_arn
    )
    return {p["Name"]: p["Value"] for p in listed["PipelineParameters"]}


def _register(execution_arn: str, parameters: dict[str, str], metadata: dict[str, str] | None, description: str) -> str:
    """What a pipeline's RegisterModel step does, in moto (called from inside a moto request, so a
    fresh client: the tests' clients are not for that thread)."""
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    group = sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"][0]["ModelPackageGroupName"]
    options: dict[str, Any] = {"CustomerMetadataProperties": metadata} if metadata else {}
    created = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ModelPackageDescription=description,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": "serve:1", "ModelDataUrl": parameters["ModelOutputS3Uri"] + "model.tar.gz"}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        **options,
    )
    return str(created["ModelPackageArn"])


@pytest.fixture
def pipeline_registers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The pipeline registers the model itself, as the shipped one's RegisterCandidate step does:
    the run context it was given and its execution as customer metadata. Returns the packages."""
    registered: list[str] = []
    original = sagemaker_models.SageMakerModelBackend.start_pipeline_execution

    def start(self: Any, pipeline_name: str, *args: Any, **kwargs: Any) -> dict[str, str]:
        started = original(self, pipeline_name, *args, **kwargs)
        arn = started["PipelineExecutionArn"]
        parameters = {
            p["Name"]: p["Value"] for p in self.pipelines[pipeline_name].pipeline_executions[arn].pipeline_parameters
        }
        metadata = {
            "llmops:alias": parameters["Alias"],
            "llmops:baseline-target": parameters["BaselineTarget"],
            PIPELINE_EXECUTION_METADATA: arn,
        }
        registered.append(_register(arn, parameters, metadata, "registered by the pipeline"))
        return started

    monkeypatch.setattr(sagemaker_models.SageMakerModelBackend, "start_pipeline_execution", start)
    return registered


@pytest.fixture
def others_register(monkeypatch: pytest.MonkeyPatch) -> None:
    """While the pipeline runs, packages land in the group that are not its own: one from another
    run's pipeline execution, one with no llmops metadata at all (registered by hand)."""
    original = sagemaker_models.SageMakerModelBackend.start_pipeline_execution

    def start(self: Any, pipeline_name: str, *args: Any, **kwargs: Any) -> dict[str, str]:
        started = original(self, pipeline_name, *args, **kwargs)
        arn = started["PipelineExecutionArn"]
        parameters = {
            p["Name"]: p["Value"] for p in self.pipelines[pipeline_name].pipeline_executions[arn].pipeline_parameters
        }
        other = arn.rsplit("/", 1)[0] + "/another-run"
        _register(other, parameters, {PIPELINE_EXECUTION_METADATA: other}, "another run's")
        _register(other, parameters, None, "by hand")
        return started

    monkeypatch.setattr(sagemaker_models.SageMakerModelBackend, "start_pipeline_execution", start)


@pytest.fixture
def pipeline_declares_only_the_required(workflow_stack: WorkflowStack) -> Iterator[None]:
    """A user's pipeline that declares only TrainingDataS3Uri and ModelOutputS3Uri."""
    sagemaker = workflow_stack.client("sagemaker")
    name = workflow_stack.outputs["PipelineName"]
    provisioned = sagemaker.describe_pipeline(PipelineName=name)["PipelineDefinition"]
    definition = json.loads(provisioned)
    definition["Parameters"] = [p for p in definition["Parameters"] if p["Name"] in REQUIRED_PIPELINE_PARAMETERS]
    sagemaker.update_pipeline(PipelineName=name, PipelineDefinition=json.dumps(definition))
    try:
        yield
    finally:
        sagemaker.update_pipeline(PipelineName=name, PipelineDefinition=provisioned)


def test_the_machine_offers_the_parameters_retraining_input_names() -> None:
    states = json.loads(asl_path(RETRAINING_WORKFLOW).read_text())["States"]
    offered = states["OfferPipelineParameters"]["Parameters"]["offered"]
    assert [(o["parameter"]["Name"], o["required"]) for o in offered] == [
        *((name, True) for name in REQUIRED_PIPELINE_PARAMETERS),
        *((name, False) for name in RUN_CONTEXT_PIPELINE_PARAMETERS),
    ]


def test_above_threshold_runs_export_pipeline_and_registration(workflow_stack: WorkflowStack) -> None:
    before = len(model_packages(workflow_stack))
    arn = workflow_stack.run(RETRAINING, retraining_input(workflow_stack), name="retrain-1")

    result = workflow_stack.wait(arn)

    assert result["status"] == "SUCCEEDED", result.get("cause")
    output = json.loads(result["output"])
    assert output["status"] == "registered"
    bucket = workflow_stack.outputs["ArtifactBucket"]
    s3 = workflow_stack.client("s3")
    exported = s3.get_object(Bucket=bucket, Key="retraining/retrain-1/train.jsonl")["Body"].read().decode()
    assert exported == DATASET
    manifest = json.loads(s3.get_object(Bucket=bucket, Key="retraining/retrain-1/manifest.json")["Body"].read())
    assert manifest["trigger"] == "feedback"
    assert manifest["training_data"] == f"s3://{bucket}/retraining/retrain-1/train.jsonl"

    pipeline = workflow_stack.client("sagemaker").describe_pipeline_execution(
        PipelineExecutionArn=output["pipeline_execution_arn"]
    )
    assert pipeline["PipelineExecutionStatus"] == "Succeeded"

    # The stand-in pipeline only trains (moto runs no steps): the machine registers the model.
    packages = model_packages(workflow_stack)
    assert len(packages) == before + 1
    assert output["registered_by"] == "retraining"
    package = next(p for p in packages if p["ModelPackageArn"] == output["model_package_arn"])
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    container = package["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == f"s3://{bucket}/retraining/retrain-1/model/model.tar.gz"
    assert package["CustomerMetadataProperties"][PIPELINE_EXECUTION_METADATA] == output["pipeline_execution_arn"]
    # It declares the run context, so it got it.
    assert pipeline_parameters(workflow_stack, output["pipeline_execution_arn"]) == {
        "TrainingDataS3Uri": manifest["training_data"],
        "ModelOutputS3Uri": f"s3://{bucket}/retraining/retrain-1/model/",
        "Alias": "llama3-8b",
        "BaselineTarget": "sm-llama3-8b-primary",
    }

    registered = [m for m in workflow_stack.notifications() if "awaiting approval" in m["Subject"]]
    assert len(registered) == 1
    assert output["model_package_arn"] in registered[0]["Message"]


def test_below_thresholds_skips_without_side_effects(workflow_stack: WorkflowStack) -> None:
    before = len(model_packages(workflow_stack))
    document = retraining_input(workflow_stack, signals=Signals(negative_feedback_rate=0.01, drift_score=0.05))

    result = workflow_stack.wait(workflow_stack.run(RETRAINING, document, name="retrain-skip"))

    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"])["status"] == "skipped"
    assert len(model_packages(workflow_stack)) == before
    listed = workflow_stack.client("s3").list_objects_v2(
        Bucket=workflow_stack.outputs["ArtifactBucket"], Prefix="retraining/retrain-skip/"
    )
    assert listed.get("KeyCount", 0) == 0


def test_missing_dataset_fails_and_notifies(workflow_stack: WorkflowStack) -> None:
    document = retraining_input(workflow_stack, dataset_key="staging/nope.jsonl", force=True)

    result = workflow_stack.wait(workflow_stack.run(RETRAINING, document, name="retrain-nodata"))

    assert result["status"] == "FAILED"
    assert result["error"] == "RetrainingStepFailed"
    assert any("Retraining failed" in m["Subject"] for m in workflow_stack.notifications())


@pytest.fixture
def slow_pipelines(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto marks pipeline executions Succeeded at once; make them run until the test says so."""
    original = sagemaker_models.FakePipelineExecution.__init__

    def executing(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.pipeline_execution_status = "Executing"

    monkeypatch.setattr(sagemaker_models.FakePipelineExecution, "__init__", executing)


def _pipeline_execution(workflow_stack: WorkflowStack) -> Any:
    backend = sagemaker_models.sagemaker_backends["123456789012"]["us-east-1"]
    executions = backend.pipelines[workflow_stack.outputs["PipelineName"]].pipeline_executions
    return list(executions.values())[-1]


def _polled_while_executing(workflow_stack: WorkflowStack, arn: str) -> bool:
    return any(
        e.get("stateExitedEventDetails", {}).get("name") == "DescribePipeline"
        and '"status":"Executing"' in e["stateExitedEventDetails"]["output"].replace(" ", "")
        for e in workflow_stack.history(arn)
    )


@pytest.mark.usefixtures("slow_pipelines")
def test_waits_for_the_pipeline_then_registers(workflow_stack: WorkflowStack) -> None:
    arn = workflow_stack.run(RETRAINING, retraining_input(workflow_stack, poll_seconds=1), name="retrain-wait")
    workflow_stack.wait_until(lambda: _polled_while_executing(workflow_stack, arn))
    assert workflow_stack.client("stepfunctions").describe_execution(executionArn=arn)["status"] == "RUNNING"

    _pipeline_execution(workflow_stack).pipeline_execution_status = "Succeeded"
    result = workflow_stack.wait(arn)

    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert json.loads(result["output"])["status"] == "registered"


@pytest.mark.usefixtures("slow_pipelines")
def test_failed_pipeline_fails_the_run_without_registering(workflow_stack: WorkflowStack) -> None:
    before = len(model_packages(workflow_stack))
    arn = workflow_stack.run(RETRAINING, retraining_input(workflow_stack, poll_seconds=1), name="retrain-fail")
    workflow_stack.wait_until(lambda: _polled_while_executing(workflow_stack, arn))

    _pipeline_execution(workflow_stack).pipeline_execution_status = "Failed"
    result = workflow_stack.wait(arn)

    assert result["error"] == "PipelineFailed"
    assert len(model_packages(workflow_stack)) == before


def test_a_pipeline_that_registers_its_model_gets_no_second_package(
    workflow_stack: WorkflowStack, pipeline_registers: list[str]
) -> None:
    before = len(model_packages(workflow_stack))

    result = workflow_stack.wait(workflow_stack.run(RETRAINING, retraining_input(workflow_stack), name="retrain-own"))

    assert result["status"] == "SUCCEEDED", result.get("cause")
    output = json.loads(result["output"])
    assert (output["status"], output["registered_by"]) == ("registered", "pipeline")
    (registered,) = pipeline_registers
    assert output["model_package_arn"] == registered
    packages = model_packages(workflow_stack)
    assert len(packages) == before + 1
    package = next(p for p in packages if p["ModelPackageArn"] == registered)
    # The run context reached the pipeline, so the approval machine can start the canary from it.
    assert package["CustomerMetadataProperties"]["llmops:alias"] == "llama3-8b"
    assert package["CustomerMetadataProperties"]["llmops:baseline-target"] == "sm-llama3-8b-primary"
    (notice,) = [m for m in workflow_stack.notifications() if "awaiting approval" in m["Subject"]]
    assert registered in notice["Message"] and "registered by: pipeline" in notice["Message"]


@pytest.mark.usefixtures("others_register")
def test_packages_of_other_runs_or_without_metadata_are_not_taken_for_the_runs(workflow_stack: WorkflowStack) -> None:
    before = {p["ModelPackageArn"] for p in model_packages(workflow_stack)}

    result = workflow_stack.wait(
        workflow_stack.run(RETRAINING, retraining_input(workflow_stack), name="retrain-others")
    )

    assert result["status"] == "SUCCEEDED", result.get("cause")
    output = json.loads(result["output"])
    assert output["registered_by"] == "retraining"
    new = [p for p in model_packages(workflow_stack) if p["ModelPackageArn"] not in before]
    assert sorted(p["ModelPackageDescription"] for p in new) == sorted(
        ["another run's", "by hand", "Retrained for alias llama3-8b by retrain-others (trigger: feedback)"]
    )
    # Both were looked at (created since the execution started), neither taken.
    described = [
        e
        for e in workflow_stack.history(result["executionArn"])
        if e.get("stateEnteredEventDetails", {}).get("name") == "DescribePipelinePackage"
    ]
    assert len(described) == 2


@pytest.mark.usefixtures("pipeline_declares_only_the_required")
def test_a_pipeline_without_the_run_context_parameters_is_passed_only_what_it_declares(
    workflow_stack: WorkflowStack,
) -> None:
    result = workflow_stack.wait(workflow_stack.run(RETRAINING, retraining_input(workflow_stack), name="retrain-plain"))

    assert result["status"] == "SUCCEEDED", result.get("cause")
    output = json.loads(result["output"])
    assert set(pipeline_parameters(workflow_stack, output["pipeline_execution_arn"])) == set(
        REQUIRED_PIPELINE_PARAMETERS
    )
    # The machine registered the model, with the run context as metadata all the same.
    package = workflow_stack.client("sagemaker").describe_model_package(ModelPackageName=output["model_package_arn"])
    assert package["CustomerMetadataProperties"]["llmops:alias"] == "llama3-8b"
