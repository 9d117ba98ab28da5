"""The Bedrock emulator's Converse dialect, without HTTP: parallel tool calls, the prompt cache's
prefixes, and the mapping of an OpenAI-compatible upstream's answers and streams back to Converse."""

from __future__ import annotations

import json
from typing import Any

from llmops.domain.chat import Capability
from llmops.domain.model_ids import ModelFamily
from llmops.local.emulators.answers import Generation
from llmops.local.emulators.converse import (
    ConverseAnswer,
    ModelTraits,
    PromptCache,
    ThinkingSigner,
    answer_from_openai,
    emulate,
    openai_stream_items,
    parse_converse,
    stream_items,
)

CLAUDE = ModelTraits(ModelFamily.ANTHROPIC_CLAUDE, frozenset(Capability))
SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
TOOLS = {
    "tools": [
        {"toolSpec": {"name": "search", "inputSchema": {"json": SCHEMA}}},
        {"toolSpec": {"name": "lookup", "inputSchema": {"json": SCHEMA}}},
    ]
}


def call(body: dict[str, Any], traits: ModelTraits = CLAUDE) -> Any:
    return parse_converse(json.dumps(body).encode(), "anthropic.claude-x", traits, ThinkingSigner())


def test_tools_the_user_names_are_called_in_parallel_in_the_order_named() -> None:
    text = {"role": "user", "content": [{"text": "lookup the id, then search for it"}]}
    answer = emulate(call({"messages": [text], "toolConfig": TOOLS}), ThinkingSigner())
    assert [b["toolUse"]["name"] for b in answer.content] == ["lookup", "search"]
    assert len({b["toolUse"]["toolUseId"] for b in answer.content}) == 2
    items = [i for i in stream_items(answer) if not isinstance(i, Generation)]
    starts = [payload["contentBlockIndex"] for kind, payload in items if kind == "contentBlockStart"]
    assert starts == [0, 1]


def _cached_body(system: str) -> dict[str, Any]:
    described = {"toolSpec": {"name": "search", "description": "x" * 5000, "inputSchema": {"json": SCHEMA}}}
    return {
        "toolConfig": {"tools": [described, {"cachePoint": {"type": "default"}}]},
        "system": [{"text": system}, {"cachePoint": {"type": "default"}}],
        "messages": [{"role": "user", "content": [{"text": "q"}]}],
    }


def test_the_longest_cached_prefix_is_read_and_the_rest_written() -> None:
    cache = PromptCache(clock=lambda: 0.0)
    first = cache.account("m", _cached_body("policy " * 1000))
    assert first is not None and first[0] == 0
    tools_only = cache.account("m", _cached_body("another policy " * 1000))
    assert tools_only is not None
    read, write = tools_only
    assert 0 < read < first[1] and write > 0  # the tools' prefix was cached; the new system is written
    assert cache.account("other-model", _cached_body("policy " * 1000)) == (0, first[1])
    assert cache.account("m", {"messages": [{"role": "user", "content": [{"text": "q"}]}]}) is None


def test_an_upstream_stream_with_reasoning_text_and_interleaved_tool_calls() -> None:
    chunks: list[dict[str, Any]] = [
        {"choices": [{"delta": {"reasoning_content": "hmm"}}]},
        {"choices": [{"delta": {"content": "Let me check."}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c/1", "function": {"name": "search"}}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "lookup"}}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"q":'}}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 1, "function": {"arguments": '{"q":"b"}'}}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": '"a"}'}}]}}]},
        {
            "choices": [{"delta": {}, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 4},
        },
    ]
    items = list(openai_stream_items(call({"messages": [{"role": "user", "content": [{"text": "q"}]}]}), iter(chunks)))
    answer = items[-1]
    assert isinstance(answer, ConverseAnswer)
    assert [(kind, payload["contentBlockIndex"]) for kind, payload in items[:-1]] == [  # type: ignore[misc]
        ("contentBlockDelta", 0),
        ("contentBlockDelta", 1),
        ("contentBlockStart", 2),
        ("contentBlockStart", 3),
        ("contentBlockDelta", 2),
        ("contentBlockDelta", 3),
        ("contentBlockDelta", 2),
    ]
    assert answer.content == (
        {"reasoningContent": {"reasoningText": {"text": "hmm"}}},
        {"text": "Let me check."},
        {"toolUse": {"toolUseId": "c_1", "name": "search", "input": {"q": "a"}}},
        {"toolUse": {"toolUseId": "c2", "name": "lookup", "input": {"q": "b"}}},
    )
    assert (answer.stop_reason, answer.input_tokens, answer.output_tokens) == ("tool_use", 9, 4)


def test_an_upstream_answer_with_a_forced_call_ending_stop_is_tool_use_on_converse() -> None:
    doc = {
        "choices": [
            {
                "message": {
                    "content": None,
                    "tool_calls": [{"id": "x", "function": {"name": "search", "arguments": "not json"}}],
                },
                "finish_reason": "stop",
            }
        ]
    }
    answer = answer_from_openai(call({"messages": [{"role": "user", "content": [{"text": "q"}]}]}), doc)
    assert answer.stop_reason == "tool_use"
    assert answer.content == ({"toolUse": {"toolUseId": "x", "name": "search", "input": {}}},)
