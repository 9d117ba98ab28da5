"""OpenAI Chat Completions request and response models (the API tier).

Pydantic validates the wire format; `to_domain` turns it into the provider-neutral ChatRequest.
Fields we do not support yet are declared so we can reject them with a precise 400 naming the
parameter, instead of silently ignoring what the caller asked for.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, field_validator

from llmops.domain.chat import ChatRequest, Message, Role
from llmops.domain.errors import BadRequestError
from llmops.domain.guard.normalization import without_lone_surrogates

__all__ = [
    "ChatCompletionRequest",
    "ChatMessageIn",
    "ErrorBody",
    "ErrorResponse",
    "ModelList",
    "require_conversation",
]

MAX_STOP_SEQUENCES = 4

# Numbers and flags are strict, as OpenAI's are: `true` is not a token count and "10" is not a
# number. A strict float still takes a JSON integer (`"temperature": 1` is 1.0).


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = Field(description="Only 'text' parts are supported.")
    text: str | None = None


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart]
    name: str | None = Field(default=None, max_length=64)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: StrictBool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: Annotated[str, Field(min_length=1, max_length=256)]
    # May be empty only when `prompt` names a registered template that supplies the messages.
    messages: Annotated[list[ChatMessageIn], Field(max_length=2048)]
    temperature: Annotated[StrictFloat | None, Field(ge=0, le=2)] = None
    top_p: Annotated[StrictFloat | None, Field(gt=0, le=1)] = None
    max_tokens: Annotated[StrictInt | None, Field(ge=1)] = None
    max_completion_tokens: Annotated[StrictInt | None, Field(ge=1)] = None
    stop: str | list[str] | None = None
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    user: Annotated[str | None, Field(max_length=256)] = None
    metadata: dict[str, str] | None = None
    n: Annotated[StrictInt | None, Field(ge=1, le=128)] = None
    # Accepted for SDK compatibility; providers ignore them.
    seed: StrictInt | None = None
    presence_penalty: Annotated[StrictFloat | None, Field(ge=-2, le=2)] = None
    frequency_penalty: Annotated[StrictFloat | None, Field(ge=-2, le=2)] = None
    # Declared only so that using them yields a clear "not supported" error.
    tools: list[Any] | None = None
    tool_choice: Any | None = None
    functions: list[Any] | None = None
    function_call: Any | None = None
    response_format: dict[str, Any] | None = None
    logprobs: StrictBool | None = None
    # llmops extensions (see README): a registered prompt template, and grounding documents for
    # the output guard.
    prompt: dict[str, Any] | None = None
    context: Annotated[list[str] | None, Field(max_length=64)] = None

    @field_validator("stop")
    @classmethod
    def _bounded_stop(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences are allowed")
        return value

    def to_domain(self) -> ChatRequest:
        self._reject_unsupported()
        messages: list[Message] = []
        for index, message in enumerate(self.messages):
            role = Role.SYSTEM if message.role == "developer" else Role(message.role)
            text = _text_of(message.content, index)
            if not text.strip():
                raise BadRequestError(
                    f"messages[{index}].content must not be empty.", param=f"messages[{index}].content"
                )
            messages.append(Message(role=role, content=text))
        if not messages and self.prompt is None:
            raise BadRequestError("messages must not be empty.", param="messages")
        first_turn = next((m for m in messages if m.role is not Role.SYSTEM), None)
        if first_turn is not None and first_turn.role is Role.ASSISTANT:
            # Bedrock and most chat templates require the conversation to open with the user.
            raise BadRequestError("The first non-system message must be from the user.", param="messages")
        stops = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        return ChatRequest(
            model=self.model,
            messages=tuple(messages),
            max_tokens=self.max_completion_tokens or self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            stop=tuple(_valid_text(s) for s in stops if s),  # an empty stop sequence would stop at once
            user=self.user,
            stream=self.stream,
            metadata=dict(self.metadata or {}),
        )

    def _reject_unsupported(self) -> None:
        if self.n is not None and self.n > 1:
            raise BadRequestError("n > 1 is not supported; send separate requests.", param="n")
        for name in ("tools", "tool_choice", "functions", "function_call"):
            if getattr(self, name) is not None:
                raise BadRequestError(f"'{name}' is not supported yet by this gateway.", param=name)
        if self.response_format is not None and self.response_format.get("type", "text") != "text":
            raise BadRequestError("Only response_format {'type': 'text'} is supported.", param="response_format")
        if self.logprobs:
            raise BadRequestError("logprobs are not supported.", param="logprobs")


def require_conversation(request: ChatRequest) -> None:
    """After any prompt template is applied, there must be something for the model to answer."""
    if not any(m.role is not Role.SYSTEM for m in request.messages):
        raise BadRequestError("messages must contain at least one user or assistant message.", param="messages")


def _valid_text(text: str) -> str:
    """JSON may carry lone UTF-16 surrogates ("\\ud800") that no UTF-8 encoder accepts: they become
    U+FFFD, as a UTF-8 decoder would render them, so hashing, token counting and providers work."""
    return without_lone_surrogates(text)


def _text_of(content: str | list[ContentPart], index: int) -> str:
    if isinstance(content, str):
        return _valid_text(content)
    texts: list[str] = []
    for part_index, part in enumerate(content):
        if part.type != "text" or part.text is None:
            # The part's type is not echoed: it is the caller's string and may hold anything.
            raise BadRequestError(
                "This content part type is not supported; only text parts are.",
                param=f"messages[{index}].content[{part_index}]",
            )
        texts.append(part.text)
    return _valid_text("".join(texts))


class ErrorBody(BaseModel):
    message: str
    type: str
    code: str | None = None
    param: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "llmops-gateway"
    # Gateway fields (the OpenAI SDKs keep unknown fields): which endpoint serves the model, and what
    # every target of its route supports (so fallbacks included), e.g. ["images", "tools"].
    kind: Literal["chat", "embedding"] = "chat"
    capabilities: list[str] = Field(default_factory=list)


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
