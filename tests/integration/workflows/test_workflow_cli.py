"""`llmops canary` / `llmops retrain` against moto in server mode, as `llmops serve` runs it."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from llmops.adapters.dynamodb.prompt_store import DynamoPromptStore
from llmops.adapters.dynamodb.provisioning import create_tables
from llmops.adapters.dynamodb.route_items import table_items
from llmops.adapters.dynamodb.route_source import load_route_document
from llmops.cli import canary, retrain
from llmops.cli.stack import LOCAL_STATE_FILE, connect, local_table_name
from llmops.config.env import EnvVar
from llmops.config.tables import TABLES
from llmops.domain.prompts import PromptDraft
from llmops.local.aws_emulation import MotoService
from llmops.local.workflows import provision_workflows

runner = CliRunner()


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as env:
        env.delenv("MOTO_PORT", raising=False)  # MotoService sets it; restored on exit
        moto = MotoService().start()
        env.setenv("MOTO_PORT", os.environ["MOTO_PORT"])
        try:
            clients: dict[str, Any] = {}

            def factory(service: str) -> Any:
                if service not in clients:
                    clients[service] = boto3.client(  # type: ignore[call-overload]
                        service,
                        region_name="us-east-1",
                        endpoint_url=moto.url,
                        aws_access_key_id="testing",
                        aws_secret_access_key="testing",
                    )
                return clients[service]

            names = {spec.logical_name: local_table_name(spec.logical_name) for spec in TABLES}
            create_tables(factory("dynamodb"), {"Routes": names["Routes"], "Prompts": names["Prompts"]})
            document = load_route_document()
            for item in table_items(document):
                factory("dynamodb").put_item(TableName=names["Routes"], Item=item)
            tables = {EnvVar.ROUTES_TABLE.value: names["Routes"], EnvVar.PROMPTS_TABLE.value: names["Prompts"]}
            outputs = provision_workflows(factory, tables, routes_document=document)
            assert set(outputs) >= {"CanaryStateMachineArn", "RetrainingStateMachineArn", "ApprovalStateMachineArn"}
            factory("cloudwatch").put_metric_alarm(
                AlarmName="cli-gate",
                Namespace="LLMOps",
                MetricName="CandidateErrors",
                Statistic="Sum",
                Period=60,
                EvaluationPeriods=1,
                Threshold=1,
                ComparisonOperator="GreaterThanThreshold",
            )
            directory = tmp_path_factory.mktemp("llmops")
            (directory / LOCAL_STATE_FILE).write_text(json.dumps({"aws_endpoint_url": moto.url}))
            yield directory
        finally:
            moto.stop()


def invoke(app: Any, *args: str) -> Any:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output) if "--json" in args else result.output


def wait_for(state_dir: Path, execution_arn: str, predicate: Any, timeout_s: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        report: dict[str, Any] = invoke(canary.app, "status", execution_arn, "--json", "--state-dir", str(state_dir))
        if predicate(report) or time.monotonic() > deadline:
            return report
        time.sleep(0.1)


def test_canary_start_status_and_promotion(state_dir: Path) -> None:
    started = invoke(
        canary.app,
        "start",
        "--alias", "chat-default",
        "--baseline", "bedrock-claude-haiku",
        "--candidate", "bedrock-nova-lite",
        "--steps", "50,100",
        "--bake-seconds", "0",
        "--gate", "cli-gate", "--no-default-gates",
        "--json",
        "--state-dir", str(state_dir),
    )  # fmt: skip
    assert started["input"]["provider"] == "routes"

    report = wait_for(state_dir, started["execution_arn"], lambda r: r["status"] != "RUNNING")

    assert report["status"] == "SUCCEEDED", report
    assert report["route_weights"] == {"bedrock-nova-lite": 100.0, "bedrock-claude-haiku": 0.0}
    listed = invoke(canary.app, "status", "--json", "--state-dir", str(state_dir))
    assert started["execution_arn"] in [row["arn"] for row in listed]


def test_canary_abort_rolls_back_a_sagemaker_canary(state_dir: Path) -> None:
    started = invoke(
        canary.app,
        "start",
        "--alias", "llama3-8b",
        "--baseline", "sm-llama3-8b-primary",
        "--candidate", "sm-llama3-8b-candidate",
        "--bake-seconds", "300",
        "--gate", "cli-gate", "--no-default-gates",
        "--json",
        "--state-dir", str(state_dir),
    )  # fmt: skip
    assert started["input"]["provider"] == "sagemaker"
    wait_for(state_dir, started["execution_arn"], lambda r: r["route_weights"].get("sm-llama3-8b-candidate") == 5.0)

    aborted = invoke(canary.app, "abort", started["execution_arn"], "--json", "--state-dir", str(state_dir))

    assert aborted["stopped"]
    report = invoke(canary.app, "status", started["execution_arn"], "--json", "--state-dir", str(state_dir))
    assert report["status"] == "ABORTED"
    assert report["route_weights"] == {"sm-llama3-8b-primary": 100.0, "sm-llama3-8b-candidate": 0.0}


def test_canary_start_with_a_prompt_bundle_moves_the_label_and_abort_moves_it_back(state_dir: Path) -> None:
    conn = connect(state_dir)
    store = DynamoPromptStore(conn.client("dynamodb"), conn.settings.prompts_table)
    for n in (1, 2):
        store.push(PromptDraft("cli-bot", f"Version {n}: {{{{q}}}}", ("q",)), now=1.0)
    store.set_label("cli-bot", "prod", 1, now=2.0, actor="seed")
    args = ["--alias", "chat-default", "--baseline", "bedrock-claude-haiku", "--candidate", "bedrock-nova-lite"]
    common = [
        "--steps",
        "100",
        "--bake-seconds",
        "0",
        "--gate",
        "cli-gate",
        "--no-default-gates",
        "--state-dir",
        str(state_dir),
    ]

    refused = runner.invoke(canary.app, ["start", *args, *common, "--prompt", "cli-bot", "--prompt-label", "prod"])
    assert refused.exit_code == 2 and "--prompt-version" in refused.output
    missing = runner.invoke(
        canary.app, ["start", *args, *common, "--prompt", "cli-bot", "--prompt-label", "prod", "--prompt-version", "7"]
    )
    assert missing.exit_code == 2 and "no version 7" in missing.output

    started = invoke(
        canary.app,
        "start", *args, *common,
        "--prompt", "cli-bot", "--prompt-label", "prod", "--prompt-version", "2",
        "--json",
    )  # fmt: skip
    bundle = started["input"]["prompt"]
    assert (bundle["baseline_version"], bundle["candidate_version"]) == (1, 2)  # baseline: where the label was
    report = wait_for(state_dir, started["execution_arn"], lambda r: r["status"] != "RUNNING")
    assert report["status"] == "SUCCEEDED", report
    assert report["prompt"]["current_version"] == 2

    aborted = invoke(canary.app, "abort", started["execution_arn"], "--json", "--state-dir", str(state_dir))

    assert aborted["prompt"] == "restore"
    state = store.get_label("cli-bot", "prod")
    assert state is not None and state.version == 1


def test_retrain_start_and_status(state_dir: Path, tmp_path: Path) -> None:
    dataset = tmp_path / "train.jsonl"
    dataset.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    started = invoke(
        retrain.app,
        "start",
        "--alias", "llama3-8b",
        "--baseline-target", "sm-llama3-8b-primary",
        "--dataset", str(dataset),
        "--image", "vllm:latest",
        "--force",
        "--poll-seconds", "0",
        "--json",
        "--state-dir", str(state_dir),
    )  # fmt: skip
    assert started["runs"] is True

    deadline = time.monotonic() + 30
    while True:
        (row,) = invoke(retrain.app, "status", started["execution_arn"], "--json", "--state-dir", str(state_dir))
        if row["status"] != "RUNNING" or time.monotonic() > deadline:
            break
        time.sleep(0.1)

    assert row["status"] == "SUCCEEDED", row
    assert row["outcome"] == "registered"
    assert ":model-package/" in row["model_package_arn"]
