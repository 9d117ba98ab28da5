from typing import Any

import pytest

from llmops.adapters.dynamodb.feedback_store import DynamoFeedbackStore
from llmops.domain.feedback import AuditSummary, Feedback, RequestNotFoundError, parse_score, submit_feedback
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
    forged = Feedback("req-a1", "globex", "u1", parse_score("down"), 2.0)
    with pytest.raises(RequestNotFoundError):
        store.put(forged)
    assert store.for_request("acme", "req-a1") == [mine]


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
