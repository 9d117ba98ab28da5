"""OpenAI Embeddings request and response models (the API tier of `POST /v1/embeddings`).

Pydantic checks the wire format; `to_domain` turns it into an `EmbeddingRequest`, refusing with a 400
naming the parameter what a schema cannot say clearly:

* `input` is a string or a list of strings. Token arrays (a list of token ids, or a list of them),
  which OpenAI accepts and the openai SDK sends as given, are refused: the gateway cannot know a
  Bedrock or SageMaker model's tokenizer, so it could neither decode them into the text the input
  guard must see nor pass them to a model that takes text. LangChain's `OpenAIEmbeddings` sends
  strings when `check_embedding_ctx_length=False`.
* `encoding_format` is `float` (lists of numbers) or `base64` (the little-endian float32 bytes of each
  vector, base64-encoded: what the openai SDK asks for by default and decodes itself).
* `dimensions` must be a size the alias's model answers natively (checked at routing, a 400 naming
  `dimensions`); vectors are never truncated.
* `input_type` is a gateway extension (Cohere Embed's `input_type`; ignored by the other models):
  `search_document` (the default) or `search_query`, `classification`, `clustering`.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from llmops.domain.embeddings import MAX_INPUTS, EmbeddingInputType, EmbeddingRequest
from llmops.domain.errors import BadRequestError
from llmops.domain.guard.normalization import without_lone_surrogates

__all__ = ["EmbeddingsRequest", "embedding_list", "encode_base64"]

EncodingFormat = Literal["float", "base64"]


class EmbeddingsRequest(BaseModel):
    # Built on the first POST /v1/embeddings, not on every cold start: most containers never serve one.
    model_config = ConfigDict(extra="forbid", defer_build=True)

    model: Annotated[str, Field(min_length=1, max_length=256)]
    # Strings, or what the SDKs send as token arrays (refused in `to_domain` with a clear message).
    input: StrictStr | Annotated[list[Any], Field(max_length=MAX_INPUTS)]
    encoding_format: EncodingFormat = "float"
    dimensions: Annotated[StrictInt | None, Field(ge=1, le=65_536)] = None
    user: Annotated[str | None, Field(max_length=256)] = None
    input_type: EmbeddingInputType | None = None  # llmops extension (Cohere)

    def to_domain(self) -> EmbeddingRequest:
        return EmbeddingRequest(
            model=self.model,
            inputs=_texts(self.input),
            dimensions=self.dimensions,
            input_type=self.input_type or EmbeddingInputType.SEARCH_DOCUMENT,
            user=self.user,
        )


def _texts(value: str | list[Any]) -> tuple[str, ...]:
    items: Sequence[Any] = [value] if isinstance(value, str) else value
    if any(_is_tokens(item) for item in items) or (items and all(_is_token(item) for item in items)):
        raise BadRequestError(
            "'input' must be a string or a list of strings: token arrays are not supported, because the "
            "gateway cannot know the model's tokenizer. Send the text (with LangChain's OpenAIEmbeddings, "
            "set check_embedding_ctx_length=False).",
            param="input",
            code="invalid_value",
        )
    if not all(isinstance(item, str) for item in items):
        raise BadRequestError("'input' must be a string or a list of strings.", param="input", code="invalid_type")
    return tuple(without_lone_surrogates(item) for item in items)


def _is_token(item: Any) -> bool:
    return isinstance(item, int) and not isinstance(item, bool)


def _is_tokens(item: Any) -> bool:
    return isinstance(item, list) and bool(item) and all(_is_token(t) for t in item)


def encode_base64(vector: Sequence[float]) -> str:
    """OpenAI's base64 encoding: the vector as little-endian float32, base64 (the SDK decodes it with numpy)."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def embedding_list(
    alias: str, vectors: Sequence[Sequence[float]], input_tokens: int, encoding_format: EncodingFormat
) -> dict[str, Any]:
    """The OpenAI `list` of `embedding` objects, in input order."""
    encode = encode_base64 if encoding_format == "base64" else list
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vectors)],
        "model": alias,
        "usage": {"prompt_tokens": input_tokens, "total_tokens": input_tokens},
    }
