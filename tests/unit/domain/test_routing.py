from __future__ import annotations

import json

import pytest

from llmops.adapters.dynamodb.route_source import DEFAULT_ROUTES_FILE
from llmops.domain.chat import Usage
from llmops.domain.errors import BadRequestError, ModelNotFoundError
from llmops.domain.routing import (
    CircuitBreaker,
    Provider,
    Route,
    RouteTable,
    Target,
    WeightedTarget,
    attempt_order,
    check_output_budget,
    cost_usd,
    pick_weighted,
)


def _route(*weights: tuple[str, float], fallbacks: tuple[str, ...] = ()) -> Route:
    return Route("alias", tuple(WeightedTarget(t, w) for t, w in weights), fallbacks)


def test_bundled_route_config_is_valid() -> None:
    table = RouteTable.from_document(json.loads(DEFAULT_ROUTES_FILE.read_text()))
    assert {"chat-default", "llama3-8b", "mistral-7b"} <= set(table.routes)
    providers = {table.targets[t].provider for r in table.routes.values() for t in r.target_ids()}
    assert providers == {Provider.BEDROCK, Provider.SAGEMAKER}


def test_weighted_pick_follows_weights() -> None:
    primaries = (WeightedTarget("a", 95), WeightedTarget("b", 5))
    picks = [pick_weighted(primaries, i / 1000) for i in range(1000)]
    assert picks.count("b") == 50
    assert pick_weighted(primaries, 0.0) == "a"
    assert pick_weighted(primaries, 0.9999) == "b"


def test_zero_weight_target_is_never_picked_first() -> None:
    primaries = (WeightedTarget("a", 100), WeightedTarget("canary", 0))
    assert {pick_weighted(primaries, i / 100) for i in range(100)} == {"a"}


def test_attempt_order_puts_pick_first_then_fallbacks_without_duplicates() -> None:
    route = _route(("a", 50), ("b", 50), fallbacks=("c", "a"))
    assert attempt_order(route, 0.75, lambda _: False) == ["b", "a", "c"]
    assert attempt_order(route, 0.1, lambda _: False) == ["a", "b", "c"]


def test_open_breaker_moves_target_last_but_keeps_it() -> None:
    route = _route(("a", 100), fallbacks=("b",))
    assert attempt_order(route, 0.0, lambda t: t == "a") == ["b", "a"]


def test_unknown_or_disallowed_alias_is_model_not_found() -> None:
    table = RouteTable.from_document(json.loads(DEFAULT_ROUTES_FILE.read_text()))
    with pytest.raises(ModelNotFoundError) as unknown:
        table.route("gpt-9")
    with pytest.raises(ModelNotFoundError) as hidden:
        table.route("llama3-8b", allowed=("chat-default",))
    assert unknown.value.status == hidden.value.status == 404
    assert table.aliases(("chat-default",)) == ["chat-default"]


def test_route_table_rejects_dangling_targets() -> None:
    with pytest.raises(ValueError, match="unknown targets"):
        RouteTable.from_document({"targets": {}, "routes": {"x": {"targets": [{"target": "nope"}]}}})


def test_route_rejects_all_zero_weights() -> None:
    with pytest.raises(ValueError, match="weights"):
        _route(("a", 0))


def test_target_validation() -> None:
    with pytest.raises(ValueError, match="model_id"):
        Target("t", Provider.BEDROCK, 0, 0, 100)
    with pytest.raises(ValueError, match="endpoint_name"):
        Target("t", Provider.SAGEMAKER, 0, 0, 100)


def test_cost_is_priced_per_thousand_tokens() -> None:
    target = Target("t", Provider.BEDROCK, 0.001, 0.002, 1000, model_id="m")
    assert cost_usd(target, Usage(1000, 500)) == pytest.approx(0.002)


def test_max_tokens_above_model_limit_is_a_400() -> None:
    target = Target("t", Provider.BEDROCK, 0, 0, 8192, model_id="m", max_output_tokens=4096)
    check_output_budget(target, 4096)
    with pytest.raises(BadRequestError) as err:
        check_output_budget(target, 4097)
    assert err.value.param == "max_tokens"


def test_breaker_opens_after_threshold_and_half_opens_after_cooldown() -> None:
    breaker = CircuitBreaker(threshold=3, cooldown_s=10)
    for _ in range(2):
        breaker.record_failure("a", now=0)
    assert not breaker.is_open("a", now=0)
    breaker.record_failure("a", now=1)
    assert breaker.is_open("a", now=5)
    assert not breaker.is_open("a", now=11)
    breaker.record_success("a")
    assert not breaker.is_open("a", now=5)
