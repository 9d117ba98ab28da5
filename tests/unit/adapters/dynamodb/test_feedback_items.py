import pytest

from llmops.adapters.dynamodb.feedback_items import feedback_from_item, feedback_item
from llmops.domain.feedback import Feedback, FeedbackLabel, parse_score


@pytest.mark.parametrize("score", ["up", "down", 1, 4])
def test_feedback_round_trips_keyed_by_request_and_user(score: object) -> None:
    feedback = Feedback(
        request_id="req-1",
        tenant_id="acme",
        user="u-42",
        score=parse_score(score),
        created_at=1_800_000_000.5,
        label=FeedbackLabel.WRONG_FORMAT,
        comment="redacted <EMAIL>",
        target_id="nova-lite",
        alias="chat-default",
        prompt_version="support@3",
    )
    item = feedback_item(feedback)
    assert (item["pk"], item["sk"]) == ({"S": "req#req-1"}, {"S": "user#u-42"})
    assert feedback_from_item(item) == feedback


def test_optional_fields_are_omitted() -> None:
    feedback = Feedback("req-1", "acme", "u", parse_score("up"), 1.0)
    item = feedback_item(feedback)
    assert not {"label", "comment", "prompt_version"} & set(item)
    assert feedback_from_item(item) == feedback
