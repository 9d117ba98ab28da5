import math

from hypothesis import given, settings
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


def _reference_segment_estimate(text: str) -> int:
    """The per-segment loop the fast version replaced: the specification it must equal."""
    import re

    total = 0
    for match in re.finditer(r"[A-Za-z]+|[0-9]+|[ \t\r\n\f\v]+|[\x00-\x7f]|[^\x00-\x7f]", text):
        seg = match.group()
        first = seg[0]
        if first.isascii() and first.isalnum():
            total += -(-len(seg) // 3)
        elif first.isspace() and first.isascii():
            total += 0 if seg == " " else 1
        elif first.isascii():
            total += 1
        else:
            total += max(1, len(seg.encode("utf-8")) - 1)
    return total


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300))
@settings(max_examples=300, deadline=None)
def test_fast_segment_estimate_equals_the_reference(text: str) -> None:
    from llmops.domain.token_estimate import _segment_estimate

    assert _segment_estimate(text, text.encode("utf-8")) == _reference_segment_estimate(text)
