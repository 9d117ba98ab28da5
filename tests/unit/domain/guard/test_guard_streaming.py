"""The streaming output guard releases exactly what the non-streamed guard_output returns, under any chunking."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmops.domain.guard import Action, FindingType, GuardEngine, GuardPolicy
from llmops.domain.guard.leakage import embed_canary, new_canary
from llmops.domain.guard.redaction import PseudonymVault
from llmops.domain.guard.streaming import (
    SPACED_SHAPE_REACH,
    FinalRelease,
    StreamingOutputGuard,
    hold_back_chars,
)

SYSTEM_PROMPT = (
    "You are the billing assistant for Example Corp. Never reveal internal discount codes or the refund "
    "escalation matrix, and always answer in a friendly but concise tone for every customer question."
)
DENIED = {"denied_words": ["project nightingale"], "denied_topics": {"weapons": ["nerve agent"]}}
DEFAULT = GuardEngine(GuardPolicy.from_mapping(DENIED))
STRICT = GuardEngine(
    GuardPolicy.from_mapping(
        {**DENIED, "output_actions": {"EMAIL": "block", "CREDIT_CARD": "block", "AWS_ACCESS_KEY": "block"}}
    )
)
LOG_ONLY_DENY = GuardEngine(
    GuardPolicy.from_mapping({**DENIED, "output_actions": {"DENIED_WORD": "redact", "DENIED_TOPIC": "log_only"}})
)
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _vault() -> PseudonymVault:
    """A request whose input pseudonymized an e-mail address and a phone number."""
    vault = PseudonymVault()
    vault.remember("[EMAIL_1]", "alice@example.org")
    vault.remember("[PHONE_NUMBER_1]", "+1 415 555 0100")
    return vault


def _stream(
    engine: GuardEngine, deltas: Sequence[str], vault: PseudonymVault | None = None, system_prompt: str = ""
) -> tuple[list[str], bool, FinalRelease]:
    guard = StreamingOutputGuard(engine, vault, system_prompt)
    released: list[str] = []
    blocked = False
    for delta in deltas:
        release = guard.feed(delta)
        released.append(release.text)
        if release.blocked:
            blocked = True
            assert release.text == ""
            break
    final = guard.finish()
    released.append(final.text)
    return released, blocked or final.blocked, final


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


# -- the same policy as without streaming (property) -------------------------------------------------

words = st.sampled_from(
    [
        "the",
        "invoice",
        "is",
        "due",
        "on",
        "Monday.",
        "Please",
        "call",
        "me",
        "at",
        "and",
        "your",
        "total",
        "is",
        "42",
        "EUR",
        "thanks!",
        "\n",
        "(see",
        "below)",
        "project",
        "agent",
        "nerve",
        "ok,",
    ]
)
fragments = st.sampled_from(
    [
        "john.doe@example.com",
        "mail me: a.b+c@mail.example.co.uk.",
        "4111 1111 1111 1111",
        "card 4012-8888-8888-1881",
        "GB82 WEST 1234 5698 7654 32",
        "AKIAIOSFODNN7EXAMPL3",
        "ghp_" + "a1B2c3D4" * 5,
        "password = Sup3r$ecretValue!",
        "[EMAIL_1]",
        "[ EMAIL_1 ]",
        "PHONE_NUMBER_1",
        "[EMAIL_7]",
        "project nightingale",
        "Project   Nightingale",
        "nerve agent",
        "nightingale",
        "call 415-555-0132 now",
        "SSN 536-22-1234",
        "10.0.12.7",
        "Never reveal internal discount codes or the refund escalation matrix",
        "always answer in a friendly but concise tone for every customer question",
        "llmops-canary-0123456789abcdef",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl",
        # shapes that span whitespace, or that text after them decides
        "AB 12 34 56 C",
        "born on 12 March 1990",
        "born 12th of September, 1984",
        "March 5, 2024",
        "123456789 is my passport",
        "passport no. 123456789",
        "536221234 social security",
        "social  security 536221234",
        "DL A1234567",
        "(415) 555-0132 office",
        "+44 20 7946 0958",
        "GB82 WEST 1234 5698 7654 32",
        "gb82-west-1234-5698-7654-32",
        "4111.1111.1111.1111",
        "john dot doe [at] example dot com",
        "j.doe at example dot com",
        "contact john @ example.com",
        "jane[at]example[dot]org",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n"
        "-----END RSA PRIVATE KEY-----",
        "my password is hunter2!",
        "Bearer abcdefghijklmnopqrstuvwxyz012345",
        "nerve\tagent",
    ]
)
# Words that are harmless alone but begin or join a shape above
risky_words = st.sampled_from(
    ["at", "dot", "(at)", "[at]", ".", "@", "may", "March", "AB", "ss", "social", "security", "passport", "born"]
)
prose_words = st.sampled_from(
    [
        *("Sure", "here", "is", "a", "short", "answer", "about", "gardening.", "Roses", "like", "sun,"),
        *("water", "and", "patience;", "prune", "them", "in", "early", "spring", "(before", "buds)", "open."),
        *("You", "may", "also", "want", "to", "mulch", "-", "it", "helps!", "Do", "not", "overwater"),
    ]
)


@st.composite
def completions(draw: st.DrawFn) -> str:
    prose = draw(st.booleans())
    part = (
        st.one_of(prose_words, prose_words, prose_words, prose_words, risky_words, fragments)
        if prose
        else st.one_of(words, words, words, fragments, risky_words)
    )
    parts = draw(st.lists(part, min_size=1, max_size=120))
    separators = draw(
        st.lists(
            st.sampled_from([" ", " ", " ", "\n", ", ", "  ", "\t", ".\n\n"]), min_size=len(parts), max_size=len(parts)
        )
    )
    return "".join(p + s for p, s in zip(parts, separators, strict=True))


@st.composite
def chunkings(draw: st.DrawFn, text: str) -> list[str]:
    mode = draw(st.sampled_from(["one", "chars", "random", "tokens", "tokens", "words", "words"]))
    if mode == "one":
        return [text]
    if mode == "chars":
        return list(text)
    if mode == "words":  # a delta per word, with the whitespace before or after it: a boundary at every cut
        space_first = draw(st.booleans())  # " word" deltas, as tokenizers emit them, or "word " ones
        deltas = [""]
        for is_space, run in itertools.groupby(text, key=str.isspace):
            if deltas[-1] and is_space is space_first:
                deltas.append("")
            deltas[-1] += "".join(run)
        return deltas
    if mode == "tokens":  # what a model streams: deltas of 3 to 6 characters
        sizes = draw(st.lists(st.integers(3, 6), min_size=len(text) // 3 + 1, max_size=len(text) // 3 + 1))
        bounds = [0, *itertools.accumulate(sizes)]
        return [text[a:b] for a, b in itertools.pairwise(bounds) if a < len(text)]
    cuts = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=60))))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if b > a]


@pytest.mark.parametrize("engine", [DEFAULT, STRICT, LOG_ONLY_DENY], ids=["default", "strict", "redact-deny"])
@given(data=st.data())
@PROPERTY_SETTINGS
def test_released_text_is_the_non_streamed_text_under_any_chunking(engine: GuardEngine, data: st.DataObject) -> None:
    text = data.draw(completions())
    deltas = data.draw(chunkings(text))
    with_prompt = data.draw(st.booleans())
    system_prompt = SYSTEM_PROMPT if with_prompt else ""
    expected = engine.guard_output(text, _vault(), system_prompt)

    released, blocked, final = _stream(engine, deltas, _vault(), system_prompt)

    assert final.scan is not None and not final.scan.diverged
    assert blocked == expected.blocked
    if not expected.blocked:
        assert "".join(released) == expected.text
    else:
        # whatever was released before the block is a prefix of the text with the offending part held
        assert expected.text == ""
    assert final.verdict is not None and final.verdict.action is expected.action


# -- explicit cases ----------------------------------------------------------------------------------


def test_an_email_split_across_deltas_reaches_the_client_redacted() -> None:
    text = "Sure. You can reach our billing team at billing.team@example.com during office hours. " + "Thanks. " * 30
    released, blocked, _ = _stream(
        DEFAULT,
        [
            "Sure. You can reach our billing team at bil",
            "ling.te",
            "am@exa",
            "mple.c",
            "om during office hours. ",
            *_chunks("Thanks. " * 30, 5),
        ],
    )
    assert not blocked
    joined = "".join(released)
    assert joined == DEFAULT.guard_output(text).text
    assert "[EMAIL_1]" in joined
    assert all("billing.team" not in piece and "example.com" not in piece for piece in released)


def test_a_policy_that_blocks_on_email_ends_the_stream_before_any_part_of_the_address() -> None:
    prefix = "Here is the contact you asked for, written out in full for you: " * 3
    text = prefix + "jane.roe@example.net and more text follows here. " * 10
    guard = StreamingOutputGuard(STRICT)
    released: list[str] = []
    for delta in _chunks(text, 3):
        release = guard.feed(delta)
        released.append(release.text)
        if release.blocked:
            break
    else:
        pytest.fail("the stream was not blocked")
    assert release.blocked_by is not None and release.blocked_by.type == FindingType.EMAIL
    joined = "".join(released)
    assert joined == prefix[: len(joined)]
    assert "jane" not in joined
    assert guard.feed("more").blocked
    final = guard.finish()
    assert final.blocked and final.text == "" and final.verdict is not None and final.verdict.blocked


def test_a_pseudonym_is_restored_when_its_placeholder_arrives_split() -> None:
    text = "I have noted your address [EMAIL_1] and will write to [EMAIL_1] today. " + "Regards. " * 20
    deltas = [
        "I have noted your address [EM",
        "AIL",
        "_1] and will write to [",
        "EMAIL_1",
        "] today. ",
        *_chunks("Regards. " * 20, 4),
    ]
    released, blocked, _ = _stream(DEFAULT, deltas, _vault())
    assert not blocked
    joined = "".join(released)
    assert joined == DEFAULT.guard_output(text, _vault()).text
    assert joined.count("alice@example.org") == 2
    assert not any("[EM" in piece or "_1]" in piece for piece in released)


def test_a_canary_leak_blocks_the_stream() -> None:
    canary = new_canary()
    system_prompt = embed_canary(SYSTEM_PROMPT, canary)
    text = "Of course! My instructions carry a marker, it reads " + canary + " and then " + "more words " * 30
    released, blocked, final = _stream(DEFAULT, _chunks(text, 4), system_prompt=system_prompt)
    assert blocked
    assert canary not in "".join(released) and "llmops-canary" not in "".join(released)
    assert final.blocked_by is not None and final.blocked_by.type == FindingType.SYSTEM_PROMPT_LEAK


def test_a_reproduced_system_prompt_blocks_mid_stream() -> None:
    text = "My instructions say: " + SYSTEM_PROMPT + " " + "More filler text goes here. " * 40
    guard = StreamingOutputGuard(DEFAULT, None, SYSTEM_PROMPT)
    blocked_at = None
    for index, delta in enumerate(_chunks(text, 8)):
        if guard.feed(delta).blocked:
            blocked_at = index * 8
            break
    assert blocked_at is not None and blocked_at < len(text) - 200, "blocked before the completion ended"
    assert guard.finish().verdict is not None
    assert DEFAULT.guard_output(text, None, SYSTEM_PROMPT).blocked


def test_a_denied_phrase_blocks_the_stream() -> None:
    text = "Our internal codename is Project Nightingale, but " + "please keep that quiet. " * 20
    released, blocked, final = _stream(DEFAULT, _chunks(text, 1))
    assert blocked
    assert "Nightingale" not in "".join(released)
    assert final.blocked_by is not None and final.blocked_by.type == FindingType.DENIED_WORD


def test_released_text_never_contains_a_prefix_of_a_finding() -> None:
    secret = "ghp_" + "Zx9" * 14
    text = "token: " + secret + " is what you need. " + "ok " * 60
    for size in (1, 2, 5, 13):
        guard = StreamingOutputGuard(DEFAULT)
        sent = ""
        for delta in _chunks(text, size):
            sent += guard.feed(delta).text
            assert "ghp_" not in sent, f"a prefix of the token was released (deltas of {size})"
        sent += guard.finish().text
        assert sent == DEFAULT.guard_output(text).text and "[GITHUB_TOKEN_1]" in sent


def test_text_streams_before_the_end_and_the_window_bounds_what_is_held() -> None:
    text = "This is a long and perfectly harmless answer about gardening. " * 20
    guard = StreamingOutputGuard(DEFAULT)
    sent = ""
    for received, delta in enumerate(_chunks(text, 5), start=1):
        sent += guard.feed(delta).text
        assert received * 5 - len(sent) <= SPACED_SHAPE_REACH + 64, "held more than the window and one scan step"
    assert len(sent) >= len(text) - SPACED_SHAPE_REACH - 64
    final = guard.finish()
    assert sent + final.text == text
    assert final.scan is not None and final.scan.hold_back_chars == SPACED_SHAPE_REACH and final.scan.scans > 1


def test_the_window_grows_with_the_deny_list_and_the_vault() -> None:
    long_phrase = "a very long denied phrase " * 8
    policy = GuardPolicy.from_mapping({"denied_words": [long_phrase.strip()]})
    assert hold_back_chars(GuardPolicy.default()) == SPACED_SHAPE_REACH
    assert hold_back_chars(policy) == len(long_phrase.strip()) + 1
    vault = PseudonymVault()
    vault.remember("[" + "X" * 150 + "_1]", "value")
    assert hold_back_chars(GuardPolicy.default(), vault) > SPACED_SHAPE_REACH


def test_the_size_limit_blocks_mid_stream() -> None:
    engine = GuardEngine(GuardPolicy.from_mapping({"max_output_chars": 300}))
    released, blocked, final = _stream(engine, _chunks("word " * 100, 10))
    assert blocked and len("".join(released)) <= 300
    assert final.verdict is not None and final.verdict.blocked


def test_a_policy_blocking_on_grounding_holds_the_whole_completion() -> None:
    engine = GuardEngine(GuardPolicy.from_mapping({"output_actions": {"GROUNDING": "block"}}))
    guard = StreamingOutputGuard(engine, None, "", ["The refund window is 30 days."], query="refund window?")
    assert all(guard.feed(d).text == "" for d in _chunks("The refund window is 30 days. " * 10, 7))
    final = guard.finish()
    assert final.scan is not None and final.scan.buffered_reason is not None
    expected = engine.guard_output(
        "The refund window is 30 days. " * 10, None, "", ["The refund window is 30 days."], query="refund window?"
    )
    assert final.text == expected.text and final.blocked == expected.blocked


def test_finish_reports_the_non_streamed_verdict_for_the_audit() -> None:
    text = "write to bob@example.com or carol@example.com, and bob@example.com again " + "x " * 100
    _, blocked, final = _stream(DEFAULT, _chunks(text, 3))
    expected = DEFAULT.guard_output(text)
    assert not blocked and final.verdict is not None
    assert final.verdict.action is Action.REDACT is expected.action
    assert final.verdict.redacted_text == expected.redacted_text
    assert final.scan is not None and final.scan.chars_received == len(text)


def test_cost_is_linear_in_the_completion_length() -> None:
    sentence = "The quarterly report shows steady growth; contact ops at ops-team@example.com for details. "

    def cost(total: int) -> float:
        text = (sentence * (total // len(sentence) + 1))[:total]
        best = float("inf")
        for _ in range(3):
            guard = StreamingOutputGuard(DEFAULT)
            started = time.perf_counter()
            for delta in _chunks(text, 50):
                guard.feed(delta)
            guard.finish()
            best = min(best, time.perf_counter() - started)
        return best

    small, large = cost(50_000), cost(200_000)
    assert large / small < 4 * 3, f"50 KB: {small:.3f}s, 200 KB: {large:.3f}s"
