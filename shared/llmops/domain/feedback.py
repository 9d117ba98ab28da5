"""User feedback on a completion: `POST /v1/feedback {request_id, score, label?, comment?, user?}`.

Scores come in two shapes, both normalized to [0, 1] so rates compare across them:
- thumbs: "up" / "down" (or true / false)      -> 1.0 / 0.0
- a 1-5 rating (integer)                        -> (n - 1) / 4
`negative` is thumbs down or a rating of 1 or 2; it drives the negative-feedback rate that the
canary and retraining workflows gate on. Plain numbers always mean the 1-5 scale, so `1` is the
worst rating, never a thumbs up.

Only the tenant that made the request can rate it; a request of another tenant looks exactly like
an unknown one (404 `request_not_found`), so ids do not leak across tenants. Comments are redacted
by the guard engine before they are stored.

Who rated is the authenticated key, never the body: the rater is the key id from the authorizer,
and the optional `user` only narrows it (`<key_id>/<user>`), so no caller can overwrite another
key's rating by naming it. A later rating by the same rater replaces the earlier one. The gateway
cannot verify `user`, so one key may rate one request under at most
`MAX_USERS_PER_KEY_PER_REQUEST` raters (a further one is a 400), and what the retraining trigger
counts is `trusted_votes`: one vote per key per request, whatever its users said.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from llmops.domain.errors import BadRequestError, GatewayError
from llmops.domain.tenancy import TenantContext

__all__ = [
    "MAX_COMMENT_CHARS",
    "MAX_USERS_PER_KEY_PER_REQUEST",
    "REQUEST_NOT_FOUND",
    "AuditLookup",
    "AuditSummary",
    "Feedback",
    "FeedbackLabel",
    "FeedbackRates",
    "FeedbackStore",
    "FeedbackUserLimitError",
    "RequestNotFoundError",
    "Score",
    "ScoreKind",
    "aggregate",
    "parse_score",
    "rater_id",
    "submit_feedback",
    "trusted_votes",
]

MAX_COMMENT_CHARS = 2000
_MAX_ID_CHARS = 128
_MAX_USER_CHARS = 256
_BODY_FIELDS = frozenset({"request_id", "score", "label", "comment", "user"})
# Enough for a key that serves a handful of end users rating a shared answer; not enough to stuff
# the ballot. Either way a key has one vote in `trusted_votes`.
MAX_USERS_PER_KEY_PER_REQUEST = 5


# The same answer for "unknown" and "another tenant's", and the id is not echoed: it is the
# caller's string and may hold anything.
REQUEST_NOT_FOUND = "No request with this request_id was made with this tenant's keys."


class RequestNotFoundError(GatewayError):
    status = 404
    error_type = "invalid_request_error"
    code = "request_not_found"


class FeedbackUserLimitError(BadRequestError):
    code = "too_many_feedback_users"


def rater_id(key_id: str, user: str) -> str:
    """Who a rating belongs to: the authenticated key, narrowed by `user` (never widened: the key
    id always leads, so two keys can never name the same rater)."""
    return key_id if not user or user == key_id else f"{key_id}/{user}"


class FeedbackLabel(StrEnum):
    HALLUCINATION = "hallucination"
    UNSAFE = "unsafe"
    UNHELPFUL = "unhelpful"
    WRONG_FORMAT = "wrong_format"
    GOOD = "good"
    OTHER = "other"


class ScoreKind(StrEnum):
    THUMBS = "thumbs"
    SCALE_5 = "scale5"


@dataclass(frozen=True, slots=True)
class Score:
    """A user's rating, normalized so thumbs and 1-5 ratings aggregate together."""

    kind: ScoreKind
    raw: str  # "up" | "down" | "1".."5": what the user gave, for display and export
    value: float  # normalized to [0, 1]
    negative: bool


_THUMBS = {"up": True, "thumbs_up": True, "down": False, "thumbs_down": False}


def parse_score(raw: Any) -> Score:
    if isinstance(raw, bool):
        raw = "up" if raw else "down"
    if isinstance(raw, str) and raw.strip().lower() in _THUMBS:
        up = _THUMBS[raw.strip().lower()]
        return Score(ScoreKind.THUMBS, "up" if up else "down", 1.0 if up else 0.0, negative=not up)
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, int) and 1 <= raw <= 5:
        return Score(ScoreKind.SCALE_5, str(raw), (raw - 1) / 4, negative=raw <= 2)
    raise BadRequestError('score must be "up", "down" or an integer rating from 1 to 5.', param="score")


@dataclass(frozen=True, slots=True)
class AuditSummary:
    """What feedback needs from the request's audit record."""

    request_id: str
    tenant_id: str
    target_id: str = ""
    alias: str = ""
    prompt_version: str | None = None  # "id@version"
    cache_hit: bool = False


class AuditLookup(Protocol):
    """Finds a request's audit record by id (the Audit table's `by-request` index)."""

    def find(self, request_id: str) -> AuditSummary | None: ...


@dataclass(frozen=True, slots=True)
class Feedback:
    """One user's rating of one answered request, as stored."""

    request_id: str
    tenant_id: str
    user: str
    score: Score
    created_at: float
    label: FeedbackLabel | None = None
    comment: str | None = None  # already redacted
    target_id: str = ""
    alias: str = ""
    prompt_version: str | None = None
    # The authenticated key that rated (`TenantContext.key_id`); "" on ratings stored before
    # ratings were bound to keys, whose `user` was the caller's unverified choice.
    key_id: str = ""
    # Not stored: whether this rating is the key's first on the request. Metrics count votes, so a
    # rater re-posting the same rating cannot inflate `FeedbackNegative`.
    opens_vote: bool = field(default=True, compare=False)

    @property
    def rater(self) -> str:
        """The stored identity: `key_id` or `key_id/user`; the bare `user` on pre-binding ratings."""
        return rater_id(self.key_id, self.user) if self.key_id else self.user

    def to_public_dict(self) -> dict[str, Any]:
        """The API response body: what was recorded (never another tenant's data)."""
        return {
            "object": "feedback",
            "request_id": self.request_id,
            "user": self.user,
            "rater": self.rater,
            "score": self.score.raw,
            "score_normalized": self.score.value,
            "negative": self.score.negative,
            "label": self.label.value if self.label else None,
            "comment_recorded": self.comment is not None,
        }


class FeedbackStore(Protocol):
    def put(self, feedback: Feedback) -> None:
        """Stores the rating, replacing the same rater's earlier rating of the same request; refuses
        (404) to overwrite a row of another tenant or another key."""
        ...

    def for_request(self, tenant_id: str, request_id: str) -> list[Feedback]:
        """The tenant's stored ratings of one request."""
        ...


def _optional_text(body: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequestError(f"{name} must be a string.", param=name)
    if len(value) > limit:
        raise BadRequestError(f"{name} is longer than {limit} characters.", param=name)
    return value


def submit_feedback(
    body: Any,
    tenant: TenantContext,
    audit: AuditLookup,
    store: FeedbackStore,
    redact: Callable[[str], str],
    now: float,
) -> Feedback:
    """Validates a feedback body, joins it to the audited request and stores it.

    Raises `BadRequestError` (400, naming the field) or `RequestNotFoundError` (404) for an unknown
    request id or one that another tenant made.
    """
    if not isinstance(body, Mapping):
        raise BadRequestError("The request body must be a JSON object.")
    unknown = sorted(set(body) - _BODY_FIELDS)
    if unknown:
        raise BadRequestError(f"Unknown fields: {', '.join(map(str, unknown))}.", param=str(unknown[0]))
    request_id = body.get("request_id")
    if not isinstance(request_id, str) or not request_id.strip() or len(request_id) > _MAX_ID_CHARS:
        raise BadRequestError("request_id is required: the x-request-id of the rated response.", param="request_id")
    if "score" not in body:
        raise BadRequestError("score is required.", param="score")
    score = parse_score(body["score"])
    label: FeedbackLabel | None = None
    if body.get("label") is not None:
        try:
            label = FeedbackLabel(body["label"])
        except ValueError:
            allowed = ", ".join(label.value for label in FeedbackLabel)
            raise BadRequestError(f"label must be one of: {allowed}.", param="label") from None
    comment = _optional_text(body, "comment", MAX_COMMENT_CHARS)
    user = _optional_text(body, "user", _MAX_USER_CHARS) or tenant.key_id

    summary = audit.find(request_id)
    if summary is None or summary.tenant_id != tenant.tenant_id:
        raise RequestNotFoundError(REQUEST_NOT_FOUND, param="request_id")

    rater = rater_id(tenant.key_id, user)
    # Checked before the write, so two racing first ratings may both pass: the bound on stored rows
    # is best effort, the bound that matters (one vote per key in `trusted_votes`) is exact.
    key_raters = {f.rater for f in store.for_request(tenant.tenant_id, request_id) if f.key_id == tenant.key_id}
    if rater not in key_raters and len(key_raters) >= MAX_USERS_PER_KEY_PER_REQUEST:
        raise FeedbackUserLimitError(
            f"This key has already rated this request as {MAX_USERS_PER_KEY_PER_REQUEST} different users; "
            "a user may change their own rating, but no further users can rate it.",
            param="user",
        )

    feedback = Feedback(
        request_id=request_id,
        tenant_id=tenant.tenant_id,
        user=user,
        score=score,
        created_at=now,
        label=label,
        comment=redact(comment) if comment else None,
        target_id=summary.target_id,
        alias=summary.alias,
        prompt_version=summary.prompt_version,
        key_id=tenant.key_id,
        opens_vote=not key_raters,
    )
    store.put(feedback)
    return feedback


def trusted_votes(feedback: Iterable[Feedback]) -> list[Feedback]:
    """What the retraining trigger and the drift monitor may count: one vote per key per request.

    `user` is whatever the caller wrote, so N made-up users of one key are one voice, not N. A
    key's vote is negative when most of its raters' ratings are (a tie is not negative); the
    rating returned for it is the newest one on the winning side, so its score and label are a
    real user's. Ratings stored before ratings were bound to keys (no `key_id`) carry no
    verifiable identity: all of them on one request together count as one vote.
    """
    by_voter: dict[tuple[str, str, str], list[Feedback]] = {}
    for item in feedback:
        by_voter.setdefault((item.tenant_id, item.request_id, item.key_id), []).append(item)
    votes: list[Feedback] = []
    for ratings in by_voter.values():
        negative = sum(r.score.negative for r in ratings) * 2 > len(ratings)
        side = [r for r in ratings if r.score.negative is negative]
        votes.append(max(side, key=lambda r: (r.created_at, r.rater)))
    return votes


@dataclass(frozen=True, slots=True)
class FeedbackRates:
    """Ratings aggregated (`aggregate`): how many, how many negative, their scores and labels."""

    count: int = 0
    negative: int = 0
    score_sum: float = 0.0
    labels: Mapping[str, int] = field(default_factory=dict)

    @property
    def negative_rate(self) -> float:
        return self.negative / self.count if self.count else 0.0

    @property
    def mean_score(self) -> float:
        return self.score_sum / self.count if self.count else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "negative": self.negative,
            "negative_rate": self.negative_rate,
            "mean_score": self.mean_score,
            "labels": dict(sorted(self.labels.items())),
        }


def aggregate(feedback: Iterable[Feedback]) -> FeedbackRates:
    count = negative = 0
    score_sum = 0.0
    labels: dict[str, int] = {}
    for item in feedback:
        count += 1
        negative += item.score.negative
        score_sum += item.score.value
        if item.label is not None:
            labels[item.label.value] = labels.get(item.label.value, 0) + 1
    return FeedbackRates(count=count, negative=negative, score_sum=score_sum, labels=labels)
