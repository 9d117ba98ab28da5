from __future__ import annotations

import json

from llmops.workflows.history import canary_progress, pending_approval_token


def scheduled(token: str | None) -> dict[str, object]:
    attributes = {"task_token": {"DataType": "String", "StringValue": token}} if token else {}
    return {
        "type": "TaskScheduled",
        "taskScheduledEventDetails": {"parameters": json.dumps({"MessageAttributes": attributes})},
    }


def test_pending_token_is_the_last_unanswered_approval() -> None:
    assert pending_approval_token([scheduled("t1")]) == "t1"
    assert pending_approval_token([scheduled("t1"), {"type": "TaskSucceeded"}]) is None
    assert pending_approval_token([scheduled("t1"), {"type": "TaskSucceeded"}, scheduled("t2")]) == "t2"
    assert pending_approval_token([scheduled(None)]) is None
    assert pending_approval_token([]) is None


def test_progress_reads_the_selected_step() -> None:
    output = {"steps": [{}, {}, {}], "step": {"current": {"percent": 25}}}
    events = [
        {"type": "PassStateEntered", "stateEnteredEventDetails": {"name": "SelectStep"}},
        {"type": "PassStateExited", "stateExitedEventDetails": {"name": "SelectStep", "output": json.dumps(output)}},
        {"type": "WaitStateEntered", "stateEnteredEventDetails": {"name": "Bake"}},
    ]
    progress = canary_progress(events)
    assert (progress.state, progress.percent, progress.steps_total) == ("Bake", 25, 3)
