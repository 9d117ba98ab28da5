from __future__ import annotations

import json

from llmops.domain.audit import AuditRecord, GuardVerdict, TextEvidence
from llmops.domain.feedback import Feedback, FeedbackLabel, parse_score
from llmops.domain.finetune_export import export_finetune_jsonl
from llmops.domain.tenancy import TextRetention


def record(request_id: str, **overrides: object) -> AuditRecord:
    fields: dict[str, object] = {
        "request_id": request_id,
        "tenant_id": "acme",
        "key_prefix": "abcd1234",
        "started_at": 1.0,
        "finished_at": 2.0,
        "status": 200,
        "alias": "chat-default",
        "target": "bedrock-claude-haiku",
        "prompt": TextEvidence(TextRetention.REDACTED, "Email <EMAIL> about the refund"),
        "completion": TextEvidence(TextRetention.REDACTED, "Sure, here is a draft."),
    }
    fields.update(overrides)
    return AuditRecord(**fields)  # type: ignore[arg-type]


def rating(request_id: str, score: object, at: float = 10.0, label: FeedbackLabel | None = None) -> Feedback:
    return Feedback(
        request_id=request_id,
        tenant_id="acme",
        user="u1",
        score=parse_score(score),
        created_at=at,
        label=label,
        comment="my email is bob@example.com",
    )


def test_rated_redacted_records_become_chat_examples() -> None:
    export = export_finetune_jsonl(
        [record("r1")], [rating("r1", "down", label=FeedbackLabel.UNHELPFUL)], system_prompt="Be brief."
    )
    assert export.count == 1
    line = json.loads(export.lines[0])
    assert line["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Email <EMAIL> about the refund"},
        {"role": "assistant", "content": "Sure, here is a draft."},
    ]
    assert line["score"] == 0.0
    assert line["negative"] is True
    assert line["label"] == "unhelpful"
    assert line["metadata"]["request_id"] == "r1"
    assert "bob@example.com" not in export.jsonl()  # comments are never exported
    assert export.jsonl().endswith("\n")


def test_records_without_redacted_text_are_skipped() -> None:
    records = [
        record("hashed", prompt=TextEvidence(TextRetention.HASH, "hmac-sha256:00")),
        record("none", completion=None),
        record("failed", status=502),
        record("cached", cache_hit=True),
        record("blocked", guard=(GuardVerdict("output", "block", {"SECRET": 1}),)),
    ]
    export = export_finetune_jsonl(records, [rating(r.request_id, 5) for r in records])
    assert export.count == 0
    assert export.skipped == {"blocked": 1, "cache_hit": 1, "failed": 1, "no_redacted_text": 2}


def test_latest_rating_wins_and_min_score_filters() -> None:
    feedback = [rating("r1", 1, at=1.0), rating("r1", 5, at=2.0), rating("r2", 2, at=1.0)]
    export = export_finetune_jsonl([record("r1"), record("r2"), record("r3")], feedback, min_score=0.75)
    assert [json.loads(line)["metadata"]["request_id"] for line in export.lines] == ["r1"]
    assert json.loads(export.lines[0])["score"] == 1.0
    assert export.skipped == {"below_min_score": 1, "unrated": 1}


def test_unrated_records_only_on_request() -> None:
    export = export_finetune_jsonl([record("r1")], [], include_unrated=True)
    assert export.count == 1
    assert json.loads(export.lines[0])["score"] is None
    assert export_finetune_jsonl([record("r1")], []).skipped == {"unrated": 1}
