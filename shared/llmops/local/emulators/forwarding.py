"""Forwarding emulated model calls to an OpenAI-compatible server the user already runs.

With a forwarder configured (e.g. a local vLLM or ollama), the emulators keep speaking the AWS wire
protocols to the gateway but the text comes from a real model. Chat payloads go to
`{base}/chat/completions`; TGI's raw templated prompts go to `{base}/completions`, since re-wrapping a
rendered prompt in a chat message would apply a chat template twice. The SageMaker emulator's OpenAI
dialect is the upstream's own, so its bodies go as they are (`chat_body`, `stream_chat_body`: tools,
images, tool turns and response_format included) and the answer documents come back whole. The
Bedrock emulator maps Converse to such a body and the answers back (`converse.openai_body`,
`converse.answer_from_openai`, `converse.openai_stream_items`: toolConfig, toolUse, toolResult,
images, outputConfig and reasoning fields).

Streaming calls (`stream_chat_body`, `stream_prompt`) send `stream: true` and relay the upstream's SSE
tokens as they arrive: the upstream is asked first, so its refusal is an error before the emulated
response starts, and a failure while it streams is raised from the token stream.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.client import HTTPException, HTTPResponse
from typing import Any

from llmops.local.emulators.answers import EmulatedFinish, Generation, TokenStream, estimate_tokens

__all__ = ["ForwardingError", "OpenAICompatibleForwarder"]

_FINISH = {"length": EmulatedFinish.LENGTH, "stop": EmulatedFinish.END}


class ForwardingError(Exception):
    """The upstream server failed; `status` is its HTTP status (502 unreachable, 504 timed out)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class OpenAICompatibleForwarder:
    base_url: str  # e.g. "http://127.0.0.1:11434/v1"
    model: str | None = None  # the upstream model name; None sends the emulated model id unchanged
    api_key: str | None = None
    timeout_s: float = 120.0

    def stream_prompt(
        self,
        *,
        model: str,
        prompt: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stop: Sequence[str] = (),
    ) -> TokenStream:
        """`stream_chat` for a raw prompt, through `{base}/completions`."""
        body = self._body(model, max_tokens, temperature, top_p, stop, stream=True)
        body["prompt"] = prompt
        response = self._open("/completions", body, accept="text/event-stream")
        return _relay(response, prompt, lambda choice: choice.get("text"))

    def complete_prompt(
        self,
        *,
        model: str,
        prompt: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stop: Sequence[str] = (),
    ) -> Generation:
        body = self._body(model, max_tokens, temperature, top_p, stop)
        body["prompt"] = prompt
        doc = self._post("/completions", body)
        try:
            choice = doc["choices"][0]
            return self._generation(doc, choice, str(choice.get("text") or ""), prompt)
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise ForwardingError(502, "upstream answered an unexpected completion document") from exc

    def embed(
        self, *, model: str, inputs: Sequence[str], dimensions: int | None = None
    ) -> tuple[list[list[float]], int | None]:
        """The upstream's `/embeddings` vectors for `inputs`, in order, and its `prompt_tokens` (None if
        it reports none); the embedding models' emulators map them back into the model's body."""
        body: dict[str, Any] = {"model": self.model or model, "input": list(inputs), "encoding_format": "float"}
        if dimensions is not None:
            body["dimensions"] = dimensions
        doc = self._post("/embeddings", body)
        try:
            rows = sorted(doc["data"], key=lambda row: int(row["index"]))
            vectors = [[float(v) for v in row["embedding"]] for row in rows]
            tokens = (doc.get("usage") or {}).get("prompt_tokens")
            if len(vectors) != len(inputs):
                raise ValueError("one vector per input")
            return vectors, None if tokens is None else int(tokens)
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise ForwardingError(502, "upstream answered an unexpected embeddings document") from exc

    def chat_body(self, *, model: str, body: Mapping[str, Any]) -> Any:
        """Posts an OpenAI chat body as it is (tools, images, response_format and all), for `model`,
        and returns the upstream's chat.completion document. The SageMaker emulator's OpenAI
        dialect is the upstream's own, so nothing needs translating on the way."""
        doc = self._post("/chat/completions", {**body, "model": self.model or model, "stream": False})
        if not isinstance(doc, dict):
            raise ForwardingError(502, "upstream answered an unexpected chat document")
        return doc

    def stream_chat_body(self, *, model: str, body: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        """`chat_body` streamed: opens the upstream's stream (raising `ForwardingError` if it refuses)
        and returns its chat.completion.chunk documents as they arrive; closing them closes it."""
        streamed = {**body, "model": self.model or model, "stream": True, "stream_options": {"include_usage": True}}
        return _chunk_documents(self._open("/chat/completions", streamed, accept="text/event-stream"))

    def _body(
        self,
        model: str,
        max_tokens: int | None,
        temperature: float | None,
        top_p: float | None,
        stop: Sequence[str],
        *,
        stream: bool = False,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model or model, "stream": stream}
        if stream:
            # The last chunk then carries the upstream's token counts, which the emulated answer reports.
            body["stream_options"] = {"include_usage": True}
        optional = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p}
        body.update({k: v for k, v in optional.items() if v is not None})
        if stop:
            body["stop"] = list(stop)
        return body

    def _post(self, path: str, body: Mapping[str, Any]) -> Any:
        try:
            with self._open(path, body, accept="application/json") as resp:
                return json.loads(resp.read())
        except TimeoutError as exc:
            raise ForwardingError(504, "upstream timed out") from exc
        except ValueError as exc:
            raise ForwardingError(502, "upstream answered with invalid JSON") from exc

    def _open(self, path: str, body: Mapping[str, Any], *, accept: str) -> HTTPResponse:
        """The upstream's response once its status line and headers are in; the caller closes it."""
        headers = {"Content-Type": "application/json", "Accept": accept}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        url = self.base_url.rstrip("/") + path
        if not url.startswith(("http://", "https://")):
            raise ForwardingError(502, "forwarding base URL must be http(s)")
        data = json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, headers=headers, method="POST")
        try:
            response: HTTPResponse = urllib.request.urlopen(req, timeout=self.timeout_s)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise ForwardingError(exc.code, f"upstream answered HTTP {exc.code}") from exc
        except TimeoutError as exc:
            raise ForwardingError(504, "upstream timed out") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise ForwardingError(504, "upstream timed out") from exc
            raise ForwardingError(502, f"upstream unreachable: {exc.reason}") from exc
        return response

    @staticmethod
    def _generation(doc: Any, choice: Any, text: str, prompt_text: str) -> Generation:
        usage = doc.get("usage") or {}
        return Generation(
            text=text,
            finish=_FINISH.get(str(choice.get("finish_reason")), EmulatedFinish.END),
            input_tokens=int(usage.get("prompt_tokens") or estimate_tokens(prompt_text)),
            output_tokens=int(usage.get("completion_tokens") or len(text.split())),
        )


def _sse_data(lines: Iterable[bytes]) -> Iterator[str]:
    """The `data` of each server-sent event in `lines` (multi-line data joined by newlines)."""
    data: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield "\n".join(data)


def _chunk_documents(response: HTTPResponse) -> Iterator[Mapping[str, Any]]:
    """Each chunk document of the upstream's SSE stream, up to `[DONE]`; closing it closes the upstream."""
    try:
        for data in _sse_data(response):
            if data.strip() == "[DONE]":
                break
            doc = json.loads(data)
            if not isinstance(doc, dict):
                raise ValueError("a chunk must be a JSON object")
            yield doc
    except TimeoutError as exc:
        raise ForwardingError(504, "upstream timed out mid-stream") from exc
    except (OSError, HTTPException) as exc:
        raise ForwardingError(502, "upstream stream broke off") from exc
    except ValueError as exc:
        raise ForwardingError(502, "upstream sent an unexpected stream chunk") from exc
    finally:
        response.close()


def _relay(response: HTTPResponse, prompt_text: str, piece_of: Callable[[Mapping[str, Any]], Any]) -> TokenStream:
    """The upstream's SSE chunks as tokens, then the `Generation`; closing it closes the upstream."""
    texts: list[str] = []
    finish: object = None
    usage: Mapping[str, Any] = {}
    try:
        for data in _sse_data(response):
            if data.strip() == "[DONE]":
                break
            doc = json.loads(data)
            for choice in doc.get("choices") or []:
                piece = piece_of(choice)
                if piece:
                    texts.append(str(piece))
                    yield str(piece)
                finish = choice.get("finish_reason") or finish
            usage = doc.get("usage") or usage
    except TimeoutError as exc:
        raise ForwardingError(504, "upstream timed out mid-stream") from exc
    except (OSError, HTTPException) as exc:
        raise ForwardingError(502, "upstream stream broke off") from exc
    except (ValueError, AttributeError, TypeError) as exc:
        raise ForwardingError(502, "upstream sent an unexpected stream chunk") from exc
    finally:
        response.close()
    text = "".join(texts)
    yield OpenAICompatibleForwarder._generation({"usage": usage}, {"finish_reason": finish}, text, prompt_text)
