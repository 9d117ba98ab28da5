from typing import Any

import boto3
import pytest

from llmops.adapters.dynamodb.cache_store import DynamoResponseCache
from llmops.domain.chat import ChatRequest, Completion, FinishReason, Message, Role, Usage
from llmops.domain.response_cache import CacheEntry, cache_key

REQUEST = ChatRequest(model="chat-default", messages=(Message(Role.USER, "hello"),), temperature=0.0)


@pytest.fixture
def cache(dynamodb: Any, names: dict[str, str]) -> DynamoResponseCache:
    return DynamoResponseCache(dynamodb, names["ResponseCache"])


def _entry(tenant: str, now: float = 1000.0, ttl_s: int = 60) -> CacheEntry:
    completion = Completion("cached", FinishReason.STOP, Usage(5, 2))
    return CacheEntry.from_completion(
        cache_key(tenant, REQUEST, "nova-lite"), tenant, "nova-lite", completion, now, ttl_s
    )


def test_a_stored_answer_is_a_hit_for_the_same_tenant_only(cache: DynamoResponseCache) -> None:
    entry = _entry("acme")
    assert cache.put(entry)
    assert cache.get("acme", entry.key, now=1001.0) == entry
    assert cache.get("globex", cache_key("globex", REQUEST, "nova-lite"), now=1001.0) is None
    assert cache.get("globex", entry.key, now=1001.0) is None  # even given the key, never another tenant's


def test_expired_entries_are_misses_although_dynamodb_has_not_deleted_them(cache: DynamoResponseCache) -> None:
    entry = _entry("acme", now=1000.0, ttl_s=60)
    cache.put(entry)
    assert cache.get("acme", entry.key, now=1059.0) is not None
    assert cache.get("acme", entry.key, now=1060.0) is None


def test_a_store_outage_is_a_miss_and_a_dropped_write(names: dict[str, str], dynamodb: Any) -> None:
    broken = DynamoResponseCache(boto3.client("dynamodb", region_name="us-east-1"), "no-such-table")
    assert broken.get("acme", "k", now=1.0) is None
    assert broken.put(_entry("acme")) is False
