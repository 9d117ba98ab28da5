"""A fake OpenAI-compatible upstream: a fixed chat.completion after a fixed delay, on loopback.

It stands in for the model server so the side-by-side benchmark measures only what each gateway
adds. Run it as its own process (`python -m llmops.bench.upstream --port P --delay-ms 20`) so its
threads never compete for the benchmark client's interpreter lock.

A chat request with `stream: true` is answered as a real model server streams: SSE chunks, one per
token (`--stream-tokens`), the first after `--first-token-ms` and each next one `--token-ms` later,
then a usage chunk when `stream_options.include_usage` asks for it, and `[DONE]`; chunked transfer
encoding keeps the connection reusable. Each token is flushed as it is written, so a client sees it
at the time the model would have produced it.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["COMPLETION_TEXT", "FakeUpstreamHandler", "StreamShape", "completion_document", "serve", "stream_tokens"]

COMPLETION_TEXT = "This is a fixed answer from the benchmark upstream, the same for every request."


@dataclass(frozen=True, slots=True)
class StreamShape:
    """How the fake model streams: its first token after `first_token_ms`, then one every `token_ms`."""

    first_token_ms: float = 100.0
    token_ms: float = 20.0
    tokens: int = 20


def stream_tokens(count: int) -> list[str]:
    """`count` word tokens of the fixed answer (repeated as needed), each with its leading space."""
    words = COMPLETION_TEXT.split()
    return [(" " if i else "") + words[i % len(words)] for i in range(count)]


def stream_chunk(model: str, created: int, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
    }


def completion_document(model: str, created: int) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": COMPLETION_TEXT},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 250, "completion_tokens": 16, "total_tokens": 266},
    }


def text_completion_document(model: str, created: int) -> dict[str, Any]:
    return {
        "id": "cmpl-bench",
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "text": COMPLETION_TEXT, "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": 250, "completion_tokens": 16, "total_tokens": 266},
    }


class FakeUpstreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real model server offers
    # Headers and body go out in separate writes: with Nagle on, the body waits for the client's
    # delayed ACK (40 ms on Linux) on a keep-alive connection, which would swamp a 20 ms model.
    disable_nagle_algorithm = True
    delay_s = 0.02
    stream_shape = StreamShape()
    requests_served = 0
    _count_lock = threading.Lock()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            request = json.loads(raw or b"{}")
            model = str(request.get("model") or "bench")
        except (ValueError, AttributeError):
            request, model = {}, "bench"
        is_chat = self.path.rstrip("/").endswith("/chat/completions")
        if is_chat and isinstance(request, dict) and request.get("stream") is True:
            options = request.get("stream_options") or {}
            self._stream(model, include_usage=isinstance(options, dict) and options.get("include_usage") is True)
            return
        time.sleep(self.delay_s)
        now = int(time.time())
        if is_chat:
            self._send(200, completion_document(model, now))
        elif self.path.rstrip("/").endswith("/completions"):
            self._send(200, text_completion_document(model, now))
        else:
            self._send(404, {"error": {"message": "unknown route", "type": "invalid_request_error"}})

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, {"object": "list", "data": [{"id": "bench", "object": "model"}]})
        else:
            self._send(200, {"status": "ok"})

    def _stream(self, model: str, *, include_usage: bool) -> None:
        shape = self.stream_shape
        started = time.perf_counter()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        created = int(time.time())
        tokens = stream_tokens(shape.tokens)
        for index, token in enumerate(tokens):
            # Paced from the start, not from the last write: the schedule does not drift with write time.
            due = started + (shape.first_token_ms + index * shape.token_ms) / 1000
            time.sleep(max(0.0, due - time.perf_counter()))
            delta: dict[str, Any] = {"role": "assistant", "content": token} if index == 0 else {"content": token}
            self._event(stream_chunk(model, created, delta, None))
        self._event(stream_chunk(model, created, {}, "stop"))
        if include_usage:
            usage = {"prompt_tokens": 250, "completion_tokens": len(tokens), "total_tokens": 250 + len(tokens)}
            self._event({**stream_chunk(model, created, {}, None), "choices": [], "usage": usage})
        self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")
        with self._count_lock:
            FakeUpstreamHandler.requests_served += 1

    def _event(self, document: dict[str, Any]) -> None:
        self._write_chunk(f"data: {json.dumps(document)}\n\n".encode())

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _send(self, status: int, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with self._count_lock:
            FakeUpstreamHandler.requests_served += 1

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _UpstreamServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # read at bind time: a burst of 32 new connections must not be refused


def serve(port: int, delay_ms: float, host: str = "127.0.0.1", stream_shape: StreamShape | None = None) -> None:
    FakeUpstreamHandler.delay_s = delay_ms / 1000.0
    FakeUpstreamHandler.stream_shape = stream_shape or StreamShape()
    server = _UpstreamServer((host, port), FakeUpstreamHandler)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    defaults = StreamShape()
    parser.add_argument("--first-token-ms", type=float, default=defaults.first_token_ms)
    parser.add_argument("--token-ms", type=float, default=defaults.token_ms)
    parser.add_argument("--stream-tokens", type=int, default=defaults.tokens)
    args = parser.parse_args()
    serve(args.port, args.delay_ms, stream_shape=StreamShape(args.first_token_ms, args.token_ms, args.stream_tokens))


if __name__ == "__main__":
    main()
