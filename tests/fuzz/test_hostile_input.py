"""Hostile input against a live `llmops serve`: arbitrary Unicode, lone surrogates, a megabyte,
deep nesting and bytes that are not UTF-8. The promise: a clear 4xx in the OpenAI shape or a
correct answer, never a 5xx.

Bodies are serialized here with `json.dumps` (ASCII escapes), because lone surrogates cannot be
encoded as UTF-8 and must travel as `\\udXXX` escapes, exactly as a JavaScript client sends them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fuzz_settings import fuzz_examples  # type: ignore[import-not-found]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmops.config.env import DEFAULT_MAX_BODY_BYTES

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("fuzz")]

EMAIL = "jane.doe@example.com"
ONE_MB = 1_000_000
MAX_BODY_BYTES = DEFAULT_MAX_BODY_BYTES
HOSTILE_SETTINGS = settings(
    max_examples=fuzz_examples(),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Every code point, surrogates (category Cs) and private use included.
any_unicode = st.text(st.characters(codec=None, exclude_categories=()), max_size=300)


@pytest.fixture(scope="module")
def api(fuzz_stack: dict[str, Any], auth_headers: dict[str, str]) -> Iterator[httpx.Client]:
    headers = {**auth_headers, "Content-Type": "application/json"}
    with httpx.Client(base_url=fuzz_stack["base_url"] + "/", headers=headers, timeout=60) as client:
        yield client


def _post(api: httpx.Client, path: str, body: Any) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode("ascii")
    return api.post(path, content=raw)


def _assert_openai_4xx(response: httpx.Response) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["message"] and error["type"]
    return error


def _as_received(text: str) -> str:
    """The string the server decodes: JSON joins an escaped high+low surrogate pair into one."""
    received: str = json.loads(json.dumps(text))
    return received


def _assert_scan_verdict(response: httpx.Response, text: str) -> dict[str, Any]:
    assert response.status_code == 200, (response.status_code, response.text[:300])
    verdict: dict[str, Any] = response.json()
    assert verdict["action"] in {"allow", "redact", "block"}
    assert isinstance(verdict["redacted_text"], str)
    for finding in verdict["findings"]:
        assert 0 <= finding["start"] <= finding["end"] <= len(text), finding
        assert 0.0 <= finding["score"] <= 1.0
    if verdict["action"] == "allow":
        assert verdict["redacted_text"] == text
    return verdict


# -- POST /v1/guardrails/scan ----------------------------------------------------------------------


@HOSTILE_SETTINGS
@given(text=any_unicode, direction=st.sampled_from(["input", "output"]))
def test_scan_gives_a_verdict_on_any_unicode(api: httpx.Client, text: str, direction: str) -> None:
    response = _post(api, "guardrails/scan", {"text": text, "direction": direction})
    _assert_scan_verdict(response, _as_received(text))


@HOSTILE_SETTINGS
@given(prefix=any_unicode, suffix=any_unicode)
def test_scan_finds_and_redacts_an_email_wherever_it_sits(api: httpx.Client, prefix: str, suffix: str) -> None:
    text = f"{prefix} {EMAIL} {suffix}"
    received = _as_received(text)
    verdict = _assert_scan_verdict(_post(api, "guardrails/scan", {"text": text}), received)
    assert verdict["action"] in {"redact", "block"}
    emails = [f for f in verdict["findings"] if f["type"] == "EMAIL"]
    # Offsets are into the caller's original text, whatever Unicode folding happened before detection.
    assert any(received[f["start"] : f["end"]] == EMAIL for f in emails), verdict["findings"]
    assert EMAIL not in verdict["redacted_text"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"text": "\\ud800"}',
        b'{"text": "\\udfff lone low, then a pair \\ud83d\\ude00, then high at the end \\udbff"}',
        b'{"text": "reversed pair \\ude00\\ud83d and mail jane.doe@example.com"}',
        b'{"text": "nul \\u0000 and bidi \\u202e and tag \\udb40\\udc41"}',
        b'{"text": "x", "direction": "output", "context": ["\\ud800"], "query": "\\udc00"}',
    ],
    ids=["lone-high", "mixed", "reversed-pair-with-email", "controls", "surrogates-in-context"],
)
def test_scan_survives_invalid_surrogate_escapes(api: httpx.Client, raw: bytes) -> None:
    response = _post(api, "guardrails/scan", raw)
    if response.status_code != 200:
        _assert_openai_4xx(response)
        return
    _assert_scan_verdict(response, json.loads(raw)["text"])


def test_scan_of_a_megabyte_is_a_verdict_or_413(api: httpx.Client) -> None:
    text = ("Contact jane.doe@example.com or call. " * (ONE_MB // 38 + 1))[:ONE_MB]
    response = _post(api, "guardrails/scan", {"text": text})
    if response.status_code == 413:
        assert _assert_openai_4xx(response)["code"] == "request_too_large"
        return
    verdict = _assert_scan_verdict(response, text)
    # Above the policy's max_input_chars the text is refused whole, without echoing any of it.
    assert verdict["action"] == "block"
    assert [f["type"] for f in verdict["findings"]] == ["INPUT_TOO_LARGE"]
    assert verdict["redacted_text"] == ""


def test_scan_body_over_the_limit_is_413(api: httpx.Client) -> None:
    response = _post(api, "guardrails/scan", {"text": "a" * (MAX_BODY_BYTES + 1)})
    assert response.status_code == 413
    assert _assert_openai_4xx(response)["code"] == "request_too_large"


# -- nesting and encoding, on both body routes ----------------------------------------------------


def _chat_with_content(content_json: str) -> bytes:
    return ('{"model": "chat-default", "messages": [{"role": "user", "content": ' + content_json + "}]}").encode()


NESTING_DEPTH = 5000

SHALLOW_BODIES = {
    "chat-nested-list-content": _chat_with_content("[" * 50 + "]" * 50),
    "chat-part-with-nested-extra": _chat_with_content(
        '[{"type": "text", "text": "hi", "extra": ' + '{"a": ' * 50 + "1" + "}" * 50 + "}]"
    ),
    "chat-parts-nested-in-parts": _chat_with_content('[{"type": "text", "text": [[[["hi"]]]]}]'),
}

DEEP_BODIES = {
    "chat-deep-list-content": _chat_with_content("[" * NESTING_DEPTH + "]" * NESTING_DEPTH),
    "chat-part-with-deep-extra": _chat_with_content(
        '[{"type": "text", "text": "hi", "extra": ' + '{"a": ' * NESTING_DEPTH + "1" + "}" * NESTING_DEPTH + "}]"
    ),
    "scan-deep-text": ('{"text": ' + "[" * NESTING_DEPTH + "]" * NESTING_DEPTH + "}").encode(),
}

NOT_UTF8 = {
    "scan-latin1-bytes": b'{"text": "caf\xe9"}',
    "chat-garbage-bytes": b"\xff\xfe\x00garbage",
}


@pytest.mark.parametrize("raw", SHALLOW_BODIES.values(), ids=SHALLOW_BODIES.keys())
def test_nested_content_parts_are_refused_or_answered(api: httpx.Client, raw: bytes) -> None:
    response = _post(api, "chat/completions", raw)
    if response.status_code != 200:
        _assert_openai_4xx(response)


@pytest.mark.parametrize("name", DEEP_BODIES.keys())
def test_deeply_nested_json_is_a_400(api: httpx.Client, name: str) -> None:
    path = "guardrails/scan" if name.startswith("scan") else "chat/completions"
    response = _post(api, path, DEEP_BODIES[name])
    assert _assert_openai_4xx(response)["code"] == "invalid_json"


@pytest.mark.parametrize("name", NOT_UTF8.keys())
def test_body_that_is_not_utf8_is_a_400(api: httpx.Client, name: str) -> None:
    path = "guardrails/scan" if name.startswith("scan") else "chat/completions"
    response = _post(api, path, NOT_UTF8[name])
    assert _assert_openai_4xx(response)["code"] == "invalid_json"


def test_chat_with_a_lone_surrogate_is_not_a_5xx(api: httpx.Client) -> None:
    response = _post(api, "chat/completions", _chat_with_content('"hello \\ud800 there"'))
    if response.status_code != 200:
        _assert_openai_4xx(response)


# -- schema-valid chat bodies the provider refuses ------------------------------------------------

PROVIDER_REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    # OpenAI's range is 0..2 and the documented schema says so; Bedrock Converse allows 0..1.
    "temperature-2": ({"temperature": 2}, "temperature"),
    "empty-stop-sequence": ({"stop": [""]}, "stop"),
    "empty-content": ({"messages": [{"role": "user", "content": ""}]}, "messages[0].content"),
    "empty-parts": ({"messages": [{"role": "user", "content": []}]}, "messages[0].content"),
    "assistant-first": (
        {"messages": [{"role": "assistant", "content": "Hi!"}, {"role": "user", "content": "Hello"}]},
        "messages",
    ),
}


@pytest.mark.parametrize("name", PROVIDER_REFUSED.keys())
def test_schema_valid_chat_is_answered_or_refused_naming_the_param(api: httpx.Client, name: str) -> None:
    fields, param = PROVIDER_REFUSED[name]
    body = {"model": "chat-default", "messages": [{"role": "user", "content": "hi"}], **fields}
    response = _post(api, "chat/completions", body)
    if response.status_code != 200:
        assert _assert_openai_4xx(response)["param"] == param


# -- numbers the parser refuses, and bodies that are not objects (issue 11 §3, §7) ---------------

LONG_INTEGER = "9" * 5000  # beyond Python's 4,300-digit int-from-string limit
NOT_PARSED: dict[str, tuple[str, bytes, str]] = {
    "chat-max-tokens": (
        "chat/completions",
        b'{"model": "chat-default", "messages": [{"role": "user", "content": "hi"}], "max_tokens": '
        + LONG_INTEGER.encode()
        + b"}",
        "invalid_value",
    ),
    "chat-unknown-field": (
        "chat/completions",
        b'{"model": "chat-default", "messages": [], "x": [-' + LONG_INTEGER.encode() + b"]}",
        "invalid_value",
    ),
    "feedback-score": ("feedback", b'{"request_id": "r", "score": ' + LONG_INTEGER.encode() + b"}", "invalid_value"),
    "scan-seed": ("guardrails/scan", b'{"text": "hi", "seed": ' + LONG_INTEGER.encode() + b"}", "invalid_value"),
    "chat-nan": ("chat/completions", b'{"model": "chat-default", "messages": [], "temperature": NaN}', "invalid_json"),
    "chat-empty": ("chat/completions", b"", "invalid_json"),
    "chat-null": ("chat/completions", b"null", "invalid_json"),
    "feedback-array": ("feedback", b"[]", "invalid_json"),
}


@pytest.mark.parametrize("name", NOT_PARSED.keys())
def test_what_the_parser_refuses_is_a_400_with_a_request_id(api: httpx.Client, name: str) -> None:
    path, raw, code = NOT_PARSED[name]
    response = _post(api, path, raw)
    assert response.status_code == 400, response.text[:300]
    assert _assert_openai_4xx(response)["code"] == code
    assert response.headers["x-request-id"]
