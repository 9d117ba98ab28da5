"""The fine-tuning pipeline, defined with the SageMaker SDK offline (moto's in-process AWS, no network):
its steps, parameters, condition and the registration's approval status; and the upsert."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from llmops.workflows.fine_tuning_pipeline import APPROVAL_STATUS, PARAMETERS, PipelineConfig, build_pipeline
from llmops.workflows.retraining_input import (
    PIPELINE_EXECUTION_METADATA,
    REQUIRED_PIPELINE_PARAMETERS,
    RUN_CONTEXT_PIPELINE_PARAMETERS,
)

# The SDK is imported by build_pipeline (it is the `pipeline` extra; make bootstrap installs it).
pytest.importorskip("sagemaker", reason="the `pipeline` extra (sagemaker SDK) is not installed")

pytestmark = pytest.mark.slow  # the SDK takes seconds to import

ROLE = "arn:aws:iam::123456789012:role/llmops-pipeline"
BUCKET = "llmops-test-artifacts"


@pytest.fixture(scope="module")
def session() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
            env.delenv(name, raising=False)
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        with mock_aws():
            from sagemaker.core.workflow.pipeline_context import PipelineSession

            boto3.client("s3").create_bucket(Bucket=BUCKET)
            yield PipelineSession(boto_session=boto3.Session(region_name="us-east-1"), default_bucket=BUCKET)


def _config(**overrides: Any) -> PipelineConfig:
    values: dict[str, Any] = {
        "name": "llmops-test-fine-tuning",
        "role_arn": ROLE,
        "artifact_bucket": BUCKET,
        "model_package_group": "llmops-test-candidates",
        "inference_image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/llm-serve:1",
        "training_image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/llm-train:1",
    }
    return PipelineConfig(**{**values, **overrides})


@pytest.fixture(scope="module")
def definition(session: Any) -> dict[str, Any]:
    return json.loads(build_pipeline(_config(), session).definition())  # type: ignore[no-any-return]


def _steps(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for step in definition["Steps"]:
        found[step["Name"]] = step
        for branch in ("IfSteps", "ElseSteps"):
            for inner in step.get("Arguments", {}).get(branch, []):
                found[inner["Name"]] = inner
    return found


def test_the_steps_prepare_fine_tune_evaluate_check_and_register(definition: dict[str, Any]) -> None:
    steps = _steps(definition)
    assert {name: step["Type"] for name, step in steps.items()} == {
        "PrepareDataset": "Processing",
        "FineTune": "Training",
        "Evaluate": "Processing",
        "CheckEvaluation": "Condition",
        "RegisterCandidate": "RegisterModel",
        "EvaluationFailed": "Fail",
    }
    assert [s["Name"] for s in definition["Steps"]] == ["PrepareDataset", "FineTune", "Evaluate", "CheckEvaluation"]
    train = steps["FineTune"]["Arguments"]
    assert train["AlgorithmSpecification"]["TrainingImage"].endswith("llm-train:1")
    assert train["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == {
        "Get": "Steps.PrepareDataset.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"
    }
    evaluate = steps["Evaluate"]
    command = " ".join(evaluate["Arguments"]["AppSpecification"]["ContainerEntrypoint"])
    assert "python3 -m llmops.evaluation.candidate evaluate" in command
    assert evaluate["PropertyFiles"][0]["PropertyFileName"] == "Evaluation"
    prepare_command = " ".join(steps["PrepareDataset"]["Arguments"]["AppSpecification"]["ContainerEntrypoint"])
    assert "llmops.evaluation.candidate split" in prepare_command


def test_the_parameters_include_what_the_retraining_machine_passes(definition: dict[str, Any]) -> None:
    declared = {p["Name"]: p for p in definition["Parameters"]}
    assert set(declared) == set(PARAMETERS)
    # Everything the retraining machine offers, so it passes the run context too.
    assert {*REQUIRED_PIPELINE_PARAMETERS, *RUN_CONTEXT_PIPELINE_PARAMETERS} <= set(declared)
    assert declared["ModelApprovalStatus"]["DefaultValue"] == APPROVAL_STATUS
    # A run started by hand, without the run context, still starts.
    assert all(declared[name]["DefaultValue"] == "" for name in RUN_CONTEXT_PIPELINE_PARAMETERS)


def test_registration_waits_for_manual_approval_with_the_evaluation_as_metrics(definition: dict[str, Any]) -> None:
    steps = _steps(definition)
    (register,) = [s for s in steps.values() if s["Type"] == "RegisterModel"]
    arguments = register["Arguments"]
    assert arguments["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    assert arguments["ModelPackageGroupName"] == "llmops-test-candidates"
    statistics = arguments["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["ContentType"] == "application/json"
    assert "Std:Join" in statistics["S3Uri"]  # the Evaluate step's evaluation.json
    assert arguments["CustomerMetadataProperties"] == {
        "llmops:alias": {"Get": "Parameters.Alias"},
        "llmops:baseline-target": {"Get": "Parameters.BaselineTarget"},
        # How the retraining machine knows this run's model is registered (and registers no second).
        PIPELINE_EXECUTION_METADATA: {"Get": "Execution.PipelineExecutionArn"},
    }


def test_the_condition_reads_quality_and_guard_block_rate_from_the_evaluation(definition: dict[str, Any]) -> None:
    condition = _steps(definition)["CheckEvaluation"]["Arguments"]
    kinds = {c["Type"]: c for c in condition["Conditions"]}
    assert set(kinds) == {"GreaterThanOrEqualTo", "LessThanOrEqualTo"}
    assert kinds["GreaterThanOrEqualTo"]["LeftValue"]["Std:JsonGet"]["Path"] == "quality.token_f1"
    assert kinds["GreaterThanOrEqualTo"]["RightValue"] == {"Get": "Parameters.MinTokenF1"}
    assert kinds["LessThanOrEqualTo"]["LeftValue"]["Std:JsonGet"]["Path"] == "guardrails.block_rate"
    assert [s["Name"] for s in condition["ElseSteps"]] == ["EvaluationFailed"]


def test_upsert_creates_then_updates_the_pipeline(session: Any) -> None:
    pipeline = build_pipeline(_config(), session)
    pipeline.upsert(role_arn=ROLE)
    pipeline.upsert(role_arn=ROLE)
    names = [p["PipelineName"] for p in boto3.client("sagemaker").list_pipelines()["PipelineSummaries"]]
    assert names.count("llmops-test-fine-tuning") == 1


def test_a_config_needs_exactly_one_training_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        _config(jumpstart_model_id="meta-textgeneration-llama-3-8b")
    assert os.environ.get("SAGEMAKER_VALIDATE_ROLE") in (None, "false")
