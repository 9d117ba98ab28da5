"""The response cache on the ResponseCache table: the `ResponseCache` port.

The cache may only ever save a model call, never cost a request: a store failure on `get` is a
miss and on `put` is dropped (logged with the error code only, never the content).
DynamoDB deletes expired items lazily (up to days later) and moto never does, so `get` checks
`expires_at` itself.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from llmops.adapters.dynamodb.cache_items import cache_pk, entry_from_item, entry_item
from llmops.domain.response_cache import CacheEntry

__all__ = ["DynamoResponseCache"]

_log = logging.getLogger(__name__)


def _error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


class DynamoResponseCache:
    """`client` is a boto3 DynamoDB client; use a short read timeout, the cache is on the hot path."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def get(self, tenant_id: str, key: str, now: float) -> CacheEntry | None:
        try:
            # Eventually consistent: half the read cost, and a just-written entry missing for a
            # moment only means one more model call.
            item = self._client.get_item(TableName=self._table, Key={"pk": {"S": cache_pk(key)}}).get("Item")
        except (ClientError, BotoCoreError) as exc:
            _log.warning("response cache read failed; treating as a miss", extra={"error": _error_code(exc)})
            return None
        if item is None:
            return None
        entry = entry_from_item(item)
        if entry.tenant_id != tenant_id or entry.expired(now):
            return None
        return entry

    def put(self, entry: CacheEntry) -> bool:
        try:
            self._client.put_item(TableName=self._table, Item=entry_item(entry))
        except (ClientError, BotoCoreError) as exc:
            _log.warning("response cache write failed; dropped", extra={"error": _error_code(exc)})
            return False
        return True
