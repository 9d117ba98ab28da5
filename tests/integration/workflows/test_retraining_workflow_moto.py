"""The retraining ASL, executed unchanged by moto: thresholds, export, pipeline, registration."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.sagemaker import models as sagemaker_models
from moto_workflow_stack import WorkflowStack

from llmops.workflows.retraining_input import RetrainingInput, Signals

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

    packages = model_packages(workflow_stack)
    assert len(packages) == before + 1
    package = next(p for p in packages if p["ModelPackageArn"] == output["model_package_arn"])
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    container = package["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == f"s3://{bucket}/retraining/retrain-1/model/model.tar.gz"

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
