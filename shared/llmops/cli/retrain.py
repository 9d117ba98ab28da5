"""`llmops retrain start|status|pipeline`: the retraining trigger, by hand or to see what it did, and
the fine-tuning pipeline it runs (`pipeline upsert`, `llmops.cli.retrain_pipeline`).

`start` stages a fine-tuning dataset (JSONL from `llmops.domain.finetune_export`) in the artifact
bucket and starts the retraining state machine with it; the state machine decides on thresholds,
copies the dataset under the run's prefix, runs the SageMaker pipeline and registers the result
as PendingManualApproval. Scheduled and alarm-driven runs start the same machine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import ValidationError
from rich.table import Table

from llmops.cli import retrain_pipeline
from llmops.cli.canary import workflow_outputs
from llmops.cli.options import DEFAULT_STATE_DIR, AsJson, Region, StackName, StateDir
from llmops.cli.stack import connect
from llmops.cli.terminal import console, fail
from llmops.local.workflows import OUTPUT_ARTIFACT_BUCKET, OUTPUT_RETRAINING_ARN
from llmops.workflows import RETRAINING
from llmops.workflows.canary_input import execution_name
from llmops.workflows.retraining_input import RetrainingInput, Signals, Thresholds

__all__ = ["app", "staging_key"]

app = typer.Typer(help="Start the retraining trigger and follow its runs.", no_args_is_help=True)
app.add_typer(retrain_pipeline.app, name="pipeline")


def staging_key(run_name: str) -> str:
    """Where a dataset waits for its run; the run copies it to `retraining/<run>/train.jsonl`."""
    return f"staging/{run_name}.jsonl"


@app.command("start")
def start(
    alias: Annotated[str, typer.Option("--alias", help="Alias the retrained model is for.")],
    baseline_target: Annotated[str, typer.Option("--baseline-target", help="Target the candidate will replace.")],
    dataset: Annotated[Path, typer.Option("--dataset", help="Fine-tuning JSONL (redacted) to train on.")],
    image: Annotated[str, typer.Option("--image", help="Inference container image for the model package.")],
    negative_feedback_rate: Annotated[float, typer.Option("--negative-feedback-rate")] = 0.0,
    drift_score: Annotated[float, typer.Option("--drift-score")] = 0.0,
    force: Annotated[bool, typer.Option("--force", help="Run even below the thresholds.")] = False,
    trigger: Annotated[str, typer.Option("--trigger", help="schedule | feedback | drift | manual")] = "manual",
    poll_seconds: Annotated[int, typer.Option("--poll-seconds", help="Pipeline status poll interval.")] = 60,
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """Stage DATASET and start a retraining run for ALIAS."""
    if not dataset.is_file():
        fail(f"no dataset file at {dataset}")
    conn = connect(state_dir, stack, region)
    outputs = workflow_outputs(conn, stack)
    machine, bucket = outputs.get(OUTPUT_RETRAINING_ARN), outputs.get(OUTPUT_ARTIFACT_BUCKET)
    if not machine or not bucket:
        fail("the stack has no retraining state machine or artifact bucket")
    name = execution_name(RETRAINING, alias)
    try:
        request = RetrainingInput(
            trigger=_trigger(trigger),
            alias=alias,
            baseline_target=baseline_target,
            dataset_key=staging_key(name),
            inference_image=image,
            signals=Signals(negative_feedback_rate=negative_feedback_rate, drift_score=drift_score),
            thresholds=Thresholds(),
            force=force,
            poll_seconds=poll_seconds,
        )
    except ValidationError as exc:
        fail(str(exc))
    conn.client("s3").put_object(Bucket=bucket, Key=request.dataset_key, Body=dataset.read_bytes())
    started = conn.client("stepfunctions").start_execution(
        stateMachineArn=machine, name=name, input=json.dumps(request.to_execution_input())
    )
    if as_json:
        console.print_json(json.dumps({"execution_arn": started["executionArn"], "runs": request.exceeds_thresholds()}))
        return
    verdict = "above threshold: a run starts" if request.exceeds_thresholds() else "below thresholds: it will skip"
    console.print(f"Started [cyan]{started['executionArn']}[/] ({verdict}).")


def _trigger(value: str) -> Literal["schedule", "feedback", "drift", "manual"]:
    if value == "schedule":
        return "schedule"
    if value == "feedback":
        return "feedback"
    if value == "drift":
        return "drift"
    if value == "manual":
        return "manual"
    return fail("--trigger must be schedule, feedback, drift or manual")  # type: ignore[no-any-return]


@app.command("status")
def status(
    execution: Annotated[str | None, typer.Argument(help="Execution ARN; omit to list recent runs.")] = None,
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """List recent retraining runs with their outcome, or show one."""
    conn = connect(state_dir, stack, region)
    machine = workflow_outputs(conn, stack).get(OUTPUT_RETRAINING_ARN)
    if not machine:
        fail("the stack has no retraining state machine")
    sfn = conn.client("stepfunctions")
    arns = (
        [execution]
        if execution
        else [
            e["executionArn"] for e in sfn.list_executions(stateMachineArn=machine, maxResults=20).get("executions", [])
        ]
    )
    rows = []
    for arn in arns:
        described = sfn.describe_execution(executionArn=arn)
        output = json.loads(described.get("output") or "{}")
        rows.append(
            {
                "execution_arn": arn,
                "name": described.get("name", arn.rsplit(":", 1)[-1]),
                "status": described["status"],
                "started": str(described["startDate"]),
                "outcome": output.get("status") or described.get("error") or "",
                "model_package_arn": output.get("model_package_arn"),
                "cause": described.get("cause") or output.get("reason"),
            }
        )
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title="Retraining runs")
    for column in ("name", "status", "outcome", "model package", "started"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["status"], row["outcome"], row["model_package_arn"] or "-", row["started"])
    console.print(table)
