"""Named guard policies: the registry's `production` versions, then configuration, then the default.

A tenant's key carries a policy name. The gateway first asks the guard policy registry (the
Prompts table, `guard#<name>`) where label `production` of that name points; that label is cached
for the config TTL, like prompt labels, so `llmops guard-policies label set|rollback` (or a canary
release bundle) takes effect within the TTL without a redeploy. In the TTL's last quarter a request
defers its re-read until after the response (`defer`, `llmops.domain.revalidating_cache`).
A name with no `production` label falls back to the policies configured in `LLMOPS_GUARD_POLICIES`,
and an unknown name to the product default rather than to no guard at all.

Engines are built once per (name, version) and reused for the life of the container, since
building one compiles the tenant's deny lists; versions are immutable, so a cached engine never
goes stale, and a label move simply selects another one. Each engine gets the service detectors
its policy configures (`detectors`, `llmops.application.guard_detectors.ServiceDetectors` in the
gateway); building them calls nothing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from llmops.domain.guard import GuardEngine, GuardPolicy
from llmops.domain.guard.policy import GATEWAY_DETECTORS, PolicyError
from llmops.domain.guard.service_detectors import ServiceDetector
from llmops.domain.guard_policy_registry import PRODUCTION_LABEL, GuardPolicySource, GuardPolicyVersion
from llmops.domain.revalidating_cache import Defer, RevalidatingCache

__all__ = ["DEFAULT_POLICY", "GuardPolicies"]

DEFAULT_POLICY = "default"
_CONFIGURED = 0  # the engine-cache "version" of a configured (unversioned) policy
_MAX_LABEL_ENTRIES = 4096
_MAX_ENGINES = 256

logger = logging.getLogger(__name__)


class GuardPolicies:
    """`guards(name) -> GuardEngine`. `registry` (optional) is the versioned store."""

    def __init__(
        self,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        registry: GuardPolicySource | None = None,
        ttl_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        detectors: Callable[[GuardPolicy], Sequence[ServiceDetector]] | None = None,
        defer: Defer | None = None,
    ) -> None:
        self._detectors = detectors
        self._policies: dict[str, GuardPolicy] = {DEFAULT_POLICY: GuardPolicy.default()}
        for name, spec in (overrides or {}).items():
            try:
                self._policies[name] = GuardPolicy.from_mapping(spec, runnable_detectors=GATEWAY_DETECTORS)
            except PolicyError as exc:  # every problem listed, under the policy's name
                raise PolicyError([f"{name}: {problem}" for problem in exc.errors]) from None
        self._registry = registry
        self._engines: dict[tuple[str, int], GuardEngine] = {}
        # policy name -> its production version (None: no label, configuration serves)
        self._labels: RevalidatingCache[str, int | None] = RevalidatingCache(
            ttl_s, defer=defer, clock=clock, max_entries=_MAX_LABEL_ENTRIES
        )
        self._lock = threading.Lock()

    @classmethod
    def from_json(
        cls,
        text: str,
        *,
        registry: GuardPolicySource | None = None,
        ttl_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        detectors: Callable[[GuardPolicy], Sequence[ServiceDetector]] | None = None,
        defer: Defer | None = None,
    ) -> GuardPolicies:
        return cls(
            json.loads(text) if text.strip() else None,
            registry=registry,
            ttl_s=ttl_s,
            clock=clock,
            detectors=detectors,
            defer=defer,
        )

    def __call__(self, name: str) -> GuardEngine:
        version = self._production_version(name)
        if version is not None:
            engine = self._engines.get((name, version))
            if engine is not None:
                return engine
            found = self._load_version(name, version)
            if found is not None:
                return self._engine((name, version), found.policy())
        engine = self._engines.get((name, _CONFIGURED))
        if engine is not None:
            return engine
        return self._engine((name, _CONFIGURED), self._policies.get(name, self._policies[DEFAULT_POLICY]))

    def _engine(self, key: tuple[str, int], policy: GuardPolicy) -> GuardEngine:
        with self._lock:
            if key not in self._engines and len(self._engines) >= _MAX_ENGINES:
                self._engines.clear()  # made-up names and old versions must not grow memory forever
            engine = self._engines.get(key)
            if engine is None:
                # the guard's work per request is bounded by its size, on the process's monotonic clock
                services = self._detectors(policy) if self._detectors is not None else ()
                engine = self._engines.setdefault(
                    key, GuardEngine(policy, service_detectors=services, clock=time.perf_counter)
                )
            return engine

    def _production_version(self, name: str) -> int | None:
        if self._registry is None:
            return None
        # A stale label beats an outage; with nothing cached, configuration serves meanwhile (a
        # guard must never fail open, and the configured/default policy still guards).
        return self._labels.get(name, partial(self._read_label, name), on_failure=lambda _exc: None)

    def _read_label(self, name: str) -> int | None:
        assert self._registry is not None
        try:
            state = self._registry.get_label(name, PRODUCTION_LABEL)
        except Exception:
            logger.warning("guard policy registry unreachable; serving the cached or configured policy")
            raise
        return state.version if state else None

    def _load_version(self, name: str, version: int) -> GuardPolicyVersion | None:
        assert self._registry is not None
        try:
            return self._registry.get_version(name, version)
        except Exception:
            logger.warning("guard policy registry unreachable; serving the configured policy")
            return None
