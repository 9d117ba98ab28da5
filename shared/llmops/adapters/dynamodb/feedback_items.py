"""Pure mapping between feedback records and Feedback table items (low-level JSON).

`pk = req#<request_id>`, `sk = rater#<key_id>[/<user>]`: one rating per request and rater (the
authenticated key, narrowed by the caller's `user`), so a put replaces that rater's earlier rating
and never another key's. Ratings stored before ratings were bound to keys keep their
`sk = user#<user>` and have no `key_id`; they are read as they are and never overwritten by a new
rating, since the two sort-key spaces cannot meet. The audit join (`target_id`, `alias`,
`prompt_version`) is copied onto the item so rates per target and per prompt version need no
second lookup.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from llmops.domain.feedback import Feedback, FeedbackLabel, Score, ScoreKind

__all__ = [
    "RATER_SK_PREFIX",
    "REQUEST_PK_PREFIX",
    "USER_SK_PREFIX",
    "feedback_from_item",
    "feedback_item",
    "rater_sk",
    "request_pk",
    "user_sk",
]

REQUEST_PK_PREFIX = "req#"
RATER_SK_PREFIX = "rater#"
USER_SK_PREFIX = "user#"  # ratings stored before they were bound to keys

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]


def request_pk(request_id: str) -> str:
    return f"{REQUEST_PK_PREFIX}{request_id}"


def user_sk(user: str) -> str:
    return f"{USER_SK_PREFIX}{user}"


def rater_sk(rater: str) -> str:
    return f"{RATER_SK_PREFIX}{rater}"


def _num(value: float) -> AttributeValue:
    return {"N": str(value) if isinstance(value, int) else str(Decimal(repr(value)))}


def feedback_item(feedback: Feedback) -> Item:
    item: Item = {
        "pk": {"S": request_pk(feedback.request_id)},
        "sk": {"S": rater_sk(feedback.rater) if feedback.key_id else user_sk(feedback.user)},
        "request_id": {"S": feedback.request_id},
        "tenant_id": {"S": feedback.tenant_id},
        "user": {"S": feedback.user},
        "score_kind": {"S": feedback.score.kind.value},
        "score_raw": {"S": feedback.score.raw},
        "score": _num(feedback.score.value),
        "negative": {"BOOL": feedback.score.negative},
        "created_at": _num(feedback.created_at),
        "target_id": {"S": feedback.target_id},
        "alias": {"S": feedback.alias},
    }
    if feedback.key_id:
        item["key_id"] = {"S": feedback.key_id}
    if feedback.label is not None:
        item["label"] = {"S": feedback.label.value}
    if feedback.comment is not None:
        item["comment"] = {"S": feedback.comment}
    if feedback.prompt_version is not None:
        item["prompt_version"] = {"S": feedback.prompt_version}
    return item


def feedback_from_item(item: Mapping[str, AttributeValue]) -> Feedback:
    return Feedback(
        request_id=item["request_id"]["S"],
        tenant_id=item["tenant_id"]["S"],
        user=item["user"]["S"],
        score=Score(
            kind=ScoreKind(item["score_kind"]["S"]),
            raw=item["score_raw"]["S"],
            value=float(item["score"]["N"]),
            negative=bool(item["negative"]["BOOL"]),
        ),
        created_at=float(item["created_at"]["N"]),
        label=FeedbackLabel(item["label"]["S"]) if "label" in item else None,
        comment=item["comment"]["S"] if "comment" in item else None,
        target_id=item.get("target_id", {}).get("S", ""),
        alias=item.get("alias", {}).get("S", ""),
        prompt_version=item["prompt_version"]["S"] if "prompt_version" in item else None,
        key_id=item.get("key_id", {}).get("S", ""),
    )
