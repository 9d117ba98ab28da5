"""What applications send, through `llmops serve` with the official openai SDK and LangChain: tools
(streamed and not), images, structured output and reasoning, on a Bedrock alias and a SageMaker
alias; and the 400s that name the parameter a caller got wrong."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any

import openai
import pytest
from pydantic import BaseModel

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local_stack")]

# A Bedrock alias (Claude 3.5 Haiku, Converse toolConfig) and a SageMaker alias (vLLM's OpenAI API).
TOOL_ALIASES = ["chat-default", "llama3-8b"]
# Vision: Nova Lite on Bedrock, Qwen2.5-VL on a SageMaker vLLM endpoint.
IMAGE_ALIASES = ["nova-lite", "qwen2.5-vl-7b"]

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}
ASK = [{"role": "user", "content": "What is the weather in Paris right now?"}]


def _png(width: int = 2, height: int = 2) -> bytes:
    """A valid RGB PNG, built by hand so the test needs no imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _data_url(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def _bad_request(error: pytest.ExceptionInfo[openai.BadRequestError]) -> dict[str, Any]:
    body = error.value.body
    assert isinstance(body, dict)
    return body.get("error", body)  # the SDK unwraps {"error": ...} on some versions


@pytest.mark.parametrize("alias", TOOL_ALIASES)
def test_a_tool_call_round_trip(client: openai.OpenAI, alias: str) -> None:
    first = client.chat.completions.create(model=alias, messages=ASK, tools=[WEATHER_TOOL], tool_choice="required")
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls, "the model was required to call a tool"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert set(arguments) >= {"city", "unit"} and arguments["unit"] in ("celsius", "fahrenheit")

    second = client.chat.completions.create(
        model=alias,
        tools=[WEATHER_TOOL],
        messages=[
            *ASK,
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21, "sky": "clear"}'},
        ],
    )
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content


@pytest.mark.parametrize("alias", TOOL_ALIASES)
def test_streamed_tool_calls_assemble_as_the_sdk_expects(client: openai.OpenAI, alias: str) -> None:
    with client.chat.completions.stream(
        model=alias, messages=ASK, tools=[WEATHER_TOOL], tool_choice="required"
    ) as stream:
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls and choice.message.tool_calls[0].function.name == "get_weather"
    assert json.loads(choice.message.tool_calls[0].function.arguments)["city"]


@pytest.mark.parametrize("alias", TOOL_ALIASES)
def test_structured_output_follows_the_schema(client: openai.OpenAI, alias: str) -> None:
    class City(BaseModel):
        name: str
        population: int

    parsed = client.beta.chat.completions.parse(
        model=alias, messages=[{"role": "user", "content": "Name a large city."}], response_format=City
    )
    city = parsed.choices[0].message.parsed
    assert isinstance(city, City)


@pytest.mark.parametrize("alias", IMAGE_ALIASES)
@pytest.mark.parametrize("stream", [False, True])
def test_an_image_is_carried(client: openai.OpenAI, alias: str, stream: bool) -> None:
    messages: Any = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What colour is this picture?"},
                {"type": "image_url", "image_url": {"url": _data_url(_png())}},
            ],
        }
    ]
    if stream:
        text = "".join(
            c.choices[0].delta.content or ""
            for c in client.chat.completions.create(model=alias, messages=messages, stream=True)
            if c.choices
        )
    else:
        text = client.chat.completions.create(model=alias, messages=messages).choices[0].message.content or ""
    assert text


def test_reasoning_comes_back_as_reasoning_content(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model="claude-sonnet", messages=[{"role": "user", "content": "Is 97 prime?"}], reasoning_effort="low"
    )
    message = answer.choices[0].message.model_dump()
    assert message.get("reasoning_content")
    chunks = list(
        client.chat.completions.create(
            model="claude-sonnet",
            messages=[{"role": "user", "content": "Is 97 prime?"}],
            reasoning_effort="low",
            stream=True,
        )
    )
    streamed = "".join((c.choices[0].delta.model_dump().get("reasoning_content") or "") for c in chunks if c.choices)
    assert streamed


def test_an_alias_without_the_capability_anywhere_refuses_naming_it(client: openai.OpenAI) -> None:
    # Only Claude Sonnet reasons; Llama 3 on SageMaker and its Nova Lite fallback do not.
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model="llama3-8b", messages=ASK, reasoning_effort="low")
    body = _bad_request(error)
    assert body["param"] == "reasoning_effort" and "reasoning" in body["message"]


def test_an_image_on_a_text_only_target_goes_to_its_capable_fallback(client: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": _data_url(_png())}}]}]
    raw = client.chat.completions.with_raw_response.create(model="mistral-7b", messages=messages)
    assert raw.headers["x-llmops-target"] == "bedrock:amazon.nova-lite-v1:0"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        (
            {
                "messages": [
                    *ASK,
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{"}}
                        ],
                    },
                    {"role": "tool", "tool_call_id": "call_1", "content": "{}"},
                ]
            },
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            {"messages": [*ASK, {"role": "tool", "tool_call_id": "call_unknown", "content": "{}"}]},
            "messages[1].tool_call_id",
        ),
    ],
)
def test_bad_tool_input_names_the_parameter(client: openai.OpenAI, change: dict[str, Any], param: str) -> None:
    request: dict[str, Any] = {"model": "chat-default", "messages": ASK, "tools": [WEATHER_TOOL], **change}
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(**request)
    assert _bad_request(error)["param"] == param


@pytest.mark.parametrize(
    "url",
    [
        "data:image/png;base64,not-base64!!",  # undecodable
        _data_url(b"GIF89a" + b"\x00" * 16, "image/png"),  # declared png, bytes are a gif
        _data_url(b"\x89PNG\r\n\x1a\n" + b"\x00" * 4_000_000),  # over the 3.75 MiB image limit, under the body limit
    ],
)
def test_bad_images_name_the_part(client: openai.OpenAI, url: str) -> None:
    messages: Any = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model="nova-lite", messages=messages)
    assert _bad_request(error)["param"] == "messages[0].content[0].image_url"


def test_remote_image_urls_are_refused_by_default(client: openai.OpenAI) -> None:
    messages: Any = [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://169.254.169.254/latest"}}]}
    ]
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model="nova-lite", messages=messages)
    assert _bad_request(error)["param"] == "messages[0].content[0].image_url"


@pytest.mark.parametrize("alias", TOOL_ALIASES)
def test_langchain_bind_tools_and_structured_output(local_stack: dict[str, Any], alias: str) -> None:
    langchain_openai = pytest.importorskip("langchain_openai")
    model = langchain_openai.ChatOpenAI(
        model=alias, base_url=local_stack["base_url"], api_key=local_stack["api_key"], max_retries=0
    )

    class Weather(BaseModel):
        """The current weather in a city."""

        city: str
        unit: str

    message = model.bind_tools([Weather], tool_choice="Weather").invoke("Weather in Paris?")
    assert message.tool_calls and message.tool_calls[0]["name"] == "Weather"
    assert isinstance(message.tool_calls[0]["args"]["city"], str)

    streamed = None
    for piece in model.bind_tools([Weather], tool_choice="Weather").stream("Weather in Paris?"):
        streamed = piece if streamed is None else streamed + piece
    assert streamed is not None and streamed.tool_calls and streamed.tool_calls[0]["name"] == "Weather"

    class City(BaseModel):
        name: str
        population: int

    city = model.with_structured_output(City).invoke("Name a large city.")
    assert isinstance(city, City)
