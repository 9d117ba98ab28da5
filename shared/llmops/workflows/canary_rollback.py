"""The rollback that `llmops canary abort` performs after stopping an execution.

A stopped execution runs no more states, so the state machine's own rollback branch never runs;
the CLI issues the same two requests instead. They mirror `RestoreRouteWeights` and
`RestoreVariantWeights` in `canary.asl.json` (the integration tests check that both leave the
same weights behind).
"""

from __future__ import annotations

from typing import Any

from llmops.adapters.dynamodb.route_items import ROUTE_PK
from llmops.workflows.canary_input import CanaryInput

__all__ = ["endpoint_rollback_request", "route_rollback_request"]


def route_rollback_request(canary: CanaryInput, routes_table: str) -> dict[str, Any]:
    """Keyword arguments for DynamoDB `update_item`: baseline back to 100, candidate to 0."""
    return {
        "TableName": routes_table,
        "Key": {"pk": {"S": ROUTE_PK}, "sk": {"S": canary.alias}},
        "UpdateExpression": "SET weights.#b = :wb, weights.#c = :wc",
        "ConditionExpression": "attribute_exists(weights)",
        "ExpressionAttributeNames": {"#b": canary.baseline.target, "#c": canary.candidate.target},
        "ExpressionAttributeValues": {":wb": {"N": "100"}, ":wc": {"N": "0"}},
    }


def endpoint_rollback_request(canary: CanaryInput) -> dict[str, Any] | None:
    """Keyword arguments for SageMaker `update_endpoint_weights_and_capacities`, or None when the
    canary only moved route weights."""
    if canary.provider != "sagemaker":
        return None
    return {
        "EndpointName": canary.endpoint_name,
        "DesiredWeightsAndCapacities": [
            {"VariantName": canary.baseline.variant, "DesiredWeight": 100.0},
            {"VariantName": canary.candidate.variant, "DesiredWeight": 0.0},
        ],
    }
