from typing import Any

import pytest

from llmops.domain.errors import BadRequestError
from llmops.domain.feedback import (
    MAX_USERS_PER_KEY_PER_REQUEST,
    AuditSummary,
    Feedback,
    FeedbackLabel,
    FeedbackUserLimitError,
    RequestNotFoundError,
    ScoreKind,
    aggregate,
    parse_score,
    submit_feedback,
    trusted_votes,
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
    """Keyed like the Feedback table: one row per request and rater."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Feedback] = {}

    def put(self, feedback: Feedback) -> None:
        self.items[(feedback.request_id, feedback.rater)] = feedback

    def for_request(self, tenant_id: str, request_id: str) -> list[Feedback]:
        return [f for (rid, _), f in self.items.items() if rid == request_id and f.tenant_id == tenant_id]


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
    assert store.items[("req-1", "abcd1234/u1")].score.raw == "up"


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


OTHER_KEY = TenantContext(tenant_id="acme", key_id="efgh5678")


def test_a_rating_belongs_to_the_authenticated_key_and_user_only_narrows_it() -> None:
    store = FakeStore()
    theirs = _submit({"request_id": "req-1", "score": 5, "label": "good"}, tenant=OTHER_KEY, store=store)
    # Naming the other key as `user` (or spelling its rater id) does not reach its row.
    for user in (OTHER_KEY.key_id, f"{OTHER_KEY.key_id}/x"):
        mine = _submit({"request_id": "req-1", "score": 1, "label": "unsafe", "user": user}, store=store)
        assert mine.key_id == ACME.key_id and mine.rater == f"{ACME.key_id}/{user}"
    assert store.items[("req-1", OTHER_KEY.key_id)] is theirs
    assert theirs.rater == OTHER_KEY.key_id and theirs.to_public_dict()["rater"] == OTHER_KEY.key_id


def test_a_key_may_rate_a_request_as_a_bounded_number_of_users() -> None:
    store = FakeStore()
    for n in range(MAX_USERS_PER_KEY_PER_REQUEST):
        _submit({"request_id": "req-1", "score": "down", "user": f"sock{n}"}, store=store)
    with pytest.raises(FeedbackUserLimitError) as refused:
        _submit({"request_id": "req-1", "score": "down", "user": "sock-extra"}, store=store)
    assert (refused.value.status, refused.value.error_type, refused.value.code) == (
        400,
        "invalid_request_error",
        "too_many_feedback_users",
    )
    assert refused.value.param == "user"
    # Existing raters may still change their rating, and other keys are not limited by this one.
    assert _submit({"request_id": "req-1", "score": "up", "user": "sock0"}, store=store).score.raw == "up"
    _submit({"request_id": "req-1", "score": "up"}, tenant=OTHER_KEY, store=store)
    assert len(store.items) == MAX_USERS_PER_KEY_PER_REQUEST + 1


def test_only_a_keys_first_rating_of_a_request_opens_a_vote() -> None:
    store = FakeStore()
    assert _submit({"request_id": "req-1", "score": "down"}, store=store).opens_vote
    assert not _submit({"request_id": "req-1", "score": "down"}, store=store).opens_vote
    assert not _submit({"request_id": "req-1", "score": "down", "user": "u2"}, store=store).opens_vote
    assert _submit({"request_id": "req-1", "score": "down"}, tenant=OTHER_KEY, store=store).opens_vote


def _rating(request_id: str, key_id: str, user: str, score: Any, at: float, label: str | None = None) -> Feedback:
    return Feedback(
        request_id, "acme", user, parse_score(score), at, FeedbackLabel(label) if label else None, key_id=key_id
    )


def test_trusted_votes_count_one_vote_per_key_per_request() -> None:
    puppets = [_rating("req-1", "abcd1234", f"sock{n}", "down", float(n), "unsafe") for n in range(1, 21)]
    honest = [_rating("req-1", "efgh5678", "efgh5678", 5, 1.0), _rating("req-2", "abcd1234", "abcd1234", "up", 1.0)]
    votes = trusted_votes([*puppets, *honest])
    assert len(votes) == 3
    rates = aggregate(votes)
    assert (rates.count, rates.negative) == (3, 1)
    assert aggregate([*puppets, *honest]).negative == 20  # what the rows alone would have said


def test_a_keys_vote_follows_the_majority_of_its_raters_and_is_a_real_rating() -> None:
    ratings = [
        _rating("req-1", "k", "a", 1, 1.0, "unsafe"),
        _rating("req-1", "k", "b", 2, 3.0, "hallucination"),
        _rating("req-1", "k", "c", "up", 4.0, "good"),
    ]
    (vote,) = trusted_votes(ratings)
    assert vote is ratings[1]  # negative side wins; its newest rating speaks for the key
    (tie,) = trusted_votes(ratings[1:])
    assert tie is ratings[2]  # a tie is not negative


def test_ratings_stored_before_keys_were_bound_count_as_one_vote_per_request() -> None:
    legacy = [_rating("req-1", "", f"user{n}", "down", float(n)) for n in range(5)]
    (vote,) = trusted_votes(legacy)
    assert vote.score.negative and vote.key_id == "" and vote.rater == "user4"
