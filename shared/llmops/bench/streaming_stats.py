"""Timing a streamed chat completion and summarising many: pure, so the figures are testable on fixed numbers.

`SseTimer` reads an OpenAI SSE stream as it arrives (in pieces of any size) and notes when the first
content chunk came (time to first token, TTFT) and when the stream ended (time to last byte, TTLB).
Role-only and usage-only chunks are not tokens: a gateway that sends its role chunk at once but
holds the text would otherwise look like it streams.

Overhead is what the gateway adds to the model's own TTFT: per request where the model's TTFT of
that very request is known (in-process, the fake provider records it), else as a difference of
percentiles against the same upstream called directly (floored at 0, as the side-by-side benchmark
does).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from llmops.bench.stats import LatencySummary, difference, percentile, summarize

__all__ = [
    "Overhead",
    "SseTimer",
    "StreamTiming",
    "StreamingUnavailableError",
    "VariantTimings",
    "first_chunk_fraction",
    "ttft_overhead",
    "ttlb_overhead",
]


class StreamingUnavailableError(RuntimeError):
    """The stream could not be measured (an error status, a buffered answer, an error event): the reason."""


@dataclass(frozen=True, slots=True)
class StreamTiming:
    """One streamed request, in ms from sending it. `model_ttft_ms`: the model's own TTFT, when known."""

    ttft_ms: float
    ttlb_ms: float
    content_chunks: int
    model_ttft_ms: float | None = None


@dataclass(slots=True)
class SseTimer:
    """Feed it the bytes of a stream with the time they arrived; it keeps the first token and the end."""

    first_content_at: float | None = None
    done_at: float | None = None
    content_chunks: int = 0
    error: str | None = None
    _pending: bytes = b""

    def feed(self, data: bytes, now: float) -> None:
        self._pending += data
        *lines, self._pending = self._pending.split(b"\n")
        for line in lines:
            self._line(line.strip(), now)

    def finish(self, now: float) -> None:
        """The stream's end (EOF): what is left unterminated is read, and the end is `now` if not [DONE]."""
        if self._pending.strip():
            self._line(self._pending.strip(), now)
            self._pending = b""
        if self.done_at is None:
            self.done_at = now

    def _line(self, line: bytes, now: float) -> None:
        if not line.startswith(b"data:"):
            return
        payload = line[5:].strip()
        if payload == b"[DONE]":
            self.done_at = now
            return
        try:
            document: Any = json.loads(payload)
        except ValueError:
            self.error = "a data line that is not JSON"
            return
        if not isinstance(document, dict):
            return
        if "error" in document:
            error = document["error"]
            self.error = str(error.get("message") if isinstance(error, dict) else error)[:200]
            return
        for choice in document.get("choices") or []:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict) and delta.get("content"):
                self.content_chunks += 1
                if self.first_content_at is None:
                    self.first_content_at = now

    def timing(self, started: float, model_ttft_ms: float | None = None) -> StreamTiming:
        """The request's timing from `started` (same clock as `feed`); raises if it carried no token."""
        if self.error is not None:
            raise StreamingUnavailableError(f"the stream ended with an error: {self.error}")
        if self.first_content_at is None or self.done_at is None:
            raise StreamingUnavailableError("the stream carried no content chunk")
        return StreamTiming(
            ttft_ms=(self.first_content_at - started) * 1000,
            ttlb_ms=(self.done_at - started) * 1000,
            content_chunks=self.content_chunks,
            model_ttft_ms=model_ttft_ms,
        )


@dataclass(slots=True)
class VariantTimings:
    """One way of calling the model (directly, through the local stack, in-process) and its requests."""

    name: str
    timings: list[StreamTiming] = field(default_factory=list)
    not_measured: str | None = None  # why there are no timings, for the report

    @property
    def ttft(self) -> LatencySummary:
        return summarize([t.ttft_ms for t in self.timings])

    @property
    def ttlb(self) -> LatencySummary:
        return summarize([t.ttlb_ms for t in self.timings])

    def to_dict(self) -> dict[str, Any]:
        return {
            "not_measured": self.not_measured,
            "ttft": self.ttft.to_dict(),
            "ttlb": self.ttlb.to_dict(),
            "content_chunks_median": percentile([t.content_chunks for t in self.timings], 50),
            "ttft_ms": [round(t.ttft_ms, 3) for t in self.timings],
            "ttlb_ms": [round(t.ttlb_ms, 3) for t in self.timings],
            "model_ttft_ms": [None if t.model_ttft_ms is None else round(t.model_ttft_ms, 3) for t in self.timings],
        }


@dataclass(frozen=True, slots=True)
class Overhead:
    p50: float
    p99: float
    method: str  # "per request" or "percentile difference"


def _nan_overhead(method: str) -> Overhead:
    return Overhead(math.nan, math.nan, method)


def ttft_overhead(gateway: VariantTimings, upstream: VariantTimings | None = None) -> Overhead:
    """What the gateway adds to the first token: per request against each request's own model TTFT
    when every timing has one (and no `upstream` is given), else p50 and p99 minus the upstream's."""
    if upstream is None:
        paired = [t.ttft_ms - t.model_ttft_ms for t in gateway.timings if t.model_ttft_ms is not None]
        if not paired or len(paired) != len(gateway.timings):
            return _nan_overhead("per request")
        return Overhead(percentile(paired, 50), percentile(paired, 99), "per request")
    if not gateway.timings or not upstream.timings:
        return _nan_overhead("percentile difference")
    ours, theirs = gateway.ttft, upstream.ttft
    return Overhead(difference(ours.p50, theirs.p50), difference(ours.p99, theirs.p99), "percentile difference")


def ttlb_overhead(gateway: VariantTimings, upstream: VariantTimings) -> Overhead:
    """What the gateway adds to the whole answer: p50 and p99 minus the upstream's (floored at 0)."""
    if not gateway.timings or not upstream.timings:
        return _nan_overhead("percentile difference")
    ours, theirs = gateway.ttlb, upstream.ttlb
    return Overhead(difference(ours.p50, theirs.p50), difference(ours.p99, theirs.p99), "percentile difference")


def first_chunk_fraction(timings: Sequence[StreamTiming]) -> float:
    """Median TTFT / TTLB: near 1 when the answer came buffered, small when it streamed."""
    fractions = [t.ttft_ms / t.ttlb_ms for t in timings if t.ttlb_ms > 0]
    return percentile(fractions, 50)
