from llmops.adapters.dynamodb.quota_items import (
    RESERVATION_SHARDS,
    cancellation_codes,
    expired_reservations_query,
    reservation_from_item,
    reservation_record,
    reservation_record_key,
    reservation_shard,
    reserve_transaction,
    settle_sentinel_key,
    settle_transaction,
    sweep_transaction,
    used_by_key,
    window_read_request,
)
from llmops.domain.quotas import Demand, UsageEntry, WindowDelta, plan_charges, plan_windows
from llmops.domain.tenancy import Limits, TenantContext

NOW = 1_800_000_030.0
CTX = TenantContext(
    "acme",
    "abcd1234",
    limits=Limits(requests_per_minute=5, tokens_per_minute=100),
    tenant_limits=Limits(tokens_per_day=1000),
)


def test_reserve_is_one_conditional_add_per_window() -> None:
    charges = plan_charges(CTX, Demand(tokens=40, cost_nanos=0), NOW)
    items = reserve_transaction("quotas", charges)
    assert len(items) == 3
    rpm = items[0]["Update"]
    assert rpm["TableName"] == "quotas"
    assert rpm["Key"] == {"pk": {"S": charges[0].window.item_key}}
    assert rpm["ConditionExpression"] == "attribute_not_exists(#used) OR #used <= :room"
    assert rpm["ExpressionAttributeValues"][":n"] == {"N": "1"}
    assert rpm["ExpressionAttributeValues"][":room"] == {"N": "4"}
    assert rpm["ExpressionAttributeValues"][":exp"] == {"N": str(charges[0].window.expires_at)}
    tpm = items[1]["Update"]["ExpressionAttributeValues"]
    assert (tpm[":n"], tpm[":room"]) == ({"N": "40"}, {"N": "60"})


def test_settle_adjusts_without_conditions_adds_usage_and_a_sentinel_last() -> None:
    windows = plan_windows(CTX, NOW)
    usage = UsageEntry("acme", "2027-01-15", "chat", 10, 5, 1234)
    txn = settle_transaction(
        "quotas", "usage", request_id="r1", deltas=[WindowDelta(windows[1], -25)], usage=usage, now=NOW
    )
    adjust, usage_update, record_delete, sentinel = txn.items
    assert "ConditionExpression" not in adjust["Update"]
    assert adjust["Update"]["ExpressionAttributeValues"][":d"] == {"N": "-25"}
    assert usage_update["Update"]["TableName"] == "usage"
    assert usage_update["Update"]["Key"] == {"pk": {"S": "tenant#acme"}, "sk": {"S": "2027-01-15#chat"}}
    assert usage_update["Update"]["ExpressionAttributeValues"][":c"] == {"N": "1234"}
    assert sentinel["Put"]["Item"]["pk"] == {"S": settle_sentinel_key("r1")}
    assert sentinel["Put"]["ConditionExpression"] == "attribute_not_exists(pk)"
    assert record_delete["Delete"]["Key"] == reservation_record_key("r1")  # the sweeper has nothing left to do
    assert "ConditionExpression" not in record_delete["Delete"]
    assert txn.sentinel_index == 3


def test_window_reads_are_one_consistent_batch() -> None:
    windows = plan_windows(CTX, NOW)
    request = window_read_request("quotas", windows)
    keys = request["RequestItems"]["quotas"]["Keys"]
    assert [k["pk"]["S"] for k in keys] == [w.item_key for w in windows]
    assert request["RequestItems"]["quotas"]["ConsistentRead"] is True
    assert used_by_key([{"pk": {"S": "a"}, "used": {"N": "7"}}, {"pk": {"S": "b"}}]) == {"a": 7, "b": 0}


def test_cancellation_codes_come_from_reasons_or_the_message() -> None:
    with_reasons = {"CancellationReasons": [{"Code": "None"}, {"Code": "ConditionalCheckFailed"}]}
    assert cancellation_codes(with_reasons) == ["None", "ConditionalCheckFailed"]
    message_only = {"Error": {"Message": "Transaction cancelled ... reasons [None, TransactionConflict]"}}
    assert cancellation_codes(message_only) == ["None", "TransactionConflict"]
    assert cancellation_codes({"Error": {"Message": "boom"}}) == []


def test_the_reservation_record_rides_last_in_the_reserve_transaction() -> None:
    charges = plan_charges(CTX, Demand(tokens=40, cost_nanos=0), NOW)
    record = reservation_record("r1", "acme", "abcd1234", charges, release_at=1_800_000_200)
    assert record is not None
    items = reserve_transaction("quotas", charges, record)
    assert len(items) == len(charges) + 1
    put = items[-1]["Put"]
    assert put["Item"]["pk"] == reservation_record_key("r1")["pk"]
    assert "ConditionExpression" not in put  # a window's ConditionalCheckFailed keeps its index
    assert put["Item"]["sweep_shard"] == {"S": reservation_shard("r1")}
    assert int(put["Item"]["expires_at"]["N"]) >= max(c.window.expires_at for c in charges)
    decoded = reservation_from_item(put["Item"])
    assert (decoded.request_id, decoded.tenant_id, decoded.release_at) == ("r1", "acme", 1_800_000_200)
    assert decoded.charges == charges


def test_nothing_charged_means_no_record() -> None:
    charges = plan_charges(CTX, Demand(tokens=0, cost_nanos=0, requests=0), NOW)
    assert reservation_record("r1", "acme", "abcd1234", charges, release_at=1) is None


def test_shards_spread_request_ids() -> None:
    shards = {reservation_shard(f"req-{i}") for i in range(500)}
    assert len(shards) == RESERVATION_SHARDS
    assert reservation_shard("req-1") == reservation_shard("req-1")


def test_the_sweep_deletes_only_a_due_record_gives_back_and_claims_the_sentinel() -> None:
    charges = plan_charges(CTX, Demand(tokens=40, cost_nanos=0), NOW)
    record = reservation_record("r1", "acme", "abcd1234", charges, release_at=1_800_000_200)
    assert record is not None
    txn = sweep_transaction("quotas", reservation_from_item(record), now=1_800_000_300)
    delete = txn.items[txn.record_index]["Delete"]
    assert delete["ConditionExpression"] == "attribute_exists(pk) AND release_at <= :now"
    released = [i["Update"]["ExpressionAttributeValues"][":d"] for i in txn.items[1:-1]]
    assert released == [{"N": str(-c.amount)} for c in charges]
    sentinel = txn.items[txn.sentinel_index]["Put"]
    assert sentinel["Item"]["pk"] == {"S": settle_sentinel_key("r1")}
    assert sentinel["ConditionExpression"] == "attribute_not_exists(pk)"
    query = expired_reservations_query("quotas", 3, 1_800_000_300, limit=50)
    assert query["IndexName"] == "by-release"
    assert query["ExpressionAttributeValues"] == {":shard": {"S": "rsv#03"}, ":now": {"N": "1800000300"}}
