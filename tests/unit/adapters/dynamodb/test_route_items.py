from __future__ import annotations

import json

from llmops.adapters.dynamodb.route_items import document_from_items, table_items
from llmops.adapters.dynamodb.route_source import DEFAULT_ROUTES_FILE
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
