"""The gateway's routes for API Gateway REST proxy events: match, validate the body, answer.

The gateway has a handful of fixed routes, each with at most one JSON body described by a pydantic
model. Powertools' `APIGatewayRestResolver` did this before, at a cost the gateway paid on every
cold start and every request: importing `aws_lambda_powertools.event_handler` imports every
resolver it has (AppSync's brings asyncio), about a fifth of the function's init; and each request
went through its middleware chain, wrapped the event in data classes, formatted a debug line with
the whole validated body in it, and validated the route's answer again on its way out.

This router does only what the gateway's routes need, with the same results: a route's `body`
parameter is validated with its annotated model (errors are pydantic's, located under `body` as
Powertools located them, so `llmops.application.rendering.validation_error` renders them
unchanged); exception handlers are looked up along the exception's MRO; an unknown method or path
goes to the not-found handler. The OpenAPI document is still Powertools' work, from these routes,
built when `GET /v1/openapi.json` is first asked for (`llmops.application.openapi`).
"""

from __future__ import annotations

import base64
import json
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from llmops.application.responses import ApiResponse

__all__ = ["BodyValidationError", "ProxyRoute", "ProxyRouter"]

_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])
_Handler = TypeVar("_Handler", bound=Callable[..., ApiResponse])


class BodyValidationError(Exception):
    """A route's body that is not JSON, is missing, or does not fit the route's model."""

    def __init__(self, errors: list[Mapping[str, Any]]) -> None:
        super().__init__("request body validation failed")
        self._errors = errors

    def errors(self) -> list[Mapping[str, Any]]:
        """pydantic's error dicts, `loc` starting with `"body"`."""
        return self._errors


@dataclass(frozen=True, slots=True)
class ProxyRoute:
    """One route: method, path, the endpoint serving it and the model of its body."""

    method: str
    path: str
    endpoint: Callable[..., Any]
    body: type[BaseModel] | None  # the model of the endpoint's `body` parameter, if it takes one


def _as_response(answer: Any) -> ApiResponse:
    """An endpoint's answer as a response: an `ApiResponse` as it is, a model or a dict as 200 JSON."""
    if isinstance(answer, ApiResponse):
        return answer
    if isinstance(answer, BaseModel):
        return ApiResponse(200, answer.model_dump_json(by_alias=True))
    return ApiResponse.json(200, answer)


class ProxyRouter:
    """Routes by exact method and path. `event` and `context` are the invocation's while it resolves
    (exception handlers read them too); a Lambda environment runs one invocation at a time."""

    def __init__(self, parse_body: Callable[[str], Any]) -> None:
        self._parse_body = parse_body
        self._routes: dict[tuple[str, str], ProxyRoute] = {}
        self._error_handlers: dict[type[BaseException], Callable[[Any], ApiResponse]] = {}
        self._not_found: Callable[[], ApiResponse] = lambda: ApiResponse.json(404, {"message": "Not found"})
        self.event: Mapping[str, Any] = {}
        self.context: Any = None

    @property
    def routes(self) -> tuple[ProxyRoute, ...]:
        return tuple(self._routes.values())

    @property
    def headers(self) -> Mapping[str, str]:
        headers: Mapping[str, str] = self.event.get("headers") or {}
        return headers

    def get(self, path: str) -> Callable[[_Endpoint], _Endpoint]:
        return self.route("GET", path)

    def post(self, path: str) -> Callable[[_Endpoint], _Endpoint]:
        return self.route("POST", path)

    def route(self, method: str, path: str) -> Callable[[_Endpoint], _Endpoint]:
        def register(endpoint: _Endpoint) -> _Endpoint:
            body = typing.get_type_hints(endpoint).get("body")
            self._routes[(method, path)] = ProxyRoute(method, path, endpoint, body)
            return endpoint

        return register

    def exception_handler(self, *kinds: type[BaseException]) -> Callable[[_Handler], _Handler]:
        def register(handler: _Handler) -> _Handler:
            for kind in kinds:
                self._error_handlers[kind] = handler
            return handler

        return register

    def not_found(self, handler: Callable[[], ApiResponse]) -> Callable[[], ApiResponse]:
        self._not_found = handler
        return handler

    def resolve(self, event: Mapping[str, Any], context: Any) -> ApiResponse:
        self.event, self.context = event, context
        try:
            try:
                return _as_response(self._dispatch(event))
            except Exception as error:
                handler = self._handler_for(type(error))
                if handler is None:
                    raise
                return handler(error)
        finally:
            self.event, self.context = {}, None

    def _handler_for(self, kind: type[BaseException]) -> Callable[[Any], ApiResponse] | None:
        return next((self._error_handlers[k] for k in kind.__mro__ if k in self._error_handlers), None)

    def _dispatch(self, event: Mapping[str, Any]) -> Any:
        route = self._routes.get((str(event.get("httpMethod") or "").upper(), str(event.get("path") or "")))
        if route is None:
            return self._not_found()
        if route.body is None:
            return route.endpoint()
        return route.endpoint(body=self._body(route.body, event))

    def _body(self, model: type[BaseModel], event: Mapping[str, Any]) -> BaseModel:
        text: str | None = event.get("body")
        if text and event.get("isBase64Encoded"):
            text = base64.b64decode(text.encode()).decode()  # UnicodeDecodeError: the caller's handler
        try:
            data = self._parse_body(text) if text else None
        except json.JSONDecodeError as error:
            invalid = {"type": "json_invalid", "loc": ("body", error.pos), "msg": "JSON decode error", "input": {}}
            raise BodyValidationError([{**invalid, "ctx": {"error": error.msg}}]) from error
        if data is None:
            raise BodyValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
        try:
            return model.model_validate(data)
        except ValidationError as error:
            raise BodyValidationError([{**e, "loc": ("body", *e["loc"])} for e in error.errors()]) from error
