from llmops.adapters.dynamodb.cache_items import entry_from_item, entry_item
from llmops.domain.chat import FinishReason, Usage
from llmops.domain.response_cache import CacheEntry


def test_cache_entries_round_trip_with_a_ttl_attribute() -> None:
    entry = CacheEntry(
        key="ab" * 32,
        tenant_id="acme",
        target_id="nova-lite",
        text="cached answer",
        finish_reason=FinishReason.LENGTH,
        usage=Usage(12, 7),
        created_at=1_800_000_000.125,
        expires_at=1_800_003_600,
        raw_model="amazon.nova-lite-v1:0",
    )
    item = entry_item(entry)
    assert item["pk"] == {"S": "cache#" + "ab" * 32}
    assert item["expires_at"] == {"N": "1800003600"}
    assert entry_from_item(item) == entry


def test_raw_model_is_optional() -> None:
    entry = CacheEntry("k", "acme", "t", "x", FinishReason.STOP, Usage(1, 1), 1.0, 2)
    assert "raw_model" not in entry_item(entry)
    assert entry_from_item(entry_item(entry)) == entry
