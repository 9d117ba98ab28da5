"""A chat endpoint over moto with a scripted provider, driven by domain `ChatRequest`s: the tests of
tools, images, reasoning and structured output on the chat path build requests as the API layer
will hand them over, so they exercise the response side and the guards whatever the request parser
(openai_schema) accepts."""

from __future__ import annotations

import json
from typing import Any

from pydantic import PrivateAttr

from llmops.application.openai_schema import ChatCompletionRequest
from llmops.application.responses import ApiResponse
from llmops.application.wiring import GatewayRuntime
from llmops.domain.audit import AuditRecord
from llmops.domain.chat import ChatRequest
from llmops.domain.guard import GuardEngine
from llmops.domain.guard.policy import GuardPolicy
from llmops.domain.quotas import PendingSettlement, SettleOutcome
from llmops.domain.request_trace import RequestTrace
from llmops.domain.tenancy import TenantContext
from tests.fakes import FakeProvider

TENANT = TenantContext("t1", "k1")


class DomainBody(ChatCompletionRequest):
    """A request body whose domain form is given, not parsed (the wire fields only steer the stream)."""

    _request: ChatRequest = PrivateAttr()

    def to_domain(self, *args: Any, **kwargs: Any) -> ChatRequest:  # type: ignore[override]
        return self._request


def body_for(request: ChatRequest, **wire: Any) -> DomainBody:
    body = DomainBody.model_validate({"model": request.model, "messages": [], "stream": request.stream, **wire})
    body._request = request
    return body


class Harness:
    """The gateway's chat endpoint with the audit records and traces it writes kept in memory."""

    def __init__(self, runtime: GatewayRuntime, provider: FakeProvider) -> None:
        self.runtime, self.provider = runtime, provider
        self.records: list[AuditRecord] = []
        self.traces: list[RequestTrace] = []
        runtime.chat.audit = self
        runtime.chat.on_finished = self.traces.append

    def write(self, record: AuditRecord) -> None:
        self.records.append(record)

    def settle_and_write(self, settlement: PendingSettlement, record: AuditRecord, now: float) -> SettleOutcome:
        self.records.append(record)
        return SettleOutcome(applied=True)

    def send(self, request: ChatRequest, **wire: Any) -> ApiResponse:
        return self.runtime.chat.handle(body_for(request, **wire), TENANT, f"req-{len(self.records)}")

    def json(self, request: ChatRequest, **wire: Any) -> dict[str, Any]:
        response = self.send(request, **wire)
        assert response.status == 200, response.body
        body: dict[str, Any] = json.loads(response.body)
        return body

    def use_policy(self, mapping: dict[str, Any]) -> None:
        engine = GuardEngine(GuardPolicy.from_mapping(mapping))
        self.runtime.chat.guards = lambda _name: engine


def sse_events(body: str) -> list[Any]:
    """The SSE data of a stream: chunk dicts, then "[DONE]" (or an error dict)."""
    events = [e.removeprefix("data: ") for e in body.split("\n\n") if e]
    return [e if e == "[DONE]" else json.loads(e) for e in events]
