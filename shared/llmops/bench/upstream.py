"""A fake OpenAI-compatible upstream: a fixed chat.completion after a fixed delay, on loopback.

It stands in for the model server so the side-by-side benchmark measures only what each gateway
adds. Run it as its own process (`python -m llmops.bench.upstream --port P --delay-ms 20`) so its
threads never compete for the benchmark client's interpreter lock.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["COMPLETION_TEXT", "FakeUpstreamHandler", "completion_document", "serve"]

COMPLETION_TEXT = "This is a fixed answer from the benchmark upstream, the same for every request."


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
    requests_served = 0
    _count_lock = threading.Lock()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            model = str(json.loads(raw or b"{}").get("model") or "bench")
        except ValueError:
            model = "bench"
        time.sleep(self.delay_s)
        now = int(time.time())
        if self.path.rstrip("/").endswith("/chat/completions"):
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


def serve(port: int, delay_ms: float, host: str = "127.0.0.1") -> None:
    FakeUpstreamHandler.delay_s = delay_ms / 1000.0
    server = _UpstreamServer((host, port), FakeUpstreamHandler)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    args = parser.parse_args()
    serve(args.port, args.delay_ms)


if __name__ == "__main__":
    main()
