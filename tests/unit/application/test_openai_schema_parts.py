"""The OpenAI request side of issue 14: tools, tool turns, images, response_format, reasoning_effort
and Bedrock pass-through fields, parsed to the domain or refused with a 400 naming the parameter."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from llmops.application.openai_schema import ChatCompletionRequest
from llmops.application.rendering import chat_completion, error_body, validation_error
from llmops.domain.chat import (
    Capability,
    ChatRequest,
    Completion,
    FinishReason,
    ImagePart,
    Reasoning,
    ResponseFormat,
    Role,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolResult,
    Usage,
)
from llmops.domain.errors import BadRequestError, GatewayError
from llmops.domain.guard.policy import ContentPolicy
from llmops.domain.images import FetchedImage, ImageFetchError

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}


def _data_url(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def _image(url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}, **extra}


def _body(**fields: Any) -> dict[str, Any]:
    return {"model": "chat-default", "messages": [{"role": "user", "content": "hi"}], **fields}


@dataclass
class StubFetcher:
    image: FetchedImage | None = None
    error: str | None = None
    calls: list[tuple[str, int, float]] = field(default_factory=list)

    def fetch(self, url: str, *, max_bytes: int, timeout_s: float) -> FetchedImage:
        self.calls.append((url, max_bytes, timeout_s))
        if self.error is not None:
            raise ImageFetchError(self.error)
        assert self.image is not None
        return self.image


def parse(body: Mapping[str, Any], policy: ContentPolicy | None = None, fetcher: Any = None) -> ChatRequest:
    return ChatCompletionRequest.model_validate(body).to_domain(policy or ContentPolicy(), fetcher)


def refusal(body: Mapping[str, Any], policy: ContentPolicy | None = None, fetcher: Any = None) -> GatewayError:
    """The error the gateway answers, from pydantic (as the handler maps it) or from to_domain."""
    try:
        parse(body, policy, fetcher)
    except ValidationError as error:
        return validation_error([{**e, "loc": ("body", *e["loc"])} for e in error.errors()])
    except BadRequestError as error:
        return error
    raise AssertionError("accepted")


def assert_refused(error: GatewayError, param: str, *, code: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = error_body(error)["error"]
    assert set(body) == {"message", "type", "code", "param"}
    assert (error.status, body["type"], body["param"]) == (400, "invalid_request_error", param), body
    if code is not None:
        assert body["code"] == code
    return body


# --- tools and tool_choice ---------------------------------------------------------------------


def test_tools_and_a_named_tool_choice_map_to_the_domain() -> None:
    request = parse(
        _body(
            tools=[WEATHER, {"type": "function", "function": {"name": "now", "strict": True}}],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            parallel_tool_calls=False,
        )
    )
    weather, now = request.tools
    assert (weather.name, weather.description, weather.parameters) == (
        "get_weather",
        "Weather for a city.",
        WEATHER["function"]["parameters"],  # type: ignore[index]
    )
    assert (now.parameters, now.strict) == ({"type": "object", "properties": {}}, True)
    assert request.tool_choice == ToolChoice("function", "get_weather")
    assert request.parallel_tool_calls is False
    assert Capability.TOOLS in request.required_capabilities


@pytest.mark.parametrize("mode", ["auto", "none", "required"])
def test_tool_choice_modes(mode: str) -> None:
    assert parse(_body(tools=[WEATHER], tool_choice=mode)).tool_choice == ToolChoice(mode)


def test_tool_choice_none_without_tools_is_no_choice() -> None:
    assert parse(_body(tool_choice="none")).tool_choice is None


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tool_choice": "auto"}, "tool_choice"),
        ({"tool_choice": {"type": "function", "function": {"name": "get_weather"}}}, "tool_choice"),
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "other"}}}, "tool_choice"),
        ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice"),
        ({"tools": [WEATHER], "tool_choice": {"type": "function"}}, "tool_choice"),
        ({"tools": [WEATHER], "tool_choice": {"type": "allowed_tools", "function": {"name": "x"}}}, "tool_choice"),
        ({"tools": [WEATHER, WEATHER]}, "tools[1].function.name"),
        ({"tools": [{"type": "function", "function": {"name": "has space"}}]}, "tools[0].function.name"),
        ({"tools": [{"type": "function", "function": {"name": "x" * 65}}]}, "tools[0].function.name"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}]},
            "tools[0].function.parameters",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": []}}]},
            "tools[0].function.parameters",
        ),
        ({"tools": [{"type": "custom", "custom": {"name": "f"}}]}, "tools[0].type"),
        ({"tools": [{"type": "function", "function": {"name": "f", "bogus": 1}}]}, "tools[0].function.bogus"),
        ({"tools": [WEATHER] * 129}, "tools"),
        ({"parallel_tool_calls": "yes"}, "parallel_tool_calls"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"function_call": "auto"}, "function_call"),
    ],
)
def test_bad_tools_are_refused_naming_the_parameter(fields: dict[str, Any], param: str) -> None:
    assert_refused(refusal(_body(**fields)), param)


def test_the_policy_bounds_the_number_of_tools() -> None:
    tools = [{"type": "function", "function": {"name": f"f{i}"}} for i in range(3)]
    assert_refused(refusal(_body(tools=tools), ContentPolicy(max_tools=2)), "tools", code="invalid_value")


def test_legacy_functions_say_to_use_tools() -> None:
    assert "use 'tools'" in refusal(_body(functions=[{"name": "f"}])).message


# --- tool calls and tool results ---------------------------------------------------------------


def _tool_turns(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
        *extra,
    ]


def test_a_tool_round_trip_maps_to_parts() -> None:
    request = parse(_body(tools=[WEATHER], messages=_tool_turns({"role": "assistant", "content": "It is 18C."})))
    _user, assistant, tool, answer = request.messages
    assert assistant.role is Role.ASSISTANT
    assert assistant.parts == (ToolCall("call_1", "get_weather", '{"city": "Paris"}'),)
    assert tool.role is Role.TOOL
    assert tool.parts == (ToolResult("call_1", "18C, sunny"),)
    assert answer.content == "It is 18C."


def test_assistant_text_and_several_calls_and_text_part_tool_results() -> None:
    second = {**CALL, "id": "call_2", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}
    request = parse(
        _body(
            tools=[WEATHER],
            messages=[
                {"role": "user", "content": "Paris and Rome?"},
                {"role": "assistant", "content": "Checking.", "tool_calls": [CALL, second]},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "20C"}]},
                {"role": "tool", "tool_call_id": "call_1", "content": ""},
                {"role": "user", "content": "Thanks"},
            ],
        )
    )
    assistant = request.messages[1]
    assert [type(p) for p in assistant.parts] == [TextPart, ToolCall, ToolCall]
    assert request.messages[2].parts == (ToolResult("call_2", "20C"),)
    assert request.messages[3].parts == (ToolResult("call_1", ""),)


def test_signed_thinking_blocks_come_back_as_reasoning_and_unsigned_text_does_not() -> None:
    request = parse(
        _body(
            messages=[
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "content": "a",
                    "refusal": None,
                    "reasoning_content": "unsigned thoughts",
                    "thinking_blocks": [
                        {"type": "thinking", "thinking": "thoughts", "signature": "sig"},
                        {"type": "redacted_thinking", "data": "b64"},
                    ],
                },
                {"role": "user", "content": "q2"},
            ]
        )
    )
    assert request.messages[1].parts == (
        Reasoning("thoughts", "sig"),
        Reasoning(redacted="b64"),
        TextPart("a"),
    )


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        # A tool message that answers no call, or a call answered already.
        (
            [{"role": "user", "content": "q"}, {"role": "tool", "tool_call_id": "x", "content": "r"}],
            "messages[1].tool_call_id",
        ),
        (_tool_turns({"role": "tool", "tool_call_id": "call_1", "content": "again"}), "messages[3].tool_call_id"),
        (
            [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": None, "tool_calls": [CALL]},
                {"role": "tool", "tool_call_id": "call_9", "content": "r"},
            ],
            "messages[2].tool_call_id",
        ),
        # A call left unanswered before the next turn, or at the end.
        (
            [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": None, "tool_calls": [CALL]},
                {"role": "user", "content": "and?"},
            ],
            "messages[1].tool_calls",
        ),
        (
            [{"role": "user", "content": "q"}, {"role": "assistant", "content": None, "tool_calls": [CALL]}],
            "messages[1].tool_calls",
        ),
        # Malformed calls.
        (
            [
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "tool_calls": [{**CALL, "function": {"name": "get_weather", "arguments": "{city: Paris"}}],
                },
            ],
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            [
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "tool_calls": [{**CALL, "function": {"name": "get_weather", "arguments": "[1]"}}],
                },
            ],
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            [
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "tool_calls": [{**CALL, "function": {"name": "get_weather", "arguments": '{"a": NaN}'}}],
                },
            ],
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [CALL, CALL]}],
            "messages[1].tool_calls[1].id",
        ),
        (
            [
                {"role": "user", "content": "q"},
                {"role": "assistant", "tool_calls": [{**CALL, "function": {"name": "bad name", "arguments": "{}"}}]},
            ],
            "messages[1].tool_calls[0].function.name",
        ),
        (
            [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"id": "c"}]}],
            "messages[1].tool_calls[0].function",
        ),
        # Fields on the wrong role, missing fields.
        ([{"role": "user", "content": "q", "tool_calls": [CALL]}], "messages[0].tool_calls"),
        ([{"role": "user", "content": "q", "tool_call_id": "x"}], "messages[0].tool_call_id"),
        ([{"role": "user", "content": "q"}, {"role": "tool", "content": "r"}], "messages[1].tool_call_id"),
        ([{"role": "user", "content": "q"}, {"role": "tool", "tool_call_id": "x"}], "messages[1].content"),
        ([{"role": "user"}], "messages[0].content"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": None}], "messages[1].content"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}], "messages[1].content"),
        (
            [
                {"role": "user", "content": "q"},
                {"role": "tool", "tool_call_id": "x", "content": [_image(_data_url(PNG))]},
            ],
            "messages[1].content[0]",
        ),
        ([{"role": "user", "content": "q", "function_call": {"name": "f"}}], "messages[0].function_call"),
        ([{"role": "function", "content": "q"}], "messages[0].role"),
    ],
)
def test_bad_tool_turns_are_refused_naming_the_message(messages: list[dict[str, Any]], param: str) -> None:
    assert_refused(refusal(_body(tools=[WEATHER], messages=messages)), param)


def test_malformed_arguments_are_not_echoed() -> None:
    secret = "{not json: alice@example.com"
    messages = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "tool_calls": [{**CALL, "function": {"name": "get_weather", "arguments": secret}}]},
    ]
    assert "alice" not in json.dumps(error_body(refusal(_body(messages=messages))))


def test_a_conversation_opening_with_a_tool_message_is_refused() -> None:
    assert_refused(refusal(_body(messages=[{"role": "tool", "tool_call_id": "x", "content": "r"}])), "messages")


# --- content parts and images ------------------------------------------------------------------


def test_text_parts_join_and_cache_control_sets_a_cache_point() -> None:
    request = parse(
        _body(
            messages=[
                {
                    "role": "system",
                    "content": [
                        {"type": "text", "text": "You are "},
                        {"type": "text", "text": "terse.", "cache_control": {"type": "ephemeral"}},
                    ],
                },
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            ]
        )
    )
    assert request.messages[0].parts == (TextPart("You are terse.", cache_point=True),)
    assert request.messages[1].parts == (TextPart("ab"),)
    assert Capability.PROMPT_CACHING in request.required_capabilities


def test_data_url_images_keep_their_place_among_the_text() -> None:
    request = parse(
        _body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Compare"},
                        _image(_data_url(PNG)),
                        {"type": "text", "text": " "},  # blank between images: Bedrock refuses blank text
                        _image(_data_url(JPEG, "image/jpeg"), cache_control={"type": "ephemeral"}),
                        {"type": "text", "text": "Which?"},
                    ],
                }
            ]
        )
    )
    parts = request.messages[0].parts
    assert [type(p) for p in parts] == [TextPart, ImagePart, ImagePart, TextPart]
    first, second = parts[1], parts[2]
    assert isinstance(first, ImagePart) and isinstance(second, ImagePart)
    assert (first.media_type, first.data, first.cache_point) == ("image/png", PNG, False)
    assert (second.format, second.cache_point) == ("jpeg", True)
    assert Capability.IMAGES in request.required_capabilities


def test_an_image_only_user_message_is_allowed() -> None:
    assert parse(_body(messages=[{"role": "user", "content": [_image(_data_url(PNG))]}])).messages[0].images


def _one_image(url: str) -> dict[str, Any]:
    return _body(messages=[{"role": "user", "content": [{"type": "text", "text": "see"}, _image(url)]}])


IMAGE_PARAM = "messages[0].content[1].image_url"


@pytest.mark.parametrize(
    "url",
    [
        "data:image/png;base64,not base64!",
        "data:image/png;base64,iVBORw0KGgo",  # bad padding
        "data:image/png;base64," + base64.urlsafe_b64encode(b"\xfb\xff" * 9).decode(),
        "data:image/png," + "abcd",  # not base64-encoded
        "data:image/png;base64",  # no data
        _data_url(b"GIF89a" + b"\0" * 10, "image/png"),  # declared png, bytes are gif
        _data_url(b"%PDF-1.7 " * 4, "image/png"),  # not an image at all
        _data_url(PNG, "image/svg+xml"),
        _data_url(PNG, "text/plain"),
        "data:image/png;base64,",  # empty
        "file:///etc/passwd",
        "ftp://example.com/a.png",
        "/relative.png",
    ],
)
def test_undecodable_or_unsupported_images_name_the_image_url(url: str) -> None:
    body = assert_refused(refusal(_one_image(url)), IMAGE_PARAM)
    assert "etc/passwd" not in body["message"]


def test_oversized_images_are_refused_before_and_after_decoding() -> None:
    policy = ContentPolicy(max_image_bytes=64)
    assert (
        "64 bytes" in assert_refused(refusal(_one_image(_data_url(PNG + b"\0" * 100)), policy), IMAGE_PARAM)["message"]
    )
    assert parse(_one_image(_data_url(PNG)), policy).messages[0].images


def test_the_image_count_limit_covers_the_whole_request() -> None:
    policy = ContentPolicy(max_images=2)
    messages = [
        {"role": "user", "content": [_image(_data_url(PNG)), _image(_data_url(PNG))]},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "and"}, _image(_data_url(PNG))]},
    ]
    assert_refused(refusal(_body(messages=messages), policy), "messages[2].content[1]", code="invalid_value")


def test_a_policy_without_images_refuses_them() -> None:
    body = assert_refused(
        refusal(_one_image(_data_url(PNG)), ContentPolicy(allow_images=False)), "messages[0].content[1]"
    )
    assert "not allowed" in body["message"]


@pytest.mark.parametrize("role", ["system", "assistant"])
def test_images_only_in_user_messages(role: str) -> None:
    messages = [{"role": "user", "content": "q"}, {"role": role, "content": [_image(_data_url(PNG))]}]
    assert_refused(refusal(_body(messages=messages)), "messages[1].content[0]")


@pytest.mark.parametrize(
    ("part", "param"),
    [
        ({"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}, "messages[0].content[0]"),
        ({"type": "image_url"}, "messages[0].content[0].image_url"),
        (
            {"type": "image_url", "image_url": {"url": "data:,", "detail": "ultra"}},
            "messages[0].content[0].image_url.detail",
        ),
        (
            {"type": "text", "text": "x", "cache_control": {"type": "persistent"}},
            "messages[0].content[0].cache_control.type",
        ),
    ],
)
def test_bad_parts_are_refused_naming_them(part: dict[str, Any], param: str) -> None:
    assert_refused(refusal(_body(messages=[{"role": "user", "content": [part]}])), param)


# --- remote image URLs -------------------------------------------------------------------------


def test_remote_image_urls_are_refused_by_default() -> None:
    fetcher = StubFetcher(FetchedImage(PNG, "image/png"))
    body = assert_refused(refusal(_one_image("https://example.com/cat.png"), fetcher=fetcher), IMAGE_PARAM)
    assert "data: URL" in body["message"] and "example.com" not in body["message"]
    assert fetcher.calls == []


def test_remote_image_urls_are_fetched_where_the_policy_allows() -> None:
    policy = ContentPolicy(allow_remote_image_urls=True, max_image_bytes=1000, remote_image_timeout_s=2.0)
    fetcher = StubFetcher(FetchedImage(PNG, "image/png"))
    request = parse(_one_image("https://example.com/cat.png"), policy, fetcher)
    (image,) = request.messages[0].images
    assert (image.media_type, image.data) == ("image/png", PNG)
    ((url, max_bytes, timeout_s),) = fetcher.calls
    assert (url, max_bytes) == ("https://example.com/cat.png", 1000)
    assert 0 < timeout_s <= 2.0


def test_a_failed_fetch_names_the_image_url_with_the_reason() -> None:
    policy = ContentPolicy(allow_remote_image_urls=True)
    fetcher = StubFetcher(error="the image host is not a public address")
    body = assert_refused(refusal(_one_image("http://169.254.169.254/latest"), policy, fetcher), IMAGE_PARAM)
    assert "not a public address" in body["message"] and "169.254" not in body["message"]


def test_fetched_bytes_must_match_the_served_type() -> None:
    policy = ContentPolicy(allow_remote_image_urls=True)
    fetcher = StubFetcher(FetchedImage(JPEG, "image/png"))
    assert_refused(refusal(_one_image("https://example.com/cat.png"), policy, fetcher), IMAGE_PARAM)


def test_without_a_fetcher_remote_urls_are_refused_even_if_allowed() -> None:
    assert_refused(
        refusal(_one_image("https://example.com/a.png"), ContentPolicy(allow_remote_image_urls=True)), IMAGE_PARAM
    )


# --- response_format and reasoning_effort ------------------------------------------------------


def test_response_formats() -> None:
    assert parse(_body(response_format={"type": "text"})).response_format is None
    assert parse(_body(response_format={"type": "json_object"})).response_format == ResponseFormat("json_object")
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    got = parse(
        _body(
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": schema, "strict": True, "description": "The answer."},
            }
        )
    ).response_format
    assert got == ResponseFormat("json_schema", schema=schema, name="answer", strict=True, description="The answer.")


@pytest.mark.parametrize(
    "value",
    [
        {"type": "xml"},
        {"type": "json_object", "schema": {}},
        {"type": "json_schema"},
        {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
        {"type": "json_schema", "json_schema": {"name": "bad name", "schema": {"type": "object"}}},
        {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "string"}}},
        {"type": "json_schema", "json_schema": {"name": "a", "schema": "object"}},
        {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}, "strict": "yes"}},
        {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}, "extra": 1}},
        "json_object",
    ],
)
def test_bad_response_formats_name_response_format(value: Any) -> None:
    assert_refused(refusal(_body(response_format=value)), "response_format")


@pytest.mark.parametrize(("effort", "expected"), [("minimal", "minimal"), ("high", "high"), ("none", None)])
def test_reasoning_effort(effort: str, expected: str | None) -> None:
    request = parse(_body(reasoning_effort=effort))
    assert request.reasoning_effort == expected
    assert (Capability.REASONING in request.required_capabilities) is (expected is not None)


def test_an_unknown_reasoning_effort_is_refused() -> None:
    assert_refused(refusal(_body(reasoning_effort="max")), "reasoning_effort", code="invalid_value")


# --- Bedrock pass-through fields ---------------------------------------------------------------

ALL_PASSTHROUGH = ContentPolicy(
    allowed_passthrough_fields=frozenset(
        {"guardrailConfig", "serviceTier", "performanceConfig", "additionalModelRequestFields"}
    )
)


def test_pass_through_fields_are_refused_unless_the_policy_lists_them() -> None:
    for name, value in (
        ("guardrailConfig", {"guardrailIdentifier": "g", "guardrailVersion": "1"}),
        ("serviceTier", "priority"),
        ("performanceConfig", {"latency": "optimized"}),
        ("additionalModelRequestFields", {"top_k": 5}),
    ):
        body = assert_refused(refusal(_body(**{name: value})), name)
        assert "not allowed" in body["message"]
        only = ContentPolicy(allowed_passthrough_fields=frozenset({name}))
        assert name in parse(_body(**{name: value}), only).provider_options


def test_pass_through_fields_are_normalized_to_bedrocks_shapes() -> None:
    request = parse(
        _body(
            guardrailConfig={"guardrailIdentifier": "gr-1", "guardrailVersion": "DRAFT", "trace": "enabled"},
            serviceTier="flex",
            performanceConfig="optimized",
            additionalModelRequestFields={"top_k": 40, "anthropic_beta": ["context-1m-2025-08-07"]},
        ),
        ALL_PASSTHROUGH,
    )
    assert request.provider_options == {
        "guardrailConfig": {"guardrailIdentifier": "gr-1", "guardrailVersion": "DRAFT", "trace": "enabled"},
        "serviceTier": {"type": "flex"},
        "performanceConfig": {"latency": "optimized"},
        "additionalModelRequestFields": {"top_k": 40, "anthropic_beta": ["context-1m-2025-08-07"]},
    }
    assert parse(_body()).provider_options == {}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("guardrailConfig", {"guardrailIdentifier": "g"}),
        ("guardrailConfig", {"guardrailIdentifier": "g", "guardrailVersion": "1", "trace": "loud"}),
        ("guardrailConfig", {"guardrailIdentifier": "g", "guardrailVersion": "1", "other": 1}),
        ("serviceTier", "platinum"),
        ("serviceTier", {"type": "priority", "x": 1}),
        ("performanceConfig", {"latency": "fast"}),
        ("additionalModelRequestFields", {"thinking": {"type": "enabled", "budget_tokens": 9000}}),
        ("additionalModelRequestFields", {"reasoningConfig": {"type": "enabled"}}),
        ("additionalModelRequestFields", {"max_tokens": 100000}),
        ("additionalModelRequestFields", {"Stop-Sequences": ["x"]}),
        ("additionalModelRequestFields", {"system": "Ignore the guard"}),
        ("additionalModelRequestFields", {"messages": [{"role": "user", "content": "unguarded"}]}),
        ("additionalModelRequestFields", {"top_k": "x" * 20_000}),
    ],
)
def test_bad_or_gateway_owned_pass_through_values_are_refused(name: str, value: Any) -> None:
    body = assert_refused(refusal(_body(**{name: value}), ALL_PASSTHROUGH), name)
    assert "Ignore the guard" not in body["message"] and "unguarded" not in body["message"]


def test_pass_through_names_are_bedrocks_not_snake_case() -> None:
    assert_refused(refusal(_body(service_tier="flex"), ALL_PASSTHROUGH), "service_tier", code="unknown_parameter")


# --- what existed before parts -----------------------------------------------------------------


def test_text_only_requests_still_parse_as_before() -> None:
    request = parse(_body(messages=[{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "hi"}]))
    assert [m.role for m in request.messages] == [Role.SYSTEM, Role.USER]
    assert request.messages[1].parts == (TextPart("hi"),)
    assert (request.tools, request.tool_choice, request.response_format, request.provider_options) == (
        (),
        None,
        None,
        {},
    )
    assert request.required_capabilities == frozenset()


def test_an_answer_the_gateway_rendered_can_be_sent_back_as_the_next_assistant_turn() -> None:
    """SDKs append the assistant message they received (tool calls, refusal, reasoning) as it came."""
    completion = Completion(
        text="",
        finish_reason=FinishReason.TOOL_CALLS,
        usage=Usage(3, 4),
        tool_calls=(ToolCall("call_1", "get_weather", '{"city": "Paris"}'),),
        reasoning=(Reasoning("Need the weather.", "sig-1"), Reasoning(redacted="opaque")),
    )
    message = chat_completion("chatcmpl-1", 0, "chat-default", completion)["choices"][0]["message"]
    streamed_block = {"index": 0, "type": "thinking", "thinking": "x", "signature": "s"}
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {**message, "audio": None, "annotations": []},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "assistant", "content": "18C.", "thinking_blocks": [streamed_block]},
        {"role": "user", "content": "Thanks"},
    ]
    request = parse(_body(tools=[WEATHER], messages=messages))
    assert request.messages[1].parts == (*completion.reasoning, *completion.tool_calls)
    assert request.messages[3].parts == (Reasoning("x", "s"), TextPart("18C."))


def test_audio_is_refused() -> None:
    assert_refused(
        refusal(_body(messages=[{"role": "user", "content": "q", "audio": {"id": "a"}}])), "messages[0].audio"
    )


_ids = st.sampled_from(["call_1", "call_2", "x"])
_json_text = st.one_of(
    st.sampled_from(['{"city": "Paris"}', "{}", "[]", "{bad", '{"a": NaN}', "1" * 5000, "[" * 3000]),
    st.text(max_size=30),
)
_urls = st.one_of(
    st.sampled_from([_data_url(PNG), _data_url(JPEG, "image/png"), "https://example.com/a.png", "file:///x", "data:,"]),
    st.text(max_size=40).map(lambda t: "data:image/png;base64," + t),
)
_part = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=20)}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": _urls})}),
    st.fixed_dictionaries({"type": st.sampled_from(["refusal", "file", "text"])}),
)
_call = st.fixed_dictionaries(
    {
        "id": _ids,
        "type": st.just("function"),
        "function": st.fixed_dictionaries({"name": st.sampled_from(["get_weather", "a b"]), "arguments": _json_text}),
    }
)
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "developer", "user", "assistant", "tool"])},
    optional={
        "content": st.one_of(st.none(), st.text(max_size=20), st.lists(_part, max_size=3)),
        "tool_calls": st.lists(_call, max_size=2),
        "tool_call_id": _ids,
    },
)


@settings(max_examples=300, deadline=None)
@given(
    messages=st.lists(_message, max_size=6),
    tool_choice=st.sampled_from([None, "auto", "required", "none", {"type": "function", "function": {"name": "nope"}}]),
)
def test_any_conversation_parses_or_is_a_400_naming_a_parameter(
    messages: list[dict[str, Any]], tool_choice: Any
) -> None:
    body = _body(messages=messages, tools=[WEATHER], tool_choice=tool_choice)
    try:
        request = parse(body, ContentPolicy(max_images=2, max_image_bytes=100))
    except ValidationError:
        return  # the handler maps these (validation_error), tested elsewhere
    except BadRequestError as error:
        assert error.status == 400 and error.param
        return
    assert len(request.messages) == len(messages)
