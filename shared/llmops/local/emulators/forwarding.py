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

Answers that are read whole go over keep-alive connections the forwarder keeps idle between calls
(`_UpstreamConnections`), as an SDK's connection pool would: a new TCP connection per call costs the
connect and, on a threaded upstream, a new handler thread. Every connection has Nagle's algorithm
off, since http.client writes the headers and the body in two sends and the body would otherwise
wait for the upstream's delayed ACK of the headers. A stream gets a connection of its own, closed
with it.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.client import HTTPException, HTTPResponse
from typing import Any
from urllib.parse import urlsplit

from llmops.local.emulators.answers import EmulatedFinish, Generation, TokenStream, estimate_tokens

__all__ = ["ForwardingError", "NoDelayHTTPConnection", "NoDelayHTTPSConnection", "OpenAICompatibleForwarder"]

_FINISH = {"length": EmulatedFinish.LENGTH, "stop": EmulatedFinish.END}
# Idle connections kept per forwarder: one per concurrent emulated call is all that is ever reused.
_MAX_IDLE_CONNECTIONS = 64


class NoDelayHTTPConnection(http.client.HTTPConnection):
    """http.client writes a request's headers and body in two sends: with Nagle's algorithm on, the
    body of a request on a kept-alive connection waits for the server's delayed ACK of the headers."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayHTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _UpstreamConnections:
    """Keep-alive connections to one upstream, each used by one call at a time."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        parts = urlsplit(base_url)
        # A bad URL fails each call (as a 502), not the emulator's construction.
        self._valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._timeout_s = timeout_s
        self.path_prefix = parts.path.rstrip("/")
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def take(self) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection (True: reused) or a new one (False), connected lazily by its request."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self.new(), False

    def new(self) -> http.client.HTTPConnection:
        if not self._valid:
            raise ForwardingError(502, "forwarding base URL must be http(s)")
        kind = NoDelayHTTPSConnection if self._https else NoDelayHTTPConnection
        return kind(self._host, self._port, timeout=self._timeout_s)

    def give_back(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < _MAX_IDLE_CONNECTIONS:
                self._idle.append(connection)
                return
        connection.close()


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
    _connections: _UpstreamConnections = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_connections", _UpstreamConnections(self.base_url, self.timeout_s))

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
        """The upstream's JSON answer, read whole over a pooled keep-alive connection."""
        data = json.dumps(body).encode()
        headers = self._headers("application/json")
        connection, reused = self._connections.take()
        try:
            try:
                response = _send(connection, self._connections.path_prefix + path, data, headers)
            except (ConnectionError, HTTPException):
                if not reused:
                    raise
                # The upstream closed the idle connection meanwhile (its keep-alive timeout): once
                # more on a new one, as connection pools do.
                connection.close()
                connection = self._connections.new()
                response = _send(connection, self._connections.path_prefix + path, data, headers)
            payload = response.read()
        except (OSError, HTTPException) as exc:
            connection.close()
            raise _failure(exc) from exc
        except BaseException:
            connection.close()
            raise
        if response.will_close:
            connection.close()
        else:
            self._connections.give_back(connection)
        if response.status >= 400:
            raise ForwardingError(response.status, f"upstream answered HTTP {response.status}")
        try:
            return json.loads(payload)
        except ValueError as exc:
            raise ForwardingError(502, "upstream answered with invalid JSON") from exc

    def _open(self, path: str, body: Mapping[str, Any], *, accept: str) -> HTTPResponse:
        """A streamed answer once its status line and headers are in, on a connection of its own
        that closes with it; the caller closes it."""
        connection = self._connections.new()
        try:
            response = _send(
                connection, self._connections.path_prefix + path, json.dumps(body).encode(), self._headers(accept)
            )
        except (OSError, HTTPException) as exc:
            connection.close()
            raise _failure(exc) from exc
        except BaseException:
            connection.close()
            raise
        # The socket closes once the response does, which holds its own reference to it (as urllib
        # does it: HTTPConnection.close() would close the response too).
        if connection.sock is not None:
            connection.sock.close()
            connection.sock = None
        if response.status >= 400:
            response.close()
            raise ForwardingError(response.status, f"upstream answered HTTP {response.status}")
        return response

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": accept}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    @staticmethod
    def _generation(doc: Any, choice: Any, text: str, prompt_text: str) -> Generation:
        usage = doc.get("usage") or {}
        return Generation(
            text=text,
            finish=_FINISH.get(str(choice.get("finish_reason")), EmulatedFinish.END),
            input_tokens=int(usage.get("prompt_tokens") or estimate_tokens(prompt_text)),
            output_tokens=int(usage.get("completion_tokens") or len(text.split())),
        )


def _send(connection: http.client.HTTPConnection, target: str, data: bytes, headers: Mapping[str, str]) -> HTTPResponse:
    """Sends the request; the response once its status line and headers are in."""
    connection.request("POST", target, body=data, headers=dict(headers))
    return connection.getresponse()


def _failure(exc: OSError | HTTPException) -> ForwardingError:
    if isinstance(exc, TimeoutError):
        return ForwardingError(504, "upstream timed out")
    return ForwardingError(502, f"upstream unreachable: {exc}")


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
