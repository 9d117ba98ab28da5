"""Route table sources: the DynamoDB Routes table (deployed and local) or the bundled file.

The gateway caches the table per container for `config_ttl_s` so a canary weight change or a
route edit takes effect within that TTL without a redeploy, at about one Scan per TTL per container.
In the TTL's last quarter a request defers the Scan until after its response (`defer`,
`llmops.domain.revalidating_cache`); only a cold or idle container scans on a request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmops.adapters.dynamodb.route_items import document_from_items
from llmops.domain.revalidating_cache import Defer, RevalidatingCache
from llmops.domain.routing import RouteTable

__all__ = ["DEFAULT_ROUTES_FILE", "DynamoRouteSource", "FileRouteSource", "load_route_document"]

DEFAULT_ROUTES_FILE = Path(__file__).resolve().parents[2] / "config" / "routes.json"


def load_route_document(path: Path = DEFAULT_ROUTES_FILE) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    RouteTable.from_document(doc)  # validate early: a bad file should fail where it is loaded
    return doc


class FileRouteSource:
    def __init__(self, path: Path = DEFAULT_ROUTES_FILE) -> None:
        self._table = RouteTable.from_document(load_route_document(path))

    def current(self) -> RouteTable:
        return self._table


class DynamoRouteSource:
    def __init__(
        self,
        client_factory: Callable[[], Any],
        table_name: str,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        defer: Defer | None = None,
    ) -> None:
        self._client_factory = client_factory
        self._table_name = table_name
        # A stale table beats an outage: a failed read keeps serving what we had, retried a TTL later.
        self._cache: RevalidatingCache[None, RouteTable] = RevalidatingCache(
            ttl_s, defer=defer, clock=clock, max_entries=1
        )

    def current(self) -> RouteTable:
        return self._cache.get(None, self._load)

    def _load(self) -> RouteTable:
        client = self._client_factory()
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self._table_name, "ConsistentRead": True}
        while True:
            page = client.scan(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        if not items:
            raise LookupError(f"route table {self._table_name} is empty; seed it from routes.json")
        return RouteTable.from_document(document_from_items(items))
