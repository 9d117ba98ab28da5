from typing import Any

import pytest

from llmops.adapters.dynamodb.feedback_items import feedback_item
from llmops.adapters.dynamodb.feedback_store import DynamoFeedbackStore
from llmops.domain.feedback import (
    MAX_USERS_PER_KEY_PER_REQUEST,
    AuditSummary,
    Feedback,
    FeedbackUserLimitError,
    RequestNotFoundError,
    parse_score,
    submit_feedback,
)
from llmops.domain.tenancy import TenantContext

ACME = TenantContext(tenant_id="acme", key_id="acmekey1")
GLOBEX = TenantContext(tenant_id="globex", key_id="globkey1")


class Audit:
    records = {
        "req-a1": AuditSummary("req-a1", "acme", "nova-lite", "chat-default", "support@1"),
        "req-a2": AuditSummary("req-a2", "acme", "llama3-candidate", "chat-default", "support@2"),
        "req-g1": AuditSummary("req-g1", "globex", "nova-lite", "chat-default", None),
    }

    def find(self, request_id: str) -> AuditSummary | None:
        return self.records.get(request_id)


@pytest.fixture
def store(dynamodb: Any, names: dict[str, str]) -> DynamoFeedbackStore:
    return DynamoFeedbackStore(dynamodb, names["Feedback"])


def _rate(store: DynamoFeedbackStore, tenant: TenantContext, body: dict[str, Any], now: float = 1.0) -> Feedback:
    return submit_feedback(body, tenant, Audit(), store, lambda text: "[redacted]", now)


def test_later_ratings_replace_earlier_ones_per_user(store: DynamoFeedbackStore) -> None:
    _rate(store, ACME, {"request_id": "req-a1", "score": "down", "user": "u1", "comment": "bad"})
    _rate(store, ACME, {"request_id": "req-a1", "score": 5, "user": "u1", "label": "good"}, now=2.0)
    _rate(store, ACME, {"request_id": "req-a1", "score": "down", "user": "u2", "comment": "my email is a@b.c"})
    stored = {f.user: f for f in store.for_request("acme", "req-a1")}
    assert set(stored) == {"u1", "u2"}
    assert (stored["u1"].score.raw, stored["u1"].comment, stored["u1"].created_at) == ("5", None, 2.0)
    assert stored["u2"].comment == "[redacted]"
    assert stored["u2"].prompt_version == "support@1"


def test_only_the_requesting_tenant_can_rate_or_read(store: DynamoFeedbackStore) -> None:
    with pytest.raises(RequestNotFoundError):
        _rate(store, GLOBEX, {"request_id": "req-a1", "score": "up"})
    with pytest.raises(RequestNotFoundError):
        _rate(store, ACME, {"request_id": "req-unknown", "score": "up"})
    _rate(store, GLOBEX, {"request_id": "req-g1", "score": "up"})
    assert store.for_request("acme", "req-g1") == []
    assert store.for_request("acme", "req-a1") == []


def test_the_store_refuses_to_overwrite_another_tenants_item(store: DynamoFeedbackStore) -> None:
    mine = _rate(store, ACME, {"request_id": "req-a1", "score": "up", "user": "u1"})
    forged = Feedback("req-a1", "globex", "u1", parse_score("down"), 2.0, key_id=ACME.key_id)
    assert forged.rater == mine.rater  # the very same row
    with pytest.raises(RequestNotFoundError):
        store.put(forged)
    assert store.for_request("acme", "req-a1") == [mine]


def test_the_store_refuses_to_overwrite_another_keys_row_even_if_the_rater_names_collide(
    store: DynamoFeedbackStore,
) -> None:
    mine = _rate(store, ACME, {"request_id": "req-a1", "score": 5, "user": "u1"})
    # A key id that spells another key's rater: the condition on the stored key still refuses it.
    forged = Feedback("req-a1", "acme", mine.rater, parse_score(1), 2.0, key_id=mine.rater)
    assert forged.rater == mine.rater
    with pytest.raises(RequestNotFoundError):
        store.put(forged)
    assert store.for_request("acme", "req-a1") == [mine]


def test_a_user_naming_another_key_gets_its_own_row_and_leaves_that_keys_rating_alone(
    store: DynamoFeedbackStore,
) -> None:
    other_key = TenantContext(tenant_id="acme", key_id="acmekey2")
    theirs = _rate(store, other_key, {"request_id": "req-a1", "score": 5, "label": "good"})
    _rate(store, ACME, {"request_id": "req-a1", "score": 1, "label": "unsafe", "user": other_key.key_id}, now=2.0)
    _rate(store, ACME, {"request_id": "req-a1", "score": 1, "label": "unsafe", "user": "acmekey2/x"}, now=3.0)
    stored = {f.rater: f for f in store.for_request("acme", "req-a1")}
    assert stored["acmekey2"] == theirs
    assert set(stored) == {"acmekey2", "acmekey1/acmekey2", "acmekey1/acmekey2/x"}
    assert {f.key_id for f in stored.values()} == {"acmekey1", "acmekey2"}


def test_one_key_rates_one_request_as_a_bounded_number_of_users(store: DynamoFeedbackStore) -> None:
    for n in range(1, MAX_USERS_PER_KEY_PER_REQUEST + 1):
        _rate(store, ACME, {"request_id": "req-a1", "score": "down", "user": f"sock{n}"})
    with pytest.raises(FeedbackUserLimitError) as refused:
        _rate(store, ACME, {"request_id": "req-a1", "score": "down", "user": "sock99"})
    assert (refused.value.status, refused.value.code, refused.value.param) == (400, "too_many_feedback_users", "user")
    _rate(store, ACME, {"request_id": "req-a1", "score": "up", "user": "sock1"})  # a user may change their mind
    assert len(store.for_request("acme", "req-a1")) == MAX_USERS_PER_KEY_PER_REQUEST


def test_ratings_stored_before_keys_were_bound_are_read_and_never_collide(
    store: DynamoFeedbackStore, dynamodb: Any, names: dict[str, str]
) -> None:
    legacy = Feedback("req-a1", "acme", "acmekey1", parse_score("down"), 1.0)
    dynamodb.put_item(TableName=names["Feedback"], Item=feedback_item(legacy))
    assert dynamodb.get_item(
        TableName=names["Feedback"], Key={"pk": {"S": "req#req-a1"}, "sk": {"S": "user#acmekey1"}}
    ).get("Item")
    mine = _rate(store, ACME, {"request_id": "req-a1", "score": "up"}, now=2.0)
    assert sorted(store.for_request("acme", "req-a1"), key=lambda f: f.created_at) == [legacy, mine]


def test_rates_per_target_and_prompt_version(store: DynamoFeedbackStore) -> None:
    _rate(store, ACME, {"request_id": "req-a1", "score": "up", "user": "u1"}, now=10.0)
    _rate(store, ACME, {"request_id": "req-a1", "score": "down", "user": "u2", "label": "hallucination"}, now=20.0)
    _rate(store, ACME, {"request_id": "req-a2", "score": 1, "user": "u1", "label": "unsafe"}, now=30.0)
    _rate(store, GLOBEX, {"request_id": "req-g1", "score": "up"}, now=40.0)

    nova = store.rates(target_id="nova-lite")
    assert (nova.count, nova.negative) == (3, 1)
    candidate = store.rates(target_id="llama3-candidate")
    assert (candidate.count, candidate.negative_rate) == (1, 1.0)
    assert store.rates(prompt_version="support@1").to_dict()["labels"] == {"hallucination": 1}
    assert store.rates(tenant_id="acme", since=15.0).count == 2
    assert store.rates().count == 4
