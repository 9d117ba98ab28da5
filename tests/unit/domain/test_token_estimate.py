import math

from hypothesis import given
from hypothesis import strategies as st

from llmops.domain.chat import ChatRequest, Message, Role
from llmops.domain.token_estimate import (
    MESSAGE_OVERHEAD_TOKENS,
    REQUEST_OVERHEAD_TOKENS,
    estimate_prompt_tokens,
    estimate_text_tokens,
)


def test_empty_text_is_zero_tokens() -> None:
    assert estimate_text_tokens("") == 0


def test_english_is_over_estimated_against_known_tokenizer_counts() -> None:
    # cl100k_base: 10 tokens; Llama 3: 10; Claude: about 10.
    assert estimate_text_tokens("The quick brown fox jumps over the lazy dog.") >= 10
    # cl100k_base: 4 tokens ("Hello", ",", " world", "!").
    assert estimate_text_tokens("Hello, world!") >= 4


def test_numbers_and_symbols_are_over_estimated() -> None:
    # cl100k splits digits in groups of 3: 1234567890 -> 4 tokens; every symbol can be its own token.
    assert estimate_text_tokens("1234567890") >= 4
    assert estimate_text_tokens("{}[]();,.") >= 9


def test_cjk_and_emoji_cost_more_than_one_token_per_character() -> None:
    assert estimate_text_tokens("你好世界") >= 8
    assert estimate_text_tokens("🙂🙂") >= 6


@given(st.text(max_size=400))
def test_estimate_is_never_below_one_token_per_three_bytes_or_per_word(text: str) -> None:
    estimate = estimate_text_tokens(text)
    assert estimate >= math.ceil(len(text.encode("utf-8")) / 3)
    assert estimate >= len(text.split())


def test_prompt_estimate_adds_per_message_and_per_request_overhead() -> None:
    request = ChatRequest(model="m", messages=(Message(Role.SYSTEM, "be brief"), Message(Role.USER, "hi")))
    expected = (
        REQUEST_OVERHEAD_TOKENS
        + 2 * MESSAGE_OVERHEAD_TOKENS
        + estimate_text_tokens("be brief")
        + estimate_text_tokens("hi")
    )
    assert estimate_prompt_tokens(request) == expected
    assert estimate_prompt_tokens(request, ["context doc"]) > expected
