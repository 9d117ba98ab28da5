"""Test doubles for the tests that run the real gateway: one scriptable model provider, and the
gateway handler module wired to it over moto. Registered as a plugin by tests/conftest.py, so the
fixtures below are available everywhere; a module overrides `fake_provider` or `gateway_settings`
to change what the gateway is built with.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import pytest

from llmops.adapters.dynamodb.route_source import FileRouteSource
from llmops.application.wiring import GatewayRuntime, build_gateway
from llmops.config.env import Settings
from llmops.domain.chat import ChatRequest, Completion, FinishReason, Reasoning, Role, ToolCall, Usage
from llmops.domain.embeddings import Embedded, EmbeddingInputType
from llmops.domain.errors import ProviderError, ProviderFailureKind
from llmops.domain.ports import ChatProvider
from llmops.domain.routing import Provider, Target
from llmops.domain.streaming import ReasoningDelta, StreamEnd, StreamEvent, TextDelta, ToolCallDelta
from llmops.lambda_runtime import StreamingResponse
from llmops.local.lambda_runtime import load_handler_module

__all__ = [
    "DEFAULT_ANSWER",
    "DEFAULT_USAGE",
    "FakeEmbeddingProvider",
    "FakeProvider",
    "FakeStreamingProvider",
    "gateway_runtime",
    "installed_gateway",
    "read_to_end",
]

DEFAULT_ANSWER = "Hello there, this is a deterministic answer."
DEFAULT_USAGE = Usage(12, 8)


class FakeProvider:
    """A model provider (the domain's `ChatProvider` port) scripted by the test.

    Answers `text` with `usage`, or with `echo_prefix` + the last user message when `echo_prefix` is
    set (so whatever the prompt carries flows through the output stage too). A target id in
    `failing` is throttled; `on_call` runs before every answer (to fail, or to break something
    mid-request); `calls` holds the target id of every call, in order, and `requests` the request
    each call got (what the model saw, after the input guard). `tool_calls` and `reasoning` join the
    answer (its finish reason `tool_calls` when there are calls, unless `finish_reason` says otherwise).
    """

    def __init__(
        self,
        text: str = DEFAULT_ANSWER,
        usage: Usage = DEFAULT_USAGE,
        *,
        echo_prefix: str | None = None,
        tool_calls: Sequence[ToolCall] = (),
        reasoning: Sequence[Reasoning] = (),
        finish_reason: FinishReason | None = None,
    ) -> None:
        self.text = text
        self.usage = usage
        self.echo_prefix = echo_prefix
        self.tool_calls = tuple(tool_calls)
        self.reasoning = tuple(reasoning)
        self.finish_reason = finish_reason
        self.failing: set[str] = set()
        self.on_call: Callable[[], object] | None = None
        self.calls: list[str] = []
        self.requests: list[ChatRequest] = []

    def complete(self, target: Target, request: ChatRequest, *, timeout_s: float | None = None) -> Completion:
        self.calls.append(target.id)
        self.requests.append(request)
        if target.id in self.failing:
            raise ProviderError(ProviderFailureKind.THROTTLED, "throttled", target_id=target.id)
        if self.on_call is not None:
            self.on_call()
        text = self.text
        if self.echo_prefix is not None:
            last = next(m.content for m in reversed(request.messages) if m.role is Role.USER)
            text = f"{self.echo_prefix}{last}"
        finish = self.finish_reason or (FinishReason.TOOL_CALLS if self.tool_calls else FinishReason.STOP)
        return Completion(text, finish, self.usage, tool_calls=self.tool_calls, reasoning=self.reasoning)


class FakeStreamingProvider(FakeProvider):
    """A `FakeProvider` that also streams (`StreamingChatProvider`): its answer in `deltas` pieces
    (default: word by word, each with the space before it), the first after `first_delay_s`, each
    later one `delay_s` after the previous, then `StreamEnd` with `usage` (None: `reported_usage`
    False). `fail_after` deltas, the stream raises `fail_kind` instead. `closed` counts the streams
    the consumer closed before their end; `sent` the text deltas sent by the last stream.

    Reasoning blocks stream first, word by word, each closed by its signature (or sent whole as its
    encrypted `redacted` data), and tool calls last: each call's first delta carries its id and name,
    then its arguments follow in pieces of `argument_piece_chars`, as providers split them.
    """

    def __init__(
        self,
        text: str = DEFAULT_ANSWER,
        usage: Usage = DEFAULT_USAGE,
        *,
        deltas: Sequence[str] | None = None,
        first_delay_s: float = 0.0,
        delay_s: float = 0.0,
        fail_after: int | None = None,
        fail_kind: ProviderFailureKind = ProviderFailureKind.UNAVAILABLE,
        reported_usage: bool = True,
        echo_prefix: str | None = None,
        tool_calls: Sequence[ToolCall] = (),
        reasoning: Sequence[Reasoning] = (),
        finish_reason: FinishReason | None = None,
        argument_piece_chars: int = 5,
    ) -> None:
        super().__init__(
            text,
            usage,
            echo_prefix=echo_prefix,
            tool_calls=tool_calls,
            reasoning=reasoning,
            finish_reason=finish_reason,
        )
        self.argument_piece_chars = argument_piece_chars
        self.deltas = deltas
        self.first_delay_s, self.delay_s = first_delay_s, delay_s
        self.fail_after, self.fail_kind = fail_after, fail_kind
        self.reported_usage = reported_usage
        self.closed = 0
        self.sent = 0

    def stream(self, target: Target, request: ChatRequest, *, timeout_s: float | None = None) -> Iterator[StreamEvent]:
        completion = self.complete(target, request, timeout_s=timeout_s)  # failures, calls, echo
        pieces = list(self.deltas) if self.deltas is not None else re.findall(r"\s*\S+", completion.text)
        self.sent = 0
        ended = False
        try:
            yield from _reasoning_deltas(completion.reasoning)
            for index, piece in enumerate(pieces):
                if index == self.fail_after:
                    raise ProviderError(self.fail_kind, "failed mid-stream", target_id=target.id)
                time.sleep(self.first_delay_s if index == 0 else self.delay_s)
                self.sent += 1
                yield TextDelta(piece)
            for index, call in enumerate(completion.tool_calls):
                size = self.argument_piece_chars
                yield ToolCallDelta(index, "", call.id, call.name)
                for start in range(0, len(call.arguments), size):
                    yield ToolCallDelta(index, call.arguments[start : start + size])
            ended = True
            yield StreamEnd(completion.finish_reason, completion.usage if self.reported_usage else None)
        finally:
            if not ended:
                self.closed += 1


class FakeEmbeddingProvider:
    """An embedding provider (the domain's `EmbeddingProvider` port) scripted by the test.

    Answers each text with a vector of the asked size whose first component is the text's length
    (the rest 0.5), counting `tokens_per_text` tokens a text. `batches` holds the texts of every call,
    in order, so a test sees exactly what a model would have been sent; a target id in `failing` is
    throttled.
    """

    def __init__(self, tokens_per_text: int = 3) -> None:
        self.tokens_per_text = tokens_per_text
        self.batches: list[tuple[str, tuple[str, ...]]] = []  # (target id, texts)
        self.failing: set[str] = set()

    def embed(
        self,
        target: Target,
        texts: Sequence[str],
        *,
        dimensions: int,
        input_type: EmbeddingInputType,
        timeout_s: float | None = None,
    ) -> Embedded:
        self.batches.append((target.id, tuple(texts)))
        if target.id in self.failing:
            raise ProviderError(ProviderFailureKind.THROTTLED, "throttled", target_id=target.id)
        vectors = tuple((float(len(text)), *([0.5] * (dimensions - 1))) for text in texts)
        return Embedded(vectors, self.tokens_per_text * len(texts))

    @property
    def texts(self) -> list[str]:
        return [text for _, batch in self.batches for text in batch]


def _reasoning_deltas(blocks: Sequence[Reasoning]) -> Iterator[StreamEvent]:
    for block in blocks:
        if block.redacted is not None:
            yield ReasoningDelta(redacted=block.redacted)
            continue
        for piece in re.findall(r"\s*\S+", block.text):
            yield ReasoningDelta(piece)
        if block.signature is not None:
            yield ReasoningDelta(signature=block.signature)


def gateway_runtime(settings: Settings, provider: FakeProvider, **options: Any) -> GatewayRuntime:
    """The gateway's composition root with every model behind `provider` (`options` go to build_gateway);
    a `FakeStreamingProvider` streams too."""
    providers: dict[Provider, ChatProvider] = {Provider.BEDROCK: provider, Provider.SAGEMAKER: provider}
    if isinstance(provider, FakeStreamingProvider):
        options.setdefault("streaming", {Provider.BEDROCK: provider, Provider.SAGEMAKER: provider})
    embedder = FakeEmbeddingProvider()
    options.setdefault("embedding_providers", {Provider.BEDROCK: embedder, Provider.SAGEMAKER: embedder})
    return build_gateway(settings, routes=FileRouteSource(), providers=providers, **options)


@contextmanager
def installed_gateway(settings: Settings, provider: FakeProvider, **options: Any) -> Iterator[ModuleType]:
    """functions/gateway/handler.py, loaded as Lambda loads it, running on `gateway_runtime`."""
    module: Any = load_handler_module("gateway")
    module._runtime = gateway_runtime(settings, provider, **options)
    try:
        yield module
    finally:
        module._runtime = None


def read_to_end(result: dict[str, Any] | StreamingResponse) -> dict[str, Any]:
    """The gateway handler's answer as a proxy result: a streamed one read to its end, as the runtime
    loop reads it (its audit record is written after the last byte)."""
    if isinstance(result, StreamingResponse):
        return {**result.prelude(), "body": b"".join(result.body).decode("utf-8")}
    return result


@pytest.fixture
def fake_provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def gateway_settings(aws_settings: Settings) -> Settings:
    return aws_settings


@pytest.fixture
def gateway(fake_provider: FakeProvider, gateway_settings: Settings) -> Iterator[ModuleType]:
    """The gateway handler module over moto (`aws_settings`), every model answered by `fake_provider`."""
    with installed_gateway(gateway_settings, fake_provider) as module:
        yield module
