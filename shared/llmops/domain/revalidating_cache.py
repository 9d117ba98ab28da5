"""A keyed cache of configuration read from a store, refreshed ahead of its expiry after a response.

The gateway's routes, prompt labels and guard policy labels are read per container and cached for
the config TTL: a change takes effect within the TTL, and no busy container waits for the read:

- younger than `refresh_after_s` (3/4 of the TTL by default): served;
- from then until the TTL: served, and a refresh is deferred (`defer`, the gateway's
  after-response work: it runs once the response has been sent), at most one per key at a time;
- as old as the TTL, or nothing cached: loaded now, on the request. A container that serves a
  request in the last quarter of every TTL never gets here; an idle one does, once.

When a load fails the entry keeps serving what it had and counts as just checked, so the store is
tried again a TTL later (a stale table beats an outage); with nothing cached the error is the
caller's, or `on_failure` says what to serve (and cache) meanwhile. Without `defer` nothing is
refreshed ahead: an entry is loaded on the first request past its TTL.

Thread-safe; loads run outside the lock. Pure: the clock and the deferral are given.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["REFRESH_AHEAD_FRACTION", "Defer", "RevalidatingCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Runs its argument later (after the response), or at once.
Defer = Callable[[Callable[[], object]], None]
# The share of the TTL after which a request defers a refresh: late enough that a busy container
# reads its config about once per TTL, early enough that a request every few seconds keeps it fresh.
REFRESH_AHEAD_FRACTION = 0.75


@dataclass(slots=True)
class _Entry(Generic[V]):
    value: V
    checked_at: float  # the last load attempt, successful or not


class RevalidatingCache(Generic[K, V]):
    def __init__(
        self,
        ttl_s: float,
        *,
        defer: Defer | None = None,
        refresh_after_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 4096,
    ) -> None:
        self._ttl_s = ttl_s
        self._refresh_after_s = REFRESH_AHEAD_FRACTION * ttl_s if refresh_after_s is None else refresh_after_s
        self._defer = defer
        self._clock = clock
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: dict[K, _Entry[V]] = {}
        self._refreshing: set[K] = set()

    def get(self, key: K, load: Callable[[], V], on_failure: Callable[[Exception], V] | None = None) -> V:
        """The value of `key`, from the cache or from `load()` (see the module docstring)."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None:
            age = now - entry.checked_at
            if age < self._refresh_after_s:
                return entry.value
            if age < self._ttl_s:
                if self._defer is None:
                    return entry.value
                self._refresh_later(key, load)
                with self._lock:  # a `defer` that runs at once has refreshed it already
                    current = self._entries.get(key, entry)
                return current.value
        return self._load(key, load, entry, on_failure)

    def _refresh_later(self, key: K, load: Callable[[], V]) -> None:
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)
        assert self._defer is not None
        self._defer(lambda: self._refresh(key, load))

    def _refresh(self, key: K, load: Callable[[], V]) -> None:
        try:
            with self._lock:
                entry = self._entries.get(key)
            if entry is None or self._clock() - entry.checked_at >= self._refresh_after_s:  # not refreshed meanwhile
                self._load(key, load, entry, None)
        except Exception:  # noqa: S110 - nothing was cached to keep serving: the next request loads it
            pass
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def _load(
        self, key: K, load: Callable[[], V], entry: _Entry[V] | None, on_failure: Callable[[Exception], V] | None
    ) -> V:
        now = self._clock()
        try:
            value = load()
        except Exception as exc:
            if entry is not None:
                value = entry.value  # a stale value beats an outage; tried again a TTL later
            elif on_failure is not None:
                value = on_failure(exc)
            else:
                raise
        with self._lock:
            if key not in self._entries and len(self._entries) >= self._max_entries:
                self._entries.clear()  # made-up keys must not grow memory forever
            self._entries[key] = _Entry(value, now)
            self._refreshing.discard(key)  # a deferred refresh still pending finds it fresh and skips
        return value
