"""The drift monitor against moto: real Audit/Feedback tables written by the real adapters, the
artifact bucket, and the real retraining state machine (created, not executed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from llmops.adapters.drift_monitor_io import (
    DynamoAuditScan,
    DynamoFeedbackReader,
    MonitorPorts,
    S3DatasetStager,
    StepFunctionsRetraining,
)
from llmops.adapters.dynamodb.audit_log import DynamoAuditLog
from llmops.adapters.dynamodb.feedback_store import DynamoFeedbackStore
from llmops.adapters.dynamodb.provisioning import create_tables
from llmops.application.drift_monitor import input_sample, run_drift_monitor
from llmops.config.drift_monitor import (
    DriftMonitorSettings,
    latest_dataset_key,
    retraining_run_name,
    staged_dataset_key,
)
from llmops.domain.audit import AuditRecord, GuardVerdict, TextEvidence
from llmops.domain.drift import DriftReport
from llmops.domain.feedback import Feedback, FeedbackLabel, aggregate, parse_score
from llmops.domain.tenancy import TextRetention
from llmops.observability.drift_metric import emit_drift_metric
from llmops.workflows import RETRAINING, load_definition
from llmops.workflows.retraining_input import RetrainingInput

REGION = "us-east-1"
NOW = 1_795_000_000.0  # 2026-11-18
HOUR = 3600.0
BUCKET = "llmops-test-artifacts"
SEEDED_PII = "jane.doe@example.com"


@dataclass
class World:
    settings: DriftMonitorSettings
    audit: DynamoAuditLog
    feedback: DynamoFeedbackStore
    clients: dict[str, Any]
    emitted: list[tuple[str, DriftReport]]

    def ports(self, *, retraining: bool = True) -> MonitorPorts:
        return MonitorPorts(
            audit=DynamoAuditScan(self.clients["dynamodb"], self.settings.audit_table),
            feedback=DynamoFeedbackReader(self.clients["dynamodb"], self.settings.feedback_table),
            datasets=S3DatasetStager(self.clients["s3"], BUCKET),
            retraining=StepFunctionsRetraining(
                self.clients["stepfunctions"], self.settings.retraining_state_machine_arn
            )
            if retraining
            else None,
            emit=lambda alias, report: self.emitted.append((alias, report)),
        )

    def executions(self) -> list[dict[str, Any]]:
        sfn = self.clients["stepfunctions"]
        listed = sfn.list_executions(stateMachineArn=self.settings.retraining_state_machine_arn)["executions"]
        return [sfn.describe_execution(executionArn=e["executionArn"]) for e in listed]

    def object(self, key: str) -> str:
        return str(self.clients["s3"].get_object(Bucket=BUCKET, Key=key)["Body"].read().decode())


@pytest.fixture
def world() -> Iterator[World]:
    # The state machine is created but not run: the monitor's job ends at StartExecution.
    with mock_aws():
        clients: dict[str, Any] = {
            service: boto3.client(service, region_name=REGION)  # type: ignore[call-overload]
            for service in ("dynamodb", "s3", "stepfunctions", "iam")
        }
        create_tables(clients["dynamodb"], {"Audit": "t-audit", "Feedback": "t-feedback"})
        clients["s3"].create_bucket(Bucket=BUCKET)
        role = clients["iam"].create_role(
            RoleName="sfn",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "states.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ]
                }
            ),
        )["Role"]["Arn"]
        definition = load_definition(
            RETRAINING,
            {
                "ArtifactBucket": BUCKET,
                "PipelineName": "p",
                "ModelPackageGroupName": "g",
                "NotificationTopicArn": "arn:aws:sns:us-east-1:123456789012:t",
            },
        )
        arn = clients["stepfunctions"].create_state_machine(name="retraining", definition=definition, roleArn=role)[
            "stateMachineArn"
        ]
        settings = DriftMonitorSettings(
            audit_table="t-audit",
            feedback_table="t-feedback",
            artifact_bucket=BUCKET,
            retraining_state_machine_arn=arn,
            inference_image="123456789012.dkr.ecr.us-east-1.amazonaws.com/llm:1",
            min_samples=10,
        )
        yield World(
            settings=settings,
            audit=DynamoAuditLog(clients["dynamodb"], "t-audit", shards=2),
            feedback=DynamoFeedbackStore(clients["dynamodb"], "t-feedback"),
            clients=clients,
            emitted=[],
        )


_ENGLISH = [
    "Please summarise the quarterly sales report for the northern region",
    "Summarise customer complaints about delivery delays this week",
    "Draft a polite reply to a supplier about invoice corrections",
    "Explain the refund policy for damaged goods in simple terms",
]
_DRIFTED = [
    "Покажи пример кода на питоне для сортировки списка объектов",
    "Напиши функцию которая читает файл и считает слова в тексте",
]


def _record(
    n: int,
    started_at: float,
    text: str,
    *,
    alias: str = "llama3-8b",
    target: str = "sm-llama3-8b-primary",
    retention: TextRetention = TextRetention.REDACTED,
    tokens: int = 40,
    findings: dict[str, int] | None = None,
) -> AuditRecord:
    def evidence(value: str) -> TextEvidence:
        return TextEvidence(retention, value if retention is TextRetention.REDACTED else "hmac-sha256:abc")

    return AuditRecord(
        request_id=f"req-{n:04d}",
        tenant_id="tenant-a",
        key_prefix="llm_abc",
        started_at=started_at,
        finished_at=started_at + 1,
        status=200,
        alias=alias,
        target=target,
        guard=(GuardVerdict("input", "redact" if findings else "allow", findings or {}),),
        input_tokens=tokens,
        output_tokens=20,
        prompt=evidence(text),
        completion=evidence(f"Answer {n}"),
    )


def _seed(world: World, *, drifted: bool, negative: bool, count: int = 24) -> None:
    recent_texts = _DRIFTED if drifted else _ENGLISH
    for i in range(count):
        # Reference window: two to six days ago; recent window: the last day.
        world.audit.write(_record(i, NOW - 48 * HOUR - i * HOUR, _ENGLISH[i % len(_ENGLISH)]))
        world.audit.write(
            _record(
                1000 + i,
                NOW - 20 * HOUR + i * 0.5 * HOUR,
                recent_texts[i % len(recent_texts)],
                tokens=400 if drifted else 40,
            )
        )
        rating = "down" if negative and i % 2 == 0 else "up"
        world.feedback.put(
            Feedback(
                request_id=f"req-{1000 + i:04d}",
                tenant_id="tenant-a",
                user="u1",
                score=parse_score(rating),
                created_at=NOW - 10 * HOUR,
                comment=f"contact me at {SEEDED_PII}",
                target_id="sm-llama3-8b-primary",
                alias="llama3-8b",
            )
        )


def test_stable_traffic_emits_a_low_score_stages_data_and_starts_nothing(world: World) -> None:
    _seed(world, drifted=False, negative=False)
    (outcome,) = run_drift_monitor(world.settings, world.ports(), NOW)
    assert outcome.alias == "llama3-8b"
    assert outcome.drift.sufficient and outcome.drift.score < world.settings.drift_threshold
    assert [alias for alias, _ in world.emitted] == ["llama3-8b"]
    assert outcome.retraining == "not_needed" and world.executions() == []
    # Only the rated records (the recent window) export; their comments never do.
    assert outcome.examples == 24 and outcome.dataset_key == staged_dataset_key("llama3-8b", NOW)
    staged = world.object(outcome.dataset_key)
    assert staged == world.object(latest_dataset_key("llama3-8b"))
    lines = [json.loads(line) for line in staged.splitlines()]
    assert len(lines) == 24 and all(line["messages"][-1]["role"] == "assistant" for line in lines)
    assert SEEDED_PII not in staged


def test_drift_starts_one_retraining_run_with_the_measured_signals(world: World) -> None:
    _seed(world, drifted=True, negative=False)
    (outcome,) = run_drift_monitor(world.settings, world.ports(), NOW)
    assert outcome.drift.score >= world.settings.drift_threshold
    assert outcome.retraining == "started"
    (execution,) = world.executions()
    assert execution["name"] == retraining_run_name("llama3-8b", NOW)
    document = RetrainingInput.model_validate(json.loads(execution["input"]))
    assert document.trigger == "drift"
    assert document.alias == "llama3-8b" and document.baseline_target == "sm-llama3-8b-primary"
    assert document.dataset_key == outcome.dataset_key
    assert document.signals.drift_score == outcome.drift.score
    assert document.exceeds_thresholds()

    # Another invocation the same day (a retry, or more traffic since) finds the day's run: an
    # identical start is idempotent in Step Functions, a different one is refused by name.
    (again,) = run_drift_monitor(world.settings, world.ports(), NOW + 60)
    assert again.retraining in {"started", "already_started"}
    stricter = world.settings.model_copy(update={"drift_threshold": 0.2})
    (later,) = run_drift_monitor(stricter, world.ports(), NOW + 120)
    assert later.retraining == "already_started"
    assert len(world.executions()) == 1


def test_negative_feedback_alone_triggers_a_feedback_run(world: World) -> None:
    _seed(world, drifted=False, negative=True)
    (outcome,) = run_drift_monitor(world.settings, world.ports(), NOW)
    assert outcome.ratings == 24 and outcome.negative_feedback_rate == pytest.approx(0.5)
    assert outcome.retraining == "started"
    (execution,) = world.executions()
    assert json.loads(execution["input"])["trigger"] == "feedback"


def test_sock_puppet_users_of_one_key_count_as_one_vote_and_start_nothing(world: World) -> None:
    _seed(world, drifted=False, negative=False)
    # One key thumbs-downs one request as 20 made-up users, written straight to the table (as a
    # race past the per-key user limit could): 20 rows, one voice.
    puppets = [
        Feedback(
            request_id="req-1000",
            tenant_id="tenant-a",
            user=f"sock{n}",
            score=parse_score("down"),
            created_at=NOW - 5 * HOUR,
            label=FeedbackLabel.UNSAFE,
            target_id="sm-llama3-8b-primary",
            alias="llama3-8b",
            key_id="key-a",
        )
        for n in range(1, 21)
    ]
    for puppet in puppets:
        world.feedback.put(puppet)
    stored = list(world.feedback.scan())
    assert aggregate(stored).negative_rate >= world.settings.negative_feedback_threshold  # raw rows would trip it

    (outcome,) = run_drift_monitor(world.settings, world.ports(), NOW)
    assert outcome.ratings == 25  # 24 honest votes + one vote of key-a on req-1000
    assert outcome.negative_feedback_rate == pytest.approx(1 / 25, abs=1e-6)
    assert outcome.negative_feedback_rate < world.settings.negative_feedback_threshold
    assert outcome.retraining == "not_needed" and world.executions() == []
    # The staged dataset is labelled by votes too: req-1000 appears once.
    staged = [json.loads(line) for line in world.object(latest_dataset_key("llama3-8b")).splitlines()]
    assert len(staged) == 24


def test_without_start_permission_it_only_measures_and_stages(world: World) -> None:
    _seed(world, drifted=True, negative=True)
    settings = world.settings.model_copy(update={"start_retraining": False})
    (outcome,) = run_drift_monitor(settings, world.ports(), NOW)
    assert outcome.retraining == "disabled" and outcome.dataset_key is not None
    (missing_image,) = run_drift_monitor(world.settings.model_copy(update={"inference_image": ""}), world.ports(), NOW)
    assert missing_image.retraining == "no_inference_image"
    assert world.executions() == []


def test_too_little_traffic_publishes_no_score_and_triggers_nothing(world: World) -> None:
    _seed(world, drifted=True, negative=True, count=5)
    (outcome,) = run_drift_monitor(world.settings, world.ports(), NOW)
    assert not outcome.drift.sufficient
    assert world.emitted == []
    assert outcome.retraining == "not_needed"


def test_hashed_prompts_give_features_but_no_text_and_no_examples(world: World) -> None:
    for i in range(12):
        world.audit.write(_record(i, NOW - 48 * HOUR - i, "secret text", retention=TextRetention.HASH))
        world.audit.write(
            _record(100 + i, NOW - HOUR - i, "secret text", retention=TextRetention.HASH, findings={"EMAIL": 1})
        )
    (outcome,) = run_drift_monitor(world.settings, world.ports(), NOW)
    assert outcome.drift.sufficient
    assert set(outcome.drift.parts) == {"token_length", "guard_hits"}  # no text features without text
    assert outcome.drift.parts["guard_hits"] == 1.0
    assert outcome.examples == 0 and outcome.dataset_key is None
    assert outcome.skipped == {"no_redacted_text": 24}


def test_input_sample_keeps_only_redacted_text_and_input_findings() -> None:
    record = _record(1, NOW, "hello <EMAIL>", findings={"EMAIL": 2})
    record = replace(record, guard=(*record.guard, GuardVerdict("output", "block", {"SECRET": 1})))
    sample = input_sample(record)
    assert sample.text == "hello <EMAIL>"
    assert dict(sample.guard_findings) == {"EMAIL": 2}
    hashed = input_sample(_record(2, NOW, "x", retention=TextRetention.HASH))
    assert hashed.text is None


def test_drift_metric_is_one_catalogued_emf_line_without_text(capsys: pytest.CaptureFixture[str]) -> None:
    report = DriftReport(0.42, {"token_length": 0.5, "top_terms": 0.3}, 40, 60, sufficient=True)
    emit_drift_metric("llama3-8b", report)
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "LLMOps"
    assert [sorted(dims) for dims in directive["Dimensions"]] == [["alias", "service"]]
    assert [m["Name"] for m in directive["Metrics"]] == ["DriftScore"]
    assert line["DriftScore"] in (0.42, [0.42]) and line["service"] == "drift-monitor" and line["alias"] == "llama3-8b"


def test_settings_come_from_the_environment() -> None:
    settings = DriftMonitorSettings.from_env(
        {
            "LLMOPS_AUDIT_TABLE": "a",
            "LLMOPS_FEEDBACK_TABLE": "f",
            "LLMOPS_ARTIFACT_BUCKET": "b",
            "LLMOPS_DRIFT_START_RETRAINING": "false",
            "LLMOPS_DRIFT_THRESHOLD": "0.25",
            "LLMOPS_RETRAINING_INFERENCE_IMAGE": "",
        }
    )
    assert settings.start_retraining is False
    assert settings.drift_threshold == 0.25
    assert settings.inference_image == ""
