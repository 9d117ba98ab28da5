"""RevalidatingCache, fake clock: served, refreshed ahead after a response in the TTL's last quarter, loaded at it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from llmops.domain.revalidating_cache import RevalidatingCache


class Store:
    def __init__(self) -> None:
        self.value = "v1"
        self.reads = 0
        self.down = False

    def read(self) -> str:
        self.reads += 1
        if self.down:
            raise ConnectionError("table unreachable")
        return self.value


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _cache(clock: Clock, deferred: list[Callable[[], object]] | None) -> RevalidatingCache[str, str]:
    return RevalidatingCache(10, defer=deferred.append if deferred is not None else None, clock=clock)


def _run(deferred: list[Callable[[], object]]) -> None:
    while deferred:
        deferred.pop(0)()


def test_nothing_cached_is_loaded_on_the_request_and_then_served_for_the_ttl() -> None:
    store, clock, deferred = Store(), Clock(), []
    cache = _cache(clock, deferred)
    assert cache.get("k", store.read) == "v1" and store.reads == 1
    clock.now += 7.4
    store.value = "v2"
    assert cache.get("k", store.read) == "v1" and store.reads == 1 and deferred == []


def test_in_the_ttls_last_quarter_an_entry_is_served_and_refreshed_once_after_the_response() -> None:
    store, clock, deferred = Store(), Clock(), []
    cache = _cache(clock, deferred)
    cache.get("k", store.read)
    store.value = "v2"
    clock.now += 7.5
    assert [cache.get("k", store.read) for _ in range(3)] == ["v1"] * 3
    assert store.reads == 1 and len(deferred) == 1, "one refresh per key, none on the request"
    _run(deferred)
    assert store.reads == 2
    assert cache.get("k", store.read) == "v2" and deferred == []


def test_at_the_ttl_an_entry_is_loaded_on_the_request_so_a_change_is_never_served_later() -> None:
    store, clock, deferred = Store(), Clock(), []
    cache = _cache(clock, deferred)
    cache.get("k", store.read)
    store.value = "v2"
    clock.now += 10
    assert cache.get("k", store.read) == "v2" and store.reads == 2 and deferred == []


def test_a_pending_refresh_is_dropped_once_a_request_has_loaded_the_entry() -> None:
    store, clock, deferred = Store(), Clock(), []
    cache = _cache(clock, deferred)
    cache.get("k", store.read)
    clock.now += 8
    cache.get("k", store.read)  # defers a refresh
    clock.now += 2  # never ran; now at the TTL
    store.value = "v2"
    assert cache.get("k", store.read) == "v2" and store.reads == 2
    _run(deferred)
    assert store.reads == 2, "the deferred refresh found the entry fresh"
    clock.now += 8
    assert cache.get("k", store.read) == "v2" and len(deferred) == 1, "refreshes are deferred again"


def test_a_failed_refresh_keeps_serving_the_stale_value_and_retries_a_ttl_later() -> None:
    store, clock, deferred = Store(), Clock(), []
    cache = _cache(clock, deferred)
    cache.get("k", store.read)
    store.down = True
    clock.now += 8
    cache.get("k", store.read)
    _run(deferred)  # fails: nothing escapes
    assert store.reads == 2
    clock.now += 7
    assert cache.get("k", store.read) == "v1" and deferred == [], "checked just now: fresh again"
    clock.now += 1
    cache.get("k", store.read)
    assert len(deferred) == 1


def test_with_nothing_cached_a_failure_is_the_callers_or_what_on_failure_serves() -> None:
    store, clock = Store(), Clock()
    store.down = True
    cache = _cache(clock, [])
    with pytest.raises(ConnectionError):
        cache.get("k", store.read)
    assert cache.get("k", store.read, on_failure=lambda _exc: "fallback") == "fallback"
    assert cache.get("k", store.read) == "fallback" and store.reads == 2, "the fallback is cached for the TTL"


def test_without_defer_an_expired_entry_is_loaded_on_the_request() -> None:
    store, clock = Store(), Clock()
    cache = _cache(clock, None)
    cache.get("k", store.read)
    store.value = "v2"
    clock.now += 10
    assert cache.get("k", store.read) == "v2" and store.reads == 2


def test_a_defer_that_runs_at_once_serves_the_refreshed_value() -> None:
    store, clock = Store(), Clock()
    cache: RevalidatingCache[str, str] = RevalidatingCache(10, defer=lambda work: work(), clock=clock)
    cache.get("k", store.read)
    store.value = "v2"
    clock.now += 8
    assert cache.get("k", store.read) == "v2"
