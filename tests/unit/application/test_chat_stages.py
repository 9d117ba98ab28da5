"""Each stage of the chat path is timed for the audit record and traced as its own subsegment."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from llmops.adapters.dynamodb.route_source import FileRouteSource
from llmops.application.chat_endpoint import RequestTrace
from llmops.application.openai_schema import ChatCompletionRequest
from llmops.application.wiring import build_gateway
from llmops.config.env import Settings
from llmops.domain.chat import ChatRequest, Completion, FinishReason, Usage
from llmops.domain.routing import Provider, Target
from llmops.domain.tenancy import TenantContext


class InstantProvider:
    def complete(self, target: Target, request: ChatRequest, *, timeout_s: float | None = None) -> Completion:
        return Completion("Sure.", FinishReason.STOP, Usage(5, 2))


def test_every_stage_is_timed_and_traced(aws_settings: Settings) -> None:
    opened: list[str] = []
    finished: list[RequestTrace] = []

    @contextmanager
    def span(name: str) -> Iterator[Any]:
        opened.append(name)
        yield None

    provider = InstantProvider()
    runtime = build_gateway(
        aws_settings,
        routes=FileRouteSource(),
        providers={Provider.BEDROCK: provider, Provider.SAGEMAKER: provider},
        on_finished=finished.append,
        spans=span,
    )
    body = ChatCompletionRequest.model_validate(
        {"model": "chat-default", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    )
    response = runtime.chat.handle(body, TenantContext("t1", "k1"), "req-1")

    assert response.status == 200
    stages = [
        "parse",
        "input_guard",
        "route",
        "cache_lookup",
        "quota_reserve",
        "output_guard",
        "quota_settle",
        "cache_store",
        "render",
    ]
    assert [name for name in opened if name != "provider"] == stages
    assert "provider" in opened
    (trace,) = finished
    assert set(stages) <= set(trace.stage_ms)
    assert trace.stage_ms["provider"] >= 0
