"""The local front door answers what API Gateway would when the authorizer fails or refuses, from
the same definitions the CDK stack renders (llmops.config.edge_responses)."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from werkzeug.test import Client

from llmops.config.edge_responses import edge_response
from llmops.local.front_door import FrontDoor


def _front_door(authorize: Any) -> FrontDoor:
    front = FrontDoor()
    # The authorizer "container" is replaced; nothing reaches the gateway in these tests.
    front._authorizer = SimpleNamespace(handler=authorize)  # type: ignore[assignment]
    return front


def _table_unreachable(event: Any, context: Any) -> Any:
    error = {"Code": "ProvisionedThroughputExceededException", "Message": "Rate of requests exceeds the limit."}
    raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}, "GetItem")


def _refuse(event: Any, context: Any) -> Any:
    raise PermissionError("Unauthorized")


def test_an_authorizer_failure_is_a_503_in_openai_shape_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    client = Client(_front_door(_table_unreachable))
    with caplog.at_level(logging.INFO):
        response = client.get("/v1/models", headers={"Authorization": "Bearer llmops-anything"})
    assert response.status_code == 503
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Retry-After"] == "1"
    body = json.loads(response.get_data())
    assert body == edge_response("AUTHORIZER_FAILURE").body()
    assert body["error"]["code"] == "service_unavailable"
    assert not any(record.exc_info for record in caplog.records), "no traceback is logged"
    assert any("authorizer failed: ClientError" in record.getMessage() for record in caplog.records)


def test_a_failure_is_not_cached_as_a_refusal() -> None:
    calls: list[int] = []

    def flaky(event: Any, context: Any) -> Any:
        calls.append(1)
        return _table_unreachable(event, context)

    client = Client(_front_door(flaky))
    for _ in range(2):
        assert client.get("/v1/usage", headers={"Authorization": "Bearer k"}).status_code == 503
    assert len(calls) == 2


def test_a_refused_key_is_the_deployed_401() -> None:
    response = Client(_front_door(_refuse)).get("/v1/models", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert json.loads(response.get_data()) == edge_response("UNAUTHORIZED").body()
