"""Pure mapping between response cache entries and ResponseCache table items (low-level JSON).

`pk = cache#<sha256>`; the hash already covers the tenant, and `tenant_id` is stored as well so a
read can check it. `expires_at` is the table's TTL attribute (epoch seconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from llmops.domain.chat import FinishReason, Usage
from llmops.domain.response_cache import CacheEntry

__all__ = ["CACHE_PK_PREFIX", "cache_pk", "entry_from_item", "entry_item"]

CACHE_PK_PREFIX = "cache#"

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]


def cache_pk(key: str) -> str:
    return f"{CACHE_PK_PREFIX}{key}"


def entry_item(entry: CacheEntry) -> Item:
    item: Item = {
        "pk": {"S": cache_pk(entry.key)},
        "tenant_id": {"S": entry.tenant_id},
        "target_id": {"S": entry.target_id},
        "text": {"S": entry.text},
        "finish_reason": {"S": entry.finish_reason.value},
        "input_tokens": {"N": str(entry.usage.input_tokens)},
        "output_tokens": {"N": str(entry.usage.output_tokens)},
        "created_at": {"N": str(Decimal(repr(entry.created_at)))},
        "expires_at": {"N": str(entry.expires_at)},
    }
    if entry.raw_model is not None:
        item["raw_model"] = {"S": entry.raw_model}
    return item


def entry_from_item(item: Mapping[str, AttributeValue]) -> CacheEntry:
    return CacheEntry(
        key=item["pk"]["S"].removeprefix(CACHE_PK_PREFIX),
        tenant_id=item["tenant_id"]["S"],
        target_id=item.get("target_id", {}).get("S", ""),
        text=item["text"]["S"],
        finish_reason=FinishReason(item["finish_reason"]["S"]),
        usage=Usage(int(item["input_tokens"]["N"]), int(item["output_tokens"]["N"])),
        created_at=float(item["created_at"]["N"]),
        expires_at=int(item["expires_at"]["N"]),
        raw_model=item["raw_model"]["S"] if "raw_model" in item else None,
    )
