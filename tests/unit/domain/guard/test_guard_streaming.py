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


# -- risk-anchored hold-back: what is held, and for how long -----------------------------------------


def _releases(engine: GuardEngine, deltas: Sequence[str]) -> tuple[list[str], FinalRelease]:
    """What each feed() released (one entry per delta), then the final release."""
    guard = StreamingOutputGuard(engine)
    pieces = [guard.feed(delta).text for delta in deltas]
    return pieces, guard.finish()


def _words_of(text: str) -> list[str]:
    """ " word" deltas, as tokenizers stream them."""
    deltas = [""]
    for is_space, run in itertools.groupby(text, key=str.isspace):
        if deltas[-1] and is_space:
            deltas.append("")
        deltas[-1] += "".join(run)
    return deltas


def test_plain_prose_is_released_at_every_word_boundary() -> None:
    text = "Roses like full sun and deep watering; prune them in early spring, before the buds open. " * 4
    deltas = _chunks(text, 5)
    guard = StreamingOutputGuard(DEFAULT)
    sent = ""
    releases = 0
    for received, delta in enumerate(deltas, start=1):
        piece = guard.feed(delta).text
        sent += piece
        releases += bool(piece)
        if received == 2:
            assert sent, "nothing released after the first two deltas"
        # Only the last complete word and the partial one after it are held.
        held = text[len(sent) : received * 5]
        assert len(held.split()) <= 2, f"held {held!r}"
        assert sent == text[: len(sent)] and (not sent or sent[-1] == " ")
    final = guard.finish()
    assert sent + final.text == text
    assert releases >= len(deltas) * 3 // 4
    assert final.scan is not None and final.scan.max_held_chars <= 20


def test_a_number_is_held_until_it_can_no_longer_become_a_card_phone_or_ssn() -> None:
    text = "Your card is 4111 1111 1111 1111 and it expires soon. " + "Thanks for asking about it today. " * 6
    pieces, final = _releases(DEFAULT, _words_of(text))
    sent = "".join(pieces)
    assert not any(group in piece for piece in pieces for group in ("4111", "1111")), "a group went out alone"
    assert sent + final.text == DEFAULT.guard_output(text).text and "[CREDIT_CARD_1]" in sent

    # A bare 9-digit number becomes an SSN through a context phrase after it: held until that is ruled out.
    text = "The number 536221234 is on file for social security purposes. " + "More text follows. " * 8
    pieces, final = _releases(DEFAULT, _chunks(text, 4))
    assert "536" not in "".join(pieces)
    assert "".join(pieces) + final.text == DEFAULT.guard_output(text).text
    assert "[US_SSN_1]" in "".join(pieces)

    # A context phrase after a number makes it a finding only if no candidate follows the phrase closely
    # (pii_detectors._near_context): the number is held until that is decided too.
    text = "Ref 123456789 is my passport number, and the new passport is 987654321 now. " + "Done. " * 20
    expected = DEFAULT.guard_output(text).text
    assert "123456789" in expected and "987654321" not in expected
    for deltas in (_chunks(text, 5), _words_of(text), list(text)):
        pieces, final = _releases(DEFAULT, deltas)
        assert "".join(pieces) + final.text == expected
        assert final.scan is not None and not final.scan.diverged

    # Numbers that stay numbers are released once their reach has passed, well before the end.
    text = "Order 42 shipped on time. " + "The parcel is on its way to you now. " * 6
    guard = StreamingOutputGuard(DEFAULT)
    sent = ""
    received = 0
    for delta in _chunks(text, 5):
        received += len(delta)
        sent += guard.feed(delta).text
        if "42" in sent:
            break
    assert "42" in sent and received - len("Order 42") <= 48 + 16 + 10


def test_a_phone_number_followed_by_its_context_word_is_redacted_whole() -> None:
    text = "Reach us on (415) 555-0132 office hours only. " + "We answer quickly. " * 6
    for deltas in (_chunks(text, 3), _words_of(text), list(text)):
        pieces, final = _releases(DEFAULT, deltas)
        assert "".join(pieces) + final.text == DEFAULT.guard_output(text).text
        assert not any("415" in piece or "0132" in piece for piece in pieces)


def test_a_prefix_of_a_denied_phrase_is_held_until_the_phrase_is_ruled_out() -> None:
    text = "Our project nightingale is secret, but the project plan is public. " + "Ask me anything else. " * 5
    guard = StreamingOutputGuard(LOG_ONLY_DENY)  # redacts the phrase: the stream goes on
    sent = ""
    for delta in _words_of(text):
        sent += guard.feed(delta).text
        if len(sent) > len("Our "):
            assert sent.startswith("Our [DENIED_WORD_1]"), f"released {sent!r} before the phrase was whole"
    final = guard.finish()
    assert sent + final.text == LOG_ONLY_DENY.guard_output(text).text
    assert "project plan" in sent, "the harmless 'project' is released once 'plan' rules the phrase out"
    for deltas in (_chunks(text, 5), _chunks(text, 3), list(text)):
        pieces, final = _releases(LOG_ONLY_DENY, deltas)
        assert "".join(pieces) + final.text == LOG_ONLY_DENY.guard_output(text).text
        assert final.scan is not None and not final.scan.diverged


def test_spaced_shapes_are_held_whole() -> None:
    pem = (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n"
        "-----END RSA PRIVATE KEY-----"
    )
    for shape, placeholder in [
        ("contact john @ example.com", "[EMAIL_1]"),
        ("write to john dot doe [at] example dot com", "[EMAIL_1]"),
        ("NINO AB 12 34 56 C", "[UK_NINO_1]"),
        ("born on 12 March 1990", "[DATE_OF_BIRTH_1]"),
        ("IBAN GB82 WEST 1234 5698 7654 32", "[IBAN_CODE_1]"),
        (pem, "[PRIVATE_KEY_1]"),
    ]:
        text = "Sure, here it is: " + shape + " and that is all. " + "Nothing else to add. " * 6
        expected = DEFAULT.guard_output(text).text
        assert placeholder in expected, shape
        for deltas in (_words_of(text), _chunks(text, 3)):
            pieces, final = _releases(DEFAULT, deltas)
            assert "".join(pieces) + final.text == expected, shape
            assert final.scan is not None and not final.scan.diverged


def test_cost_is_linear_for_one_character_deltas_without_whitespace() -> None:
    def cost(total: int) -> tuple[float, int]:
        text = ("aB3xY9qZ" * (total // 8 + 1))[:total]
        best, released = float("inf"), 0
        for _ in range(3):
            guard = StreamingOutputGuard(DEFAULT)
            started = time.perf_counter()
            released = sum(len(guard.feed(char).text) for char in text)
            guard.finish()
            best = min(best, time.perf_counter() - started)
        return best, released

    (small, _), (large, released) = cost(25_000), cost(100_000)
    assert large / small < 4 * 3, f"25 KB: {small:.3f}s, 100 KB: {large:.3f}s"
    assert released > 50_000, "a run longer than LONG_TOKEN_CHARS is split and streamed"
