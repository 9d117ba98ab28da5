from __future__ import annotations

import json
from typing import Any

from llmops.adapters.dynamodb.route_items import document_from_items, table_items
from llmops.adapters.dynamodb.route_source import DEFAULT_ROUTES_FILE, DynamoRouteSource
from llmops.domain.routing import RouteTable


def test_items_round_trip_to_an_equivalent_route_table() -> None:
    doc = json.loads(DEFAULT_ROUTES_FILE.read_text())
    original = RouteTable.from_document(doc)
    restored = RouteTable.from_document(document_from_items(table_items(doc)))
    assert restored.version == original.version
    assert restored.targets == original.targets
    for alias, route in original.routes.items():
        assert set(restored.routes[alias].primaries) == set(route.primaries)
        assert restored.routes[alias].fallbacks == route.fallbacks


def test_route_weights_are_a_native_map_for_step_functions_updates() -> None:
    items = table_items(json.loads(DEFAULT_ROUTES_FILE.read_text()))
    route = next(i for i in items if i["pk"]["S"] == "route" and i["sk"]["S"] == "llama3-8b")
    assert route["weights"]["M"]["sm-llama3-8b-candidate"] == {"N": "0.0"}


class _RoutesTable:
    """A DynamoDB client's `scan` over the bundled routes, counting reads."""

    def __init__(self) -> None:
        self.items = table_items(json.loads(DEFAULT_ROUTES_FILE.read_text()))
        self.scans = 0

    def scan(self, **_kwargs: Any) -> dict[str, Any]:
        self.scans += 1
        return {"Items": self.items}


def test_the_route_table_is_scanned_again_after_a_response_in_the_ttls_last_quarter() -> None:
    table, now, deferred = _RoutesTable(), [0.0], []
    source = DynamoRouteSource(lambda: table, "Routes", ttl_s=10, clock=lambda: now[0], defer=deferred.append)
    first = source.current()
    now[0] = 8.0
    assert source.current() is first and table.scans == 1 and len(deferred) == 1, "not scanned on the request"
    deferred.pop()()
    assert table.scans == 2 and source.current() is not first
    now[0] = 18.0  # a TTL after the last scan: scanned on the request
    source.current()
    assert table.scans == 3 and deferred == []
