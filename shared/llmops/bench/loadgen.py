"""A closed-loop HTTP load generator: N workers, each with one keep-alive connection, bounded in
requests and time. Latency is measured from sending the request to reading the whole response.

The connections have Nagle's algorithm off, as SDK clients (urllib3, botocore) have: http.client
sends a request's headers and body apart, and on a kept-alive connection the body would otherwise
wait for the server's delayed ACK of the headers, which times the server's ACK policy rather than
the gateway."""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from llmops.local.emulators.forwarding import NoDelayHTTPConnection

__all__ = ["HttpTarget", "LoadResult", "run_closed_loop"]


@dataclass(frozen=True, slots=True)
class HttpTarget:
    """One request to repeat: `url` is absolute (http://127.0.0.1:P/path)."""

    url: str
    body: bytes
    headers: Mapping[str, str]
    method: str = "POST"

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or 80

    @property
    def path(self) -> str:
        parts = urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass(slots=True)
class LoadResult:
    concurrency: int
    latencies_ms: list[float] = field(default_factory=list)  # successful (2xx) requests only
    statuses: Counter[str] = field(default_factory=Counter)  # "200", "429", "error:<Exception>"
    elapsed_s: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if status.startswith("2"))

    @property
    def throughput_rps(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0


def _connection(target: HttpTarget, timeout_s: float) -> http.client.HTTPConnection:
    host, port = target.host_port
    return NoDelayHTTPConnection(host, port, timeout=timeout_s)


def run_closed_loop(
    target: HttpTarget,
    *,
    concurrency: int,
    max_requests: int,
    max_seconds: float,
    timeout_s: float = 30.0,
    on_request: Callable[[], None] | None = None,
) -> LoadResult:
    """Sends up to `max_requests` (shared by all workers) for at most `max_seconds`."""
    result = LoadResult(concurrency=concurrency)
    lock = threading.Lock()
    issued = 0
    deadline = time.monotonic() + max_seconds

    def take_ticket() -> bool:
        nonlocal issued
        with lock:
            if issued >= max_requests or time.monotonic() >= deadline:
                return False
            issued += 1
            return True

    def worker() -> None:
        conn = _connection(target, timeout_s)
        try:
            while take_ticket():
                started = time.perf_counter()
                try:
                    conn.request(target.method, target.path, body=target.body, headers=dict(target.headers))
                    response = conn.getresponse()
                    response.read()
                    elapsed_ms = (time.perf_counter() - started) * 1000
                    status = str(response.status)
                    if response.getheader("Connection", "").lower() == "close":
                        conn.close()
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    conn = _connection(target, timeout_s)
                    status, elapsed_ms = f"error:{type(exc).__name__}", None
                with lock:
                    result.statuses[status] += 1
                    if elapsed_ms is not None and status.startswith("2"):
                        result.latencies_ms.append(elapsed_ms)
                if on_request is not None:
                    on_request()
        finally:
            conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, name=f"load-{i}", daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max_seconds + timeout_s + 5)
    result.elapsed_s = time.perf_counter() - started
    return result
