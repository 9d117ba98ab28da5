"""`GET /v1/models`: the aliases a key may use, each with its kind and the capabilities of its route."""

from __future__ import annotations

from collections.abc import Sequence

from llmops.application.openai_schema import ModelCard, ModelList
from llmops.domain.routing import RouteTable

__all__ = ["model_list"]


def model_list(table: RouteTable, allowed: Sequence[str] | None) -> ModelList:
    """Capabilities are those every target of the route has: a fallback that lacks one would be
    skipped for a request that needs it (`routing.capable_targets`), so only shared ones are promised."""
    cards = []
    for alias in table.aliases(allowed):
        route = table.routes[alias]
        targets = [table.targets[t] for t in route.target_ids()]
        shared = frozenset.intersection(*(t.capabilities for t in targets))
        cards.append(ModelCard(id=alias, kind=table.kind(route).value, capabilities=sorted(shared)))
    return ModelList(data=cards)
