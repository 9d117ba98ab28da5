"""`llmops retrain pipeline upsert`: define the fine-tuning pipeline with the SageMaker SDK and create
or update it, under the name the retraining state machine starts (local or deployed stack).

The definition is `llmops.workflows.fine_tuning_pipeline`. Before upserting, this repository's
`llmops` package (what the pipeline's processing steps run: the dataset split and the evaluation)
is uploaded to `s3://<artifact bucket>/pipeline-code/llmops.tar.gz`. The SDK is the `pipeline`
extra and takes seconds to import: it is imported only when this command runs.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tarfile
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

from llmops.cli.canary import workflow_outputs
from llmops.cli.options import DEFAULT_STATE_DIR, Region, StackName, StateDir
from llmops.cli.stack import StackConnection, connect
from llmops.cli.terminal import console, errors, fail
from llmops.local.workflows import (
    OUTPUT_ARTIFACT_BUCKET,
    OUTPUT_MODEL_PACKAGE_GROUP,
    OUTPUT_PIPELINE_NAME,
    local_model_package_group,
    local_pipeline_name,
    local_workflows_role,
)

__all__ = ["app", "code_archive"]

app = typer.Typer(help="The fine-tuning SageMaker pipeline the retraining workflow runs.", no_args_is_help=True)

_PACKAGE = Path(__file__).resolve().parents[1]  # shared/llmops
# What the pipeline's containers do not need: the CLI, the local stack and the benchmarks.
_LEFT_OUT = frozenset({"cli", "local", "bench", "__pycache__"})
CODE_KEY = "pipeline-code/llmops.tar.gz"


def code_archive(package: Path = _PACKAGE) -> bytes:
    """The `llmops` package as the pipeline's code input: a tarball holding `llmops/...`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(package.rglob("*")):
            relative = path.relative_to(package)
            if path.is_dir() or relative.parts[0] in _LEFT_OUT or "__pycache__" in relative.parts:
                continue
            archive.add(path, arcname=str(Path("llmops") / relative), recursive=False)
    return buffer.getvalue()


def _names(conn: StackConnection, stack: str | None) -> tuple[str, str, str]:
    if not stack:
        return (
            local_pipeline_name(),
            local_model_package_group(),
            str(workflow_outputs(conn, None)[OUTPUT_ARTIFACT_BUCKET]),
        )
    outputs = workflow_outputs(conn, stack)
    missing = [
        o for o in (OUTPUT_PIPELINE_NAME, OUTPUT_MODEL_PACKAGE_GROUP, OUTPUT_ARTIFACT_BUCKET) if not outputs.get(o)
    ]
    if missing:
        fail(f"stack {stack} has no output {', '.join(missing)}: is the workflows capability deployed?")
    return outputs[OUTPUT_PIPELINE_NAME], outputs[OUTPUT_MODEL_PACKAGE_GROUP], outputs[OUTPUT_ARTIFACT_BUCKET]


def _session(conn: StackConnection, bucket: str) -> Any:
    import boto3  # noqa: PLC0415

    if conn.endpoint_url:
        # The SDK builds its own clients from the environment: point them all at the local stack's moto.
        os.environ.update(
            AWS_ENDPOINT_URL=conn.endpoint_url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106 - moto accepts any credentials
            AWS_DEFAULT_REGION=conn.region,
        )
    os.environ.setdefault("AWS_DEFAULT_REGION", conn.region)  # the SDK creates clients at import time
    # The SDK logs each default it picks at INFO and warns that a PipelineSession starts no job.
    logging.getLogger("sagemaker").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="Running within a PipelineSession")
    from sagemaker.core.workflow.pipeline_context import PipelineSession  # noqa: PLC0415

    return PipelineSession(boto_session=boto3.Session(region_name=conn.region), default_bucket=bucket)


@app.command("upsert")
def upsert(
    inference_image: Annotated[
        str, typer.Option("--inference-image", help="Serving container image registered with the model package.")
    ],
    training_image: Annotated[
        str | None, typer.Option("--training-image", help="Training container image (or --jumpstart-model).")
    ] = None,
    jumpstart_model: Annotated[
        str | None,
        typer.Option("--jumpstart-model", help="A JumpStart model id whose training image the SDK resolves."),
    ] = None,
    processing_image: Annotated[
        str | None,
        typer.Option("--processing-image", help="Image of the split and evaluate steps (default: the training one)."),
    ] = None,
    role_arn: Annotated[
        str | None,
        typer.Option("--role-arn", help="SageMaker execution role of the pipeline (required for --stack)."),
    ] = None,
    training_instance_type: Annotated[str, typer.Option("--training-instance-type")] = "ml.g5.2xlarge",
    heldout_fraction: Annotated[float, typer.Option("--heldout-fraction", min=0.01, max=0.5)] = 0.1,
    min_token_f1: Annotated[float, typer.Option("--min-token-f1", min=0, max=1)] = 0.3,
    max_guard_block_rate: Annotated[float, typer.Option("--max-guard-block-rate", min=0, max=1)] = 0.02,
    print_definition: Annotated[bool, typer.Option("--print", help="Print the pipeline definition JSON.")] = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """Define the fine-tuning pipeline (prepare, fine-tune, evaluate, check, register) and upsert it."""
    conn = connect(state_dir, stack, region)
    name, group, bucket = _names(conn, stack)
    role = role_arn or (None if stack else local_workflows_role(conn.client("iam")))
    if not role:
        fail("--role-arn is required for a deployed stack: the pipeline's SageMaker execution role")
    try:
        from llmops.workflows.fine_tuning_pipeline import PipelineConfig, build_pipeline  # noqa: PLC0415

        config = PipelineConfig(
            name=name,
            role_arn=role,
            artifact_bucket=bucket,
            model_package_group=group,
            inference_image=inference_image,
            training_image=training_image,
            jumpstart_model_id=jumpstart_model,
            processing_image=processing_image,
            training_instance_type=training_instance_type,
            heldout_fraction=heldout_fraction,
            min_token_f1=min_token_f1,
            max_guard_block_rate=max_guard_block_rate,
        )
    except ValueError as exc:
        fail(str(exc))
    with console.status("Importing the SageMaker SDK and defining the pipeline..."):
        try:
            pipeline = build_pipeline(config, _session(conn, bucket))
            definition = pipeline.definition()
        except ImportError:
            fail("the SageMaker SDK is not installed: `uv sync --extra pipeline` (or `make bootstrap`)")
    if print_definition:
        console.print_json(definition)
    with console.status(f"Uploading the pipeline code to s3://{bucket}/{CODE_KEY} and upserting {name}..."):
        conn.client("s3").put_object(Bucket=bucket, Key=CODE_KEY, Body=code_archive())
        response = pipeline.upsert(
            role_arn=role, description="llmops fine-tuning: prepare, fine-tune, evaluate, register"
        )
    steps = [step["Name"] for step in json.loads(definition)["Steps"]]
    errors.print(f"Pipeline [cyan]{response['PipelineArn']}[/] upserted: {' -> '.join(steps)}")
