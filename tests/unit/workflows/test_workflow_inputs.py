from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from llmops.workflows import CANARY, RETRAINING, asl_path, load_definition, placeholders
from llmops.workflows.canary_input import CanaryInput, TargetRef, canary_input_for_targets, execution_name
from llmops.workflows.canary_rollback import endpoint_rollback_request, route_rollback_request
from llmops.workflows.retraining_input import RetrainingInput, Signals, Thresholds

TARGETS = json.loads((asl_path(CANARY).parents[1] / "config" / "routes.json").read_text())["targets"]


def bedrock(**options: object) -> CanaryInput:
    return CanaryInput(
        alias="chat-default",
        baseline=TargetRef(target="bedrock-claude-haiku"),
        candidate=TargetRef(target="bedrock-nova-lite"),
        **options,  # type: ignore[arg-type]
    )


def test_execution_input_precomputes_both_weights_per_step() -> None:
    document = bedrock(bake_seconds=30, gate_poll_seconds=60, gates=("a",)).to_execution_input()
    assert document["steps"] == [
        {"percent": 5, "candidate_weight": 5, "baseline_weight": 95},
        {"percent": 25, "candidate_weight": 25, "baseline_weight": 75},
        {"percent": 50, "candidate_weight": 50, "baseline_weight": 50},
        {"percent": 100, "candidate_weight": 100, "baseline_weight": 0},
    ]
    assert document["gate_poll_seconds"] == 30  # never slower than the bake
    assert document["hold_poll_seconds"] == 0
    assert CanaryInput.from_execution_input(document).steps == (5, 25, 50, 100)


@pytest.mark.parametrize(
    "options",
    [
        {"steps": (50, 25, 100)},
        {"steps": (5, 50)},
        {"steps": (0, 100)},
        {"steps": ()},
        {"gates": ("a", "a")},
        {"bake_seconds": -1},
        {"provider": "sagemaker"},
    ],
)
def test_invalid_canaries_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        bedrock(**options)


def test_same_target_twice_is_refused() -> None:
    with pytest.raises(ValidationError):
        CanaryInput(alias="a", baseline=TargetRef(target="x"), candidate=TargetRef(target="x"))


def test_two_variants_of_one_endpoint_make_a_sagemaker_canary() -> None:
    canary = canary_input_for_targets(TARGETS, "llama3-8b", "sm-llama3-8b-primary", "sm-llama3-8b-candidate")
    assert canary.provider == "sagemaker"
    assert canary.endpoint_name == "llmops-llama3-8b"
    assert (canary.baseline.variant, canary.candidate.variant) == ("primary", "candidate")
    assert endpoint_rollback_request(canary) == {
        "EndpointName": "llmops-llama3-8b",
        "DesiredWeightsAndCapacities": [
            {"VariantName": "primary", "DesiredWeight": 100.0},
            {"VariantName": "candidate", "DesiredWeight": 0.0},
        ],
    }


def test_bedrock_or_mixed_canaries_move_routes_only() -> None:
    mixed = canary_input_for_targets(TARGETS, "llama3-8b", "sm-llama3-8b-primary", "bedrock-nova-lite")
    assert mixed.provider == "routes"
    assert endpoint_rollback_request(mixed) is None
    request = route_rollback_request(mixed, "Routes")
    assert request["Key"] == {"pk": {"S": "route"}, "sk": {"S": "llama3-8b"}}
    assert request["ExpressionAttributeNames"] == {"#b": "sm-llama3-8b-primary", "#c": "bedrock-nova-lite"}
    with pytest.raises(ValueError, match="unknown target"):
        canary_input_for_targets(TARGETS, "a", "nope", "bedrock-nova-lite")


def test_execution_names_fit_step_functions_rules() -> None:
    name = execution_name("canary", "chat default/" + "x" * 100, datetime(2026, 11, 22, 18, 0, tzinfo=UTC))
    assert len(name) <= 80
    assert name.startswith("canary-chat-default-x")
    assert name.endswith("-20261122T180000Z")
    assert all(c.isalnum() or c in "-_" for c in name)


def test_retraining_threshold_decision() -> None:
    base = {"alias": "a", "baseline_target": "t", "dataset_key": "staging/x.jsonl", "inference_image": "img"}
    assert not RetrainingInput(**base).exceeds_thresholds()  # type: ignore[arg-type]
    assert RetrainingInput(**base, force=True).exceeds_thresholds()  # type: ignore[arg-type]
    hot = RetrainingInput(**base, signals=Signals(drift_score=0.5), thresholds=Thresholds(drift_score=0.5))  # type: ignore[arg-type]
    assert hot.exceeds_thresholds()
    assert hot.to_execution_input()["signals"] == {"negative_feedback_rate": 0.0, "drift_score": 0.5}
    with pytest.raises(ValidationError):
        RetrainingInput(**{**base, "dataset_key": "/abs/path"})  # type: ignore[arg-type]


def test_definitions_load_with_all_substitutions_and_refuse_missing_ones() -> None:
    assert placeholders(CANARY) == {"RoutesTable", "PromptsTable", "NotificationTopicArn"}
    assert placeholders(RETRAINING) == {
        "ArtifactBucket",
        "PipelineName",
        "ModelPackageGroupName",
        "NotificationTopicArn",
    }
    definition = json.loads(
        load_definition(CANARY, {"RoutesTable": "T", "PromptsTable": "P", "NotificationTopicArn": "arn:topic"})
    )
    assert definition["States"]["SetRouteWeights"]["Parameters"]["TableName"] == "T"
    assert definition["States"]["MovePromptLabel"]["Parameters"]["TableName"] == "P"
    with pytest.raises(KeyError, match="RoutesTable"):
        load_definition(CANARY, {"PromptsTable": "P", "NotificationTopicArn": "arn"})


def test_definitions_use_no_lambda_tasks() -> None:
    for name in (CANARY, RETRAINING):
        text = asl_path(name).read_text()
        assert ":lambda:" not in text
