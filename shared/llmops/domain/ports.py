"""Ports: the interfaces the domain needs from the outside world. Adapters implement them."""

from __future__ import annotations

from typing import Protocol

from llmops.domain.chat import ChatRequest, Completion
from llmops.domain.routing import RouteTable, Target

__all__ = ["ChatProvider", "RouteSource"]


class ChatProvider(Protocol):
    """One model backend. Must raise `ProviderError` (never an SDK exception) on failure.

    `timeout_s` is how long this call may take in all (connecting included) before it must fail as
    `ProviderFailureKind.TIMEOUT`; None leaves the adapter's configured timeouts in charge.
    """

    def complete(self, target: Target, request: ChatRequest, *, timeout_s: float | None = None) -> Completion: ...


class RouteSource(Protocol):
    """Returns the current route table; implementations cache it (see config TTL)."""

    def current(self) -> RouteTable: ...
