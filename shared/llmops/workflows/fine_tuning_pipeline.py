"""The fine-tuning SageMaker Pipeline the retraining state machine starts, defined with the SDK.

    PrepareDataset  split the exported, redacted dataset (TrainingDataS3Uri) into train and held-out
    FineTune        a training job on the training set: a configured training image, or a JumpStart
                    model's (resolved by the SDK when the pipeline is upserted)
    Evaluate        the project's evaluation (`llmops.evaluation.candidate`) on the held-out set:
                    quality (token F1) and the output guard's verdicts on every answer; writes
                    evaluation.json (a property file) and the model to ModelOutputS3Uri/model.tar.gz
    CheckEvaluation token F1 >= MinTokenF1 and guard block rate <= MaxGuardBlockRate, else
    EvaluationFailed  a Fail step (the retraining machine sees a failed pipeline and registers nothing)
    RegisterCandidate  the model package, ModelApprovalStatus (default PendingManualApproval), with
                    evaluation.json as its model statistics and the run's alias and baseline
                    (what the approval machine starts a canary from) and the pipeline execution
                    as customer metadata

It declares the parameters the retraining machine passes (`llmops.workflows.retraining_input`):
`TrainingDataS3Uri` and `ModelOutputS3Uri`, and the run context `Alias` and `BaselineTarget`
(defaults empty, so a run started by hand still starts). The package names its pipeline execution
in `llmops:pipeline-execution`, by which the retraining machine knows the run's model is registered
and registers no second package. The processing steps run this repository's `llmops` package
(`EvaluationCodeS3Uri`: a tarball `llmops retrain pipeline upsert` uploads) in `processing_image`
(default: the training image, which has the model's framework for generation).

The `sagemaker` SDK is the `pipeline` extra: imported here only, inside `build_pipeline`, by
`llmops retrain pipeline upsert` and the tests; never by a Lambda (an import-linter contract).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from llmops.workflows.retraining_input import (
    PIPELINE_EXECUTION_METADATA,
    REQUIRED_PIPELINE_PARAMETERS,
    RUN_CONTEXT_PIPELINE_PARAMETERS,
)

__all__ = [
    "APPROVAL_STATUS",
    "PARAMETERS",
    "STEPS",
    "PipelineConfig",
    "build_pipeline",
]

APPROVAL_STATUS = "PendingManualApproval"
STEPS = ("PrepareDataset", "FineTune", "Evaluate", "CheckEvaluation", "RegisterCandidate", "EvaluationFailed")
PARAMETERS = (
    *REQUIRED_PIPELINE_PARAMETERS,
    "EvaluationCodeS3Uri",
    "HeldOutFraction",
    "MinTokenF1",
    "MaxGuardBlockRate",
    "ModelApprovalStatus",
    *RUN_CONTEXT_PIPELINE_PARAMETERS,
)
_CODE_DIR = "/opt/ml/processing/code"
_EVALUATION_FILE = "evaluation.json"


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    name: str
    role_arn: str
    artifact_bucket: str
    model_package_group: str
    inference_image: str
    training_image: str | None = None
    jumpstart_model_id: str | None = None
    processing_image: str | None = None
    training_instance_type: str = "ml.g5.2xlarge"
    processing_instance_type: str = "ml.g5.2xlarge"
    inference_instance_type: str = "ml.g5.2xlarge"
    heldout_fraction: float = 0.1
    min_token_f1: float = 0.3
    max_guard_block_rate: float = 0.02
    hyperparameters: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if (self.training_image is None) == (self.jumpstart_model_id is None):
            raise ValueError("give exactly one of a training image and a JumpStart model id")
        if not 0 < self.heldout_fraction < 1:
            raise ValueError("the held-out fraction must be between 0 and 1")


def _training_image(config: PipelineConfig, session: Any) -> str:
    if config.training_image:
        return config.training_image
    from sagemaker.core import image_uris  # noqa: PLC0415 - the SDK only when a pipeline is built

    # JumpStart's own training image for the model (the SDK reads the model's specs: needs AWS access).
    return str(
        image_uris.retrieve(
            framework=None,
            region=session.boto_region_name,
            model_id=config.jumpstart_model_id,
            model_version="*",
            image_scope="training",
            instance_type=config.training_instance_type,
        )
    )


def build_pipeline(config: PipelineConfig, session: Any) -> Any:
    """The pipeline (a `sagemaker.mlops.workflow.pipeline.Pipeline`) on `session`, a
    `PipelineSession`: `.definition()` is its JSON, `.upsert(role_arn=...)` creates or updates it."""
    # The SDK validates roles with IAM unless told not to; the definition is checked by SageMaker
    # itself when the pipeline is created, and the role is the stack's own.
    os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics  # noqa: PLC0415
    from sagemaker.core.processing import Processor  # noqa: PLC0415
    from sagemaker.core.shapes import (  # noqa: PLC0415
        ProcessingInput,
        ProcessingOutput,
        ProcessingS3Input,
        ProcessingS3Output,
    )
    from sagemaker.core.workflow.conditions import (  # noqa: PLC0415
        ConditionGreaterThanOrEqualTo,
        ConditionLessThanOrEqualTo,
    )
    from sagemaker.core.workflow.execution_variables import ExecutionVariables  # noqa: PLC0415
    from sagemaker.core.workflow.functions import Join, JsonGet  # noqa: PLC0415
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterString  # noqa: PLC0415
    from sagemaker.core.workflow.properties import PropertyFile  # noqa: PLC0415
    from sagemaker.mlops.workflow.condition_step import ConditionStep  # noqa: PLC0415
    from sagemaker.mlops.workflow.fail_step import FailStep  # noqa: PLC0415
    from sagemaker.mlops.workflow.model_step import ModelStep  # noqa: PLC0415
    from sagemaker.mlops.workflow.pipeline import Pipeline  # noqa: PLC0415
    from sagemaker.mlops.workflow.steps import ProcessingStep, TrainingStep  # noqa: PLC0415
    from sagemaker.serve.model_builder import ModelBuilder  # noqa: PLC0415
    from sagemaker.train.configs import Compute, InputData, OutputDataConfig  # noqa: PLC0415
    from sagemaker.train.model_trainer import ModelTrainer  # noqa: PLC0415

    training_name, output_name = REQUIRED_PIPELINE_PARAMETERS
    alias_name, baseline_name = RUN_CONTEXT_PIPELINE_PARAMETERS
    training_data = ParameterString(name=training_name)
    model_output = ParameterString(name=output_name)
    code = ParameterString(
        name="EvaluationCodeS3Uri", default_value=f"s3://{config.artifact_bucket}/pipeline-code/llmops.tar.gz"
    )
    heldout_fraction = ParameterFloat(name="HeldOutFraction", default_value=config.heldout_fraction)
    min_f1 = ParameterFloat(name="MinTokenF1", default_value=config.min_token_f1)
    max_blocks = ParameterFloat(name="MaxGuardBlockRate", default_value=config.max_guard_block_rate)
    approval = ParameterString(name="ModelApprovalStatus", default_value=APPROVAL_STATUS)
    alias = ParameterString(name=alias_name, default_value="")
    baseline = ParameterString(name=baseline_name, default_value="")
    work = f"s3://{config.artifact_bucket}/pipeline-work/{config.name}"

    image = _training_image(config, session)
    processing_image = config.processing_image or image

    def s3_in(name: str, uri: Any, local: str) -> Any:
        return ProcessingInput(
            input_name=name,
            s3_input=ProcessingS3Input(s3_uri=uri, s3_data_type="S3Prefix", local_path=local, s3_input_mode="File"),
        )

    def s3_out(name: str, uri: Any, local: str) -> Any:
        return ProcessingOutput(
            output_name=name, s3_output=ProcessingS3Output(s3_uri=uri, s3_upload_mode="EndOfJob", local_path=local)
        )

    def processor(command: list[str], env: dict[str, Any] | None = None) -> Any:
        # The code input is unpacked by the entrypoint: processing inputs are copied, not extracted.
        unpack = f"cd {_CODE_DIR} && tar -xzf llmops.tar.gz && cd / && export PYTHONPATH={_CODE_DIR} && "
        return Processor(
            image_uri=processing_image,
            role=config.role_arn,
            instance_count=1,
            instance_type=config.processing_instance_type,
            entrypoint=["/bin/sh", "-c", unpack + " ".join(command)],
            env=env,
            sagemaker_session=session,
        )

    prepare = ProcessingStep(
        name="PrepareDataset",
        description="Split the exported, redacted dataset into training and held-out sets.",
        step_args=processor(
            [
                "python3 -m llmops.evaluation.candidate split --input /opt/ml/processing/input",
                "--train /opt/ml/processing/train --heldout /opt/ml/processing/heldout",
                # A pipeline variable cannot be spliced into the command: it comes as an environment variable.
                "--heldout-fraction ${HELDOUT_FRACTION}",
            ],
            env={"HELDOUT_FRACTION": heldout_fraction},
        ).run(
            inputs=[
                s3_in("dataset", training_data, "/opt/ml/processing/input"),
                s3_in("code", code, _CODE_DIR),
            ],
            outputs=[
                s3_out("train", f"{work}/train", "/opt/ml/processing/train"),
                s3_out("heldout", f"{work}/heldout", "/opt/ml/processing/heldout"),
            ],
        ),
    )
    trainer = ModelTrainer(
        training_image=image,
        role=config.role_arn,
        sagemaker_session=session,
        base_job_name=f"{config.name}-fine-tune"[:63],
        compute=Compute(instance_type=config.training_instance_type, instance_count=1),
        output_data_config=OutputDataConfig(s3_output_path=f"{work}/training"),
        hyperparameters=dict(config.hyperparameters) or None,
    )
    train_output = prepare.properties.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri
    fine_tune = TrainingStep(
        name="FineTune",
        description="Fine-tune on the training set.",
        step_args=trainer.train(input_data_config=[InputData(channel_name="train", data_source=train_output)]),
    )

    evaluation = PropertyFile(name="Evaluation", output_name="evaluation", path=_EVALUATION_FILE)
    heldout_output = prepare.properties.ProcessingOutputConfig.Outputs["heldout"].S3Output.S3Uri
    model_artifact = fine_tune.properties.ModelArtifacts.S3ModelArtifacts
    evaluate = ProcessingStep(
        name="Evaluate",
        description="The project's evaluation on the held-out set: token F1 and the output guard's verdicts.",
        step_args=processor(
            [
                "mkdir -p /opt/ml/processing/model/extracted &&",
                "tar -xzf /opt/ml/processing/model/model.tar.gz -C /opt/ml/processing/model/extracted &&",
                "mkdir -p /opt/ml/processing/package &&",
                "cp /opt/ml/processing/model/model.tar.gz /opt/ml/processing/package/model.tar.gz &&",
                "python3 -m llmops.evaluation.candidate evaluate --model /opt/ml/processing/model/extracted",
                "--heldout /opt/ml/processing/heldout --output /opt/ml/processing/evaluation",
            ]
        ).run(
            inputs=[
                s3_in("model", model_artifact, "/opt/ml/processing/model"),
                s3_in("heldout", heldout_output, "/opt/ml/processing/heldout"),
                s3_in("code", code, _CODE_DIR),
            ],
            outputs=[
                s3_out("evaluation", f"{work}/evaluation", "/opt/ml/processing/evaluation"),
                # Where the retraining machine (and anyone reading the run's prefix) finds the model.
                s3_out("package", model_output, "/opt/ml/processing/package"),
            ],
        ),
        property_files=[evaluation],
    )

    evaluation_uri = Join(
        on="/",
        values=[evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri, _EVALUATION_FILE],
    )
    model = ModelBuilder(
        image_uri=config.inference_image,
        model_path=model_artifact,
        role_arn=config.role_arn,
        sagemaker_session=session,
    )
    register = ModelStep(
        name="RegisterCandidate",
        description="Register the candidate for approval, with its evaluation.",
        step_args=model.register(
            model_package_group_name=config.model_package_group,
            approval_status=approval,
            content_types=["application/json"],
            response_types=["application/json"],
            inference_instances=[config.inference_instance_type],
            model_metrics=ModelMetrics(
                model_statistics=MetricsSource(content_type="application/json", s3_uri=evaluation_uri)
            ),
            # The keys the approval machine reads (as on the packages the retraining machine registers),
            # and the execution, by which the retraining machine finds this package (and registers none).
            customer_metadata_properties={
                "llmops:alias": alias,
                "llmops:baseline-target": baseline,
                PIPELINE_EXECUTION_METADATA: ExecutionVariables.PIPELINE_EXECUTION_ARN,
            },
        ),
    )
    failed = FailStep(
        name="EvaluationFailed",
        error_message=Join(
            on=" ",
            values=[
                "The candidate's held-out evaluation is below the bar: token F1",
                JsonGet(step_name=evaluate.name, property_file=evaluation, json_path="quality.token_f1"),
                "(minimum",
                min_f1,
                "), output guard block rate",
                JsonGet(step_name=evaluate.name, property_file=evaluation, json_path="guardrails.block_rate"),
                "(maximum",
                max_blocks,
                ").",
            ],
        ),
    )
    check = ConditionStep(
        name="CheckEvaluation",
        conditions=[
            ConditionGreaterThanOrEqualTo(
                left=JsonGet(step_name=evaluate.name, property_file=evaluation, json_path="quality.token_f1"),
                right=min_f1,
            ),
            ConditionLessThanOrEqualTo(
                left=JsonGet(step_name=evaluate.name, property_file=evaluation, json_path="guardrails.block_rate"),
                right=max_blocks,
            ),
        ],
        if_steps=[register],
        else_steps=[failed],
    )
    return Pipeline(
        name=config.name,
        parameters=[
            training_data,
            model_output,
            code,
            heldout_fraction,
            min_f1,
            max_blocks,
            approval,
            alias,
            baseline,
        ],
        steps=[prepare, fine_tune, evaluate, check],
        sagemaker_session=session,
    )
