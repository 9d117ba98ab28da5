"""Each stage of the chat path is timed for the audit record and traced as its own subsegment."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from llmops.application.openai_schema import ChatCompletionRequest
from llmops.config.env import Settings
from llmops.domain.request_trace import RequestTrace
from llmops.domain.stages import RequestStage
from llmops.domain.tenancy import TenantContext
from tests.fakes import FakeProvider, gateway_runtime


def test_every_stage_is_timed_and_traced(aws_settings: Settings, fake_provider: FakeProvider) -> None:
    opened: list[str] = []
    finished: list[RequestTrace] = []

    @contextmanager
    def span(name: str) -> Iterator[Any]:
        opened.append(name)
        yield None

    runtime = gateway_runtime(aws_settings, fake_provider, on_finished=finished.append, spans=span)
    body = ChatCompletionRequest.model_validate(
        {"model": "chat-default", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    )
    response = runtime.chat.handle(body, TenantContext("t1", "k1"), "req-1")

    assert response.status == 200
    # The request reaches every stage (temperature 0: the cache is consulted and then written), in
    # request order, each traced under its RequestStage name.
    assert opened == list(RequestStage)
    (trace,) = finished
    # Every timed stage is a known one: anything else is dropped by the StageDuration metric and
    # missing from the debug dashboard, both of which enumerate RequestStage.
    assert set(trace.stage_ms) == set(RequestStage)
    assert all(isinstance(name, RequestStage) for name in trace.stage_ms)
    assert all(ms >= 0 for ms in trace.stage_ms.values())
