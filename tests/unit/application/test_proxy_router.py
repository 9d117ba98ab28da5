"""The gateway's router: exact routes, the body validated against the endpoint's model, errors in
the shape `rendering.validation_error` reads, exception handlers found along the MRO."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from llmops.application.proxy_events import parse_json_body
from llmops.application.proxy_router import BodyValidationError, ProxyRouter
from llmops.application.rendering import validation_error
from llmops.application.responses import ApiResponse
from llmops.domain.errors import BadRequestError, GatewayError


class Greeting(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    name: str
    times: int = 1


def _router() -> ProxyRouter:
    router = ProxyRouter(parse_body=parse_json_body)

    @router.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.post("/greet")
    def greet(body: Greeting) -> dict[str, Any]:
        if body.name == "nobody":
            raise BadRequestError("No one to greet.", code="invalid_value")
        if body.name == "boom":
            raise RuntimeError("unexpected")
        return {"greeting": f"hello {body.name}", "times": body.times, "tenant": router.event.get("tenant")}

    @router.exception_handler(GatewayError)
    def refused(error: GatewayError) -> ApiResponse:
        return ApiResponse.error(error)

    @router.exception_handler(BodyValidationError)
    def invalid(error: BodyValidationError) -> ApiResponse:
        return ApiResponse.error(validation_error(error.errors()))

    @router.not_found
    def not_found() -> ApiResponse:
        return ApiResponse.json(404, {"error": "no such route"})

    return router


def _event(method: str, path: str, body: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"httpMethod": method, "path": path, "body": body, "headers": {"X-Test": "1"}, **extra}


def _json(response: ApiResponse) -> Any:
    return json.loads(response.body)


def test_a_route_answers_json_and_sees_its_event() -> None:
    router = _router()
    response = router.resolve(_event("POST", "/greet", '{"name": "ada"}', tenant="t1"), None)
    assert (response.status, _json(response)) == (200, {"greeting": "hello ada", "times": 1, "tenant": "t1"})
    assert router.event == {}  # nothing of the invocation is kept after it


def test_a_base64_body_is_decoded() -> None:
    body = base64.b64encode(b'{"name": "ada", "times": 2}').decode()
    response = _router().resolve(_event("POST", "/greet", body, isBase64Encoded=True), None)
    assert _json(response)["times"] == 2


@pytest.mark.parametrize(("method", "path"), [("GET", "/greet"), ("POST", "/health"), ("GET", "/health/")])
def test_only_the_exact_method_and_path_match(method: str, path: str) -> None:
    response = _router().resolve(_event(method, path), None)
    assert (response.status, _json(response)) == (404, {"error": "no such route"})


def test_a_lowercase_method_still_matches() -> None:
    assert _router().resolve(_event("get", "/health"), None).status == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "The request body must be a JSON object."),
        ("null", "The request body must be a JSON object."),
        ('[{"name": "ada"}]', "The request body must be a JSON object."),
        ("{not json", "The request body is not valid JSON."),
        ('{"name": "ada", "extra": 1}', "Unrecognized request argument supplied: extra"),
        ('{"times": 1}', "Missing required parameter: 'name'."),
    ],
)
def test_a_body_that_does_not_fit_the_model_is_refused_in_the_openai_shape(body: str | None, message: str) -> None:
    response = _router().resolve(_event("POST", "/greet", body), None)
    assert response.status == 400
    assert _json(response)["error"]["message"] == message


def test_validation_errors_are_located_under_body() -> None:
    router = ProxyRouter(parse_body=parse_json_body)
    seen: list[BodyValidationError] = []

    @router.post("/greet")
    def greet(body: Greeting) -> dict[str, Any]:
        return {}

    @router.exception_handler(BodyValidationError)
    def invalid(error: BodyValidationError) -> ApiResponse:
        seen.append(error)
        return ApiResponse.json(400, {})

    router.resolve(_event("POST", "/greet", '{"name": 3}'), None)
    assert [tuple(e["loc"]) for e in seen[0].errors()] == [("body", "name")]


def test_exception_handlers_are_found_along_the_mro_and_others_propagate() -> None:
    router = _router()
    refused = router.resolve(_event("POST", "/greet", '{"name": "nobody"}'), None)
    assert (refused.status, _json(refused)["error"]["message"]) == (400, "No one to greet.")
    with pytest.raises(RuntimeError):
        router.resolve(_event("POST", "/greet", '{"name": "boom"}'), None)


def test_routes_are_listed_with_their_body_models() -> None:
    routes = {(r.method, r.path): r.body for r in _router().routes}
    assert routes == {("GET", "/health"): None, ("POST", "/greet"): Greeting}


def test_a_proxy_result_has_multi_value_headers() -> None:
    result = ApiResponse(201, "{}", headers={"x-a": "1"}).to_proxy_result()
    assert result == {
        "statusCode": 201,
        "body": "{}",
        "isBase64Encoded": False,
        "multiValueHeaders": {"x-a": ["1"], "Content-Type": ["application/json"]},
    }
