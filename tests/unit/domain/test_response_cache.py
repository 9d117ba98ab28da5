import pytest

from llmops.domain.chat import ChatRequest, Completion, FinishReason, Message, Role, Usage
from llmops.domain.response_cache import (
    CacheEntry,
    CacheStatus,
    cache_decision,
    cache_key,
    storable,
)


def _request(**overrides: object) -> ChatRequest:
    fields: dict[str, object] = {
        "model": "chat-default",
        "messages": (Message(Role.SYSTEM, "be brief"), Message(Role.USER, "hello")),
        "temperature": 0.0,
        "max_tokens": 100,
    }
    fields.update(overrides)
    return ChatRequest(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "headers", "read", "write"),
    [
        ({}, {}, True, True),
        ({"temperature": None}, {}, False, False),  # provider default is not deterministic
        ({"temperature": 0.7}, {}, False, False),
        ({"temperature": 0.7}, {"X-LLMOps-Cache": "force"}, True, True),
        ({}, {"x-llmops-cache": "bypass"}, False, False),
        ({}, {"x-llmops-cache": "no-store"}, False, False),
        ({}, {"x-llmops-cache": " No-Cache "}, False, True),
        ({"temperature": 1.0}, {"x-llmops-cache": "no-cache"}, False, False),
        ({"stream": True}, {}, False, False),
        ({"stream": True}, {"x-llmops-cache": "force"}, False, False),
    ],
)
def test_cache_decision(overrides: dict[str, object], headers: dict[str, str], read: bool, write: bool) -> None:
    decision = cache_decision(_request(**overrides), headers)
    assert (decision.read, decision.write) == (read, write)
    assert decision.status_if_not_hit is (CacheStatus.MISS if read else CacheStatus.BYPASS)


def test_streams_can_be_allowed_by_the_caller() -> None:
    assert cache_decision(_request(stream=True), {}, allow_stream=True).read


def test_cache_key_is_stable_and_covers_tenant_target_messages_and_parameters() -> None:
    base = cache_key("acme", _request(), "nova-lite")
    assert base == cache_key("acme", _request(), "nova-lite")
    assert len(base) == 64 and "hello" not in base
    different = {
        cache_key("globex", _request(), "nova-lite"),
        cache_key("acme", _request(), "llama3"),
        cache_key("acme", _request(messages=(Message(Role.USER, "hello"),)), "nova-lite"),
        cache_key(
            "acme", _request(messages=(Message(Role.ASSISTANT, "be brief"), Message(Role.USER, "hello"))), "nova-lite"
        ),
        cache_key("acme", _request(max_tokens=101), "nova-lite"),
        cache_key("acme", _request(top_p=0.5), "nova-lite"),
        cache_key("acme", _request(stop=("x",)), "nova-lite"),
    }
    assert base not in different and len(different) == 7


def test_cache_key_ignores_fields_that_do_not_change_the_answer() -> None:
    assert cache_key("acme", _request(), "t") == cache_key("acme", _request(user="u1", metadata={"a": "b"}), "t")


def test_cache_key_needs_a_tenant() -> None:
    with pytest.raises(ValueError):
        cache_key("", _request(), "t")


def test_entries_expire_and_replay_with_zero_usage() -> None:
    completion = Completion("hi", FinishReason.STOP, Usage(10, 5), raw_model="m")
    entry = CacheEntry.from_completion("k", "acme", "nova-lite", completion, now=1000.0, ttl_s=60)
    assert entry.expires_at == 1060
    assert not entry.expired(1059.9) and entry.expired(1060)
    replay = entry.to_completion()
    assert (replay.text, replay.finish_reason, replay.raw_model) == ("hi", FinishReason.STOP, "m")
    assert replay.usage.total_tokens == 0
    assert replay.extra["cache_hit"] is True
    with pytest.raises(ValueError):
        CacheEntry.from_completion("k", "acme", "t", completion, now=0, ttl_s=0)


def test_filtered_answers_are_never_stored() -> None:
    assert storable(Completion("ok", FinishReason.LENGTH, Usage(1, 1)))
    assert not storable(Completion("", FinishReason.CONTENT_FILTER, Usage(1, 0)))
