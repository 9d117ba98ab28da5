"""Deployment config from CDK context: defaults from routes.json, CLI-style strings, clear errors."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, GatewayConfig, Stage, config_from_context, routes_document


def _from(context: dict[str, Any]) -> GatewayConfig:
    return config_from_context(context.get)


def test_defaults_permit_exactly_the_models_and_endpoints_in_routes_json() -> None:
    targets = routes_document()["targets"].values()
    config = _from({})
    assert config.stage is Stage.DEV
    assert set(config.bedrock_model_ids) == {t["model_id"] for t in targets if t["provider"] == "bedrock"}
    assert set(config.sagemaker_endpoint_names) == {t["endpoint_name"] for t in targets if t["provider"] == "sagemaker"}
    assert config.stack_name == "LlmopsGateway-dev"
    assert config.bundle_dependencies is True


def test_cli_context_strings_are_parsed() -> None:
    config = _from(
        {
            "stage": "prod",
            "bedrockModelIds": "amazon.nova-pro-v1:0, us.anthropic.claude-3-7-sonnet-20250219-v1:0",
            "sagemakerEndpointNames": "ep-a,ep-b",
            "bundleDependencies": "false",
            "throttleRateLimit": "20",
            "throttleBurstLimit": "40",
        }
    )
    assert config.is_prod
    assert config.bedrock_model_ids == (
        "amazon.nova-pro-v1:0",
        "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
    )
    assert config.sagemaker_endpoint_names == ("ep-a", "ep-b")
    assert config.bundle_dependencies is False
    assert config.retention_days == 365
    assert config.stack_name == "LlmopsGateway-prod"


@pytest.mark.parametrize(
    ("context", "key"),
    [
        ({"stage": "staging"}, "stage"),
        ({"bedrockModelIds": "anthropic.*"}, "bedrockModelIds"),
        ({"sagemakerEndpointNames": "bad name"}, "sagemakerEndpointNames"),
        ({"alarmEmail": "not-an-email"}, "alarmEmail"),
        ({"logRetentionDays": 42}, "logRetentionDays"),
        ({"throttleRateLimit": 100, "throttleBurstLimit": 10}, "throttleBurstLimit"),
    ],
)
def test_bad_context_fails_naming_the_key(context: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        _from(context)
