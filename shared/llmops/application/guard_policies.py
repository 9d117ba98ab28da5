"""Named guard policies: the product default plus per-tenant overrides from configuration.

A tenant's key carries a policy name; engines are built once per name and reused for the life of
the container, since building one compiles the tenant's deny lists.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

from llmops.domain.guard import GuardEngine, GuardPolicy

__all__ = ["DEFAULT_POLICY", "GuardPolicies"]

DEFAULT_POLICY = "default"


class GuardPolicies:
    def __init__(self, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self._policies: dict[str, GuardPolicy] = {DEFAULT_POLICY: GuardPolicy.default()}
        for name, spec in (overrides or {}).items():
            self._policies[name] = GuardPolicy.from_mapping(spec)  # raises with every problem listed
        self._engines: dict[str, GuardEngine] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_json(cls, text: str) -> GuardPolicies:
        return cls(json.loads(text) if text.strip() else None)

    def __call__(self, name: str) -> GuardEngine:
        engine = self._engines.get(name)
        if engine is not None:
            return engine
        with self._lock:
            # An unknown name falls back to the default rather than to no guard at all.
            policy = self._policies.get(name, self._policies[DEFAULT_POLICY])
            engine = self._engines.setdefault(name, GuardEngine(policy))
        return engine
