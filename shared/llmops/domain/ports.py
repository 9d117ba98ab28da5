"""Ports: the interfaces the domain needs from the outside world. Adapters implement them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from llmops.domain.chat import ChatRequest, Completion
from llmops.domain.images import FetchedImage
from llmops.domain.routing import RouteTable, Target

if TYPE_CHECKING:  # embeddings builds on completions, which imports this module
    from llmops.domain.embeddings import Embedded, EmbeddingInputType

__all__ = ["ChatProvider", "EmbeddingProvider", "ImageFetcher", "RouteSource"]


class ChatProvider(Protocol):
    """One model backend. Must raise `ProviderError` (never an SDK exception) on failure.

    `timeout_s` is how long this call may take in all (connecting included) before it must fail as
    `ProviderFailureKind.TIMEOUT`; None leaves the adapter's configured timeouts in charge.
    """

    def complete(self, target: Target, request: ChatRequest, *, timeout_s: float | None = None) -> Completion: ...


class RouteSource(Protocol):
    """Returns the current route table; implementations cache it (see config TTL)."""

    def current(self) -> RouteTable: ...


class EmbeddingProvider(Protocol):
    """One embedding backend (`POST /v1/embeddings`). Must raise `ProviderError` (never an SDK
    exception) on failure.

    `texts` fit the target's `EmbeddingSpec` (at most `max_batch`, each within `max_input_chars`:
    the domain batches); the answer has one vector of `dimensions` floats per text, in order, and the
    input tokens the model counted (estimated where it reports none). `input_type` is for models
    that need it (Cohere); `timeout_s` as for `ChatProvider.complete`.
    """

    def embed(
        self,
        target: Target,
        texts: Sequence[str],
        *,
        dimensions: int,
        input_type: EmbeddingInputType,
        timeout_s: float | None = None,
    ) -> Embedded: ...


class ImageFetcher(Protocol):
    """Fetches a remote http(s) image a tenant's content policy allows (`image_url` with a URL).

    Must refuse URLs whose host resolves to any non-public address (SSRF), read at most `max_bytes`
    and give up after `timeout_s` in all; every failure is an `ImageFetchError` whose reason never
    holds the URL or what the server sent. The caller checks the bytes (`domain.images`).
    """

    def fetch(self, url: str, *, max_bytes: int, timeout_s: float) -> FetchedImage: ...
