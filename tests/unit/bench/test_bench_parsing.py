"""Pure pieces around the benchmark tools: locust CSVs, the Presidio hook, configs and fixtures."""

from __future__ import annotations

import json
from pathlib import Path

from llmops.bench.guard_speed import guardrails_eval_section
from llmops.bench.litellm_env import proxy_config
from llmops.bench.load import parse_failures, parse_history
from llmops.bench.upstream import COMPLETION_TEXT, completion_document
from llmops.bench.workload import INTENDED_429_FAILURE, MIXED_TEXT_1KB, PROMPT_1KB, chat_request

HISTORY_HEADER = (
    "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,"
    "Total Request Count,Total Failure Count"
)
HISTORY = f"""{HISTORY_HEADER}
1700000000,3,POST,chat,0.000000,0.000000,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,0,0
1700000001,3,POST,chat,12.5,0.0,40,45,50,52,60,70,80,90,95,95,95,12,0
1700000001,3,,Aggregated,13.5,0.5,41,45,50,52,60,70,80,91,95,95,95,14,1
1700000002,3,POST,chat,14.0,0.0,42,45,50,52,60,72,80,95,99,99,99,26,0
"""

FAILURES = f"""Method,Name,Error,Occurrences
POST,chat (rate-limited key),CatchResponseError('{INTENDED_429_FAILURE}'),7
POST,chat,CatchResponseError('HTTP 502'),1
"""


def test_parse_history_keeps_one_name_and_skips_empty_windows(tmp_path: Path) -> None:
    path = tmp_path / "locust_stats_history.csv"
    path.write_text(HISTORY)
    rows = parse_history(path)
    assert [r["timestamp"] for r in rows] == [1700000001, 1700000002]
    assert rows[0]["p50"] == 40
    assert rows[1]["p99"] == 95
    assert rows[1]["requests"] == 26
    assert parse_history(tmp_path / "missing.csv") == []


def test_parse_failures(tmp_path: Path) -> None:
    path = tmp_path / "locust_failures.csv"
    path.write_text(FAILURES)
    rows = parse_failures(path)
    assert rows[0] == {
        "name": "chat (rate-limited key)",
        "error": f"CatchResponseError('{INTENDED_429_FAILURE}')",
        "occurrences": 7,
    }
    assert [r for r in rows if INTENDED_429_FAILURE not in r["error"]] == [
        {"name": "chat", "error": "CatchResponseError('HTTP 502')", "occurrences": 1}
    ]


def test_guardrails_eval_section_when_absent(tmp_path: Path) -> None:
    text, data = guardrails_eval_section(tmp_path)
    assert data is None
    assert "llmops eval guardrails" in text
    assert "not found" in text


def test_guardrails_eval_section_flattens_results(tmp_path: Path) -> None:
    (tmp_path / "guardrails").mkdir()
    results = {"llmops": {"f1": 0.91234, "p50_us": 120}, "presidio": {"f1": 0.8}, "corpus": "ai4privacy"}
    (tmp_path / "guardrails" / "results.json").write_text(json.dumps(results))
    (tmp_path / "guardrails" / "report.md").write_text("# eval")
    text, data = guardrails_eval_section(tmp_path)
    assert data == results
    assert "| llmops.f1 | 0.9123 |" in text
    assert "| presidio.f1 | 0.8 |" in text
    assert "| corpus | ai4privacy |" in text
    assert "guardrails/report.md" in text


def test_guardrails_eval_section_prefers_supplied_markdown(tmp_path: Path) -> None:
    (tmp_path / "guardrails").mkdir()
    (tmp_path / "guardrails" / "results.json").write_text(json.dumps({"markdown": "| a | b |"}))
    text, _ = guardrails_eval_section(tmp_path)
    assert "| a | b |" in text


def test_litellm_proxy_config_is_yaml_readable_json_without_guardrails() -> None:
    config = json.loads(proxy_config("chat-default", "http://127.0.0.1:9999/v1"))
    (model,) = config["model_list"]
    assert model["model_name"] == "chat-default"
    assert model["litellm_params"]["api_base"] == "http://127.0.0.1:9999/v1"
    assert "guardrails" not in config
    assert "callbacks" not in config["litellm_settings"]


def test_fake_upstream_document_is_a_chat_completion() -> None:
    doc = completion_document("m", 123)
    assert doc["object"] == "chat.completion"
    assert doc["choices"][0]["message"]["content"] == COMPLETION_TEXT
    assert doc["usage"]["total_tokens"] == doc["usage"]["prompt_tokens"] + doc["usage"]["completion_tokens"]


def test_workload_texts_are_exactly_one_kilobyte_and_not_deterministic() -> None:
    assert len(PROMPT_1KB) == 1024
    assert len(MIXED_TEXT_1KB) == 1024
    request = chat_request()
    assert request["messages"][1]["content"] == PROMPT_1KB
    # temperature 0 could be served from the response cache, skipping the path being measured
    assert request["temperature"] != 0
