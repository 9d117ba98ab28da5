from typing import Any

import pytest

from llmops.domain.errors import BadRequestError
from llmops.domain.feedback import (
    AuditSummary,
    Feedback,
    FeedbackLabel,
    RequestNotFoundError,
    ScoreKind,
    aggregate,
    parse_score,
    submit_feedback,
)
from llmops.domain.tenancy import TenantContext

ACME = TenantContext(tenant_id="acme", key_id="abcd1234")
GLOBEX = TenantContext(tenant_id="globex", key_id="zzzz9999")


class FakeAudit:
    def __init__(self, *summaries: AuditSummary) -> None:
        self.records = {s.request_id: s for s in summaries}

    def find(self, request_id: str) -> AuditSummary | None:
        return self.records.get(request_id)


class FakeStore:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Feedback] = {}

    def put(self, feedback: Feedback) -> None:
        self.items[(feedback.request_id, feedback.user)] = feedback


AUDIT = FakeAudit(AuditSummary("req-1", "acme", "nova-lite", "chat-default", "support@3"))


def _submit(body: Any, tenant: TenantContext = ACME, store: FakeStore | None = None) -> Feedback:
    return submit_feedback(
        body, tenant, AUDIT, store or FakeStore(), lambda text: text.replace("555-0100", "<PHONE>"), 5.0
    )


@pytest.mark.parametrize(
    ("raw", "kind", "value", "negative"),
    [
        ("up", ScoreKind.THUMBS, 1.0, False),
        ("DOWN", ScoreKind.THUMBS, 0.0, True),
        ("thumbs_up", ScoreKind.THUMBS, 1.0, False),
        (True, ScoreKind.THUMBS, 1.0, False),
        (False, ScoreKind.THUMBS, 0.0, True),
        (1, ScoreKind.SCALE_5, 0.0, True),
        (2, ScoreKind.SCALE_5, 0.25, True),
        (3, ScoreKind.SCALE_5, 0.5, False),
        (5.0, ScoreKind.SCALE_5, 1.0, False),
    ],
)
def test_scores_normalize_to_unit_interval(raw: Any, kind: ScoreKind, value: float, negative: bool) -> None:
    score = parse_score(raw)
    assert (score.kind, score.value, score.negative) == (kind, value, negative)


@pytest.mark.parametrize("raw", [0, 6, -1, 2.5, "meh", None, [1]])
def test_bad_scores_are_400s(raw: Any) -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_score(raw)
    assert caught.value.param == "score"


def test_feedback_is_joined_to_the_audit_record_and_redacted() -> None:
    store = FakeStore()
    feedback = _submit(
        {"request_id": "req-1", "score": 2, "label": "hallucination", "comment": "call me at 555-0100"}, store=store
    )
    assert feedback.user == "abcd1234"  # no `user` given: the key prefix
    assert (feedback.target_id, feedback.alias, feedback.prompt_version) == ("nova-lite", "chat-default", "support@3")
    assert feedback.comment == "call me at <PHONE>"
    assert feedback.label is FeedbackLabel.HALLUCINATION
    assert store.items[("req-1", "abcd1234")] is feedback
    body = feedback.to_public_dict()
    assert body["negative"] is True and body["score"] == "2" and body["comment_recorded"] is True


def test_later_ratings_by_the_same_user_replace_earlier_ones() -> None:
    store = FakeStore()
    _submit({"request_id": "req-1", "score": "down", "user": "u1"}, store=store)
    _submit({"request_id": "req-1", "score": "up", "user": "u1"}, store=store)
    _submit({"request_id": "req-1", "score": "up", "user": "u2"}, store=store)
    assert len(store.items) == 2
    assert store.items[("req-1", "u1")].score.raw == "up"


def test_another_tenants_request_looks_exactly_like_an_unknown_one() -> None:
    with pytest.raises(RequestNotFoundError) as other:
        _submit({"request_id": "req-1", "score": "up"}, tenant=GLOBEX)
    with pytest.raises(RequestNotFoundError) as unknown:
        _submit({"request_id": "req-2", "score": "up"}, tenant=GLOBEX)
    assert other.value.status == unknown.value.status == 404
    assert other.value.code == "request_not_found"
    assert other.value.message.replace("req-1", "X") == unknown.value.message.replace("req-2", "X")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"score": "up"}, "request_id"),
        ({"request_id": "", "score": "up"}, "request_id"),
        ({"request_id": "req-1"}, "score"),
        ({"request_id": "req-1", "score": "up", "label": "rude"}, "label"),
        ({"request_id": "req-1", "score": "up", "comment": 5}, "comment"),
        ({"request_id": "req-1", "score": "up", "comment": "x" * 2001}, "comment"),
        ({"request_id": "req-1", "score": "up", "rating": 1}, "rating"),
    ],
)
def test_invalid_bodies_are_400s_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        _submit(body)
    assert caught.value.param == param


def test_aggregate_rates() -> None:
    store = FakeStore()
    _submit({"request_id": "req-1", "score": "up", "user": "a", "label": "good"}, store=store)
    _submit({"request_id": "req-1", "score": 1, "user": "b", "label": "unsafe"}, store=store)
    _submit({"request_id": "req-1", "score": 4, "user": "c"}, store=store)
    rates = aggregate(store.items.values())
    assert (rates.count, rates.negative) == (3, 1)
    assert rates.negative_rate == pytest.approx(1 / 3)
    assert rates.mean_score == pytest.approx((1.0 + 0.0 + 0.75) / 3)
    assert rates.to_dict()["labels"] == {"good": 1, "unsafe": 1}
    assert aggregate([]).negative_rate == 0.0
