"""`GET /v1/openapi.json`: the published OpenAPI document, public, built on first use."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from llmops.adapters.dynamodb.route_source import FileRouteSource
from llmops.application.openapi import openapi_document, openapi_json
from llmops.application.wiring import build_gateway
from llmops.config.env import Settings
from llmops.local.lambda_runtime import FUNCTIONS_DIR, LocalLambdaContext, load_handler_module


@pytest.fixture
def gateway(aws_settings: Settings) -> Iterator[ModuleType]:
    module = load_handler_module("gateway")
    module._runtime = build_gateway(aws_settings, routes=FileRouteSource(), providers={})
    yield module
    module._runtime = None


@pytest.fixture
def openapi_event(load_event: Any) -> dict[str, Any]:
    """An anonymous GET /v1/openapi.json as API Gateway sends it to the public method."""
    event: dict[str, Any] = copy.deepcopy(load_event("health"))
    event["resource"] = event["path"] = event["requestContext"]["resourcePath"] = "/v1/openapi.json"
    event["requestContext"]["path"] = "/prod/v1/openapi.json"
    event["headers"].pop("Authorization")
    assert event["requestContext"]["authorizer"] is None
    return event


def test_serves_the_published_document_without_a_key(gateway: ModuleType, openapi_event: dict[str, Any]) -> None:
    result = gateway.handler(openapi_event, LocalLambdaContext("gateway"))

    assert result["statusCode"] == 200
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    headers.update({k.lower(): v[-1] for k, v in (result.get("multiValueHeaders") or {}).items()})
    assert headers["content-type"] == "application/json"
    assert headers["x-request-id"] == openapi_event["requestContext"]["requestId"]
    document = json.loads(result["body"])
    assert document == openapi_document(gateway.app)
    assert document["paths"]["/v1/openapi.json"]["get"]["security"] == []
    assert document["paths"]["/v1/chat/completions"]["post"]["security"] == [{"bearerAuth": []}]


def test_built_once_on_first_request_not_at_import(gateway: ModuleType, openapi_event: dict[str, Any]) -> None:
    openapi_json.cache_clear()
    spec = importlib.util.spec_from_file_location("gateway_handler_import_check", FUNCTIONS_DIR / "gateway/handler.py")
    assert spec is not None and spec.loader is not None
    fresh = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(fresh)
        assert openapi_json.cache_info().currsize == 0  # importing the handler built nothing
    finally:
        sys.modules.pop("gateway_handler_import_check", None)

    for _ in range(2):
        assert gateway.handler(openapi_event, LocalLambdaContext("gateway"))["statusCode"] == 200
    assert (openapi_json.cache_info().misses, openapi_json.cache_info().hits) == (1, 1)
