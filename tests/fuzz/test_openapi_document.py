"""The OpenAPI document the handler generates covers every route and states the real contract."""

from __future__ import annotations

from typing import Any

import schemathesis

from llmops.application.openapi import BEARER_SCHEME, ERROR_SCHEMA_NAME, PUBLIC_ROUTES, resolver_routes
from llmops.local.lambda_runtime import load_handler_module

# The README's HTTP API (docs/architecture.md, "External contracts"): routes that must exist.
CONTRACT_ROUTES = {
    ("GET", "/health"),
    ("GET", "/v1/openapi.json"),
    ("GET", "/v1/models"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/guardrails/scan"),
    ("POST", "/v1/feedback"),
    ("GET", "/v1/usage"),
}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def _operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): op
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS
    }


def test_every_route_is_documented(gateway_openapi: dict[str, Any]) -> None:
    routes = resolver_routes(load_handler_module("gateway").app)
    assert routes >= CONTRACT_ROUTES
    assert set(_operations(gateway_openapi)) == routes


def test_v1_routes_require_the_bearer_key_and_health_does_not(gateway_openapi: dict[str, Any]) -> None:
    scheme = gateway_openapi["components"]["securitySchemes"][BEARER_SCHEME]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for key, op in _operations(gateway_openapi).items():
        expected: list[dict[str, list[str]]] = [] if key in PUBLIC_ROUTES else [{BEARER_SCHEME: []}]
        assert op["security"] == expected, key


def test_every_error_is_the_openai_shape_and_never_422(gateway_openapi: dict[str, Any]) -> None:
    error_ref = f"#/components/schemas/{ERROR_SCHEMA_NAME}"
    for key, op in _operations(gateway_openapi).items():
        statuses = set(op["responses"])
        assert "422" not in statuses, key
        assert "200" in statuses, key
        errors = [s for s in statuses if s[0] in "45"]
        assert errors, key
        for status in errors:
            assert op["responses"][status]["content"]["application/json"]["schema"] == {"$ref": error_ref}
        if key in PUBLIC_ROUTES:
            continue
        assert "401" in statuses, key
    error = gateway_openapi["components"]["schemas"][ERROR_SCHEMA_NAME]["properties"]["error"]
    assert set(error["required"]) == {"message", "type", "code", "param"}


def test_chat_documents_json_sse_provenance_and_retry_after(gateway_openapi: dict[str, Any]) -> None:
    chat = _operations(gateway_openapi)[("POST", "/v1/chat/completions")]
    ok = chat["responses"]["200"]
    assert set(ok["content"]) == {"application/json", "text/event-stream"}
    assert {"x-request-id", "x-llmops-route", "x-llmops-target", "x-llmops-cost-usd"} <= set(ok["headers"])
    for status in ("400", "404", "429", "502", "503", "504"):
        assert status in chat["responses"], status
    for status in ("429", "503"):
        assert chat["responses"][status]["headers"]["Retry-After"]["required"] is True


def test_no_dangling_references(gateway_openapi: dict[str, Any]) -> None:
    schemas = gateway_openapi["components"]["schemas"]

    def refs(node: Any) -> set[str]:
        if isinstance(node, dict):
            found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
            return found.union(*(refs(v) for v in node.values()))
        if isinstance(node, list):
            return set().union(*(refs(v) for v in node))
        return set()

    for ref in refs(gateway_openapi):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_schemathesis_loads_every_operation(gateway_openapi: dict[str, Any]) -> None:
    # validate_schema checks the document against the OpenAPI 3.1 meta-schema too.
    schema = schemathesis.from_dict(gateway_openapi, base_url="http://127.0.0.1:9", validate_schema=True)
    results: list[Any] = list(schema.get_all_operations())
    operations = [result.ok() for result in results]
    loaded = {(op.method.upper(), op.path) for op in operations}
    assert loaded == set(_operations(gateway_openapi))
