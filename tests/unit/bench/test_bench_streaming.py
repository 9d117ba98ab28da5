"""The streaming benchmark's arithmetic and report on fixed numbers: SSE timing, overheads, verdicts,
and "not measured" instead of a crash."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from llmops.bench.context import BenchContext, BenchProfile
from llmops.bench.streaming import (
    DIRECT,
    IN_PROCESS,
    KEY,
    LOCAL_STACK,
    TTFT_OVERHEAD_TARGET_MS,
    PacedStreamingProvider,
    build_section,
)
from llmops.bench.streaming_stats import (
    SseTimer,
    StreamingUnavailableError,
    StreamTiming,
    VariantTimings,
    first_chunk_fraction,
    ttft_overhead,
    ttlb_overhead,
)
from llmops.bench.upstream import StreamShape, stream_chunk, stream_tokens
from llmops.domain.chat import ChatRequest, Message, Role
from llmops.domain.routing import Provider, Target
from llmops.domain.streaming import StreamEnd, TextDelta


def _event(document: object) -> bytes:
    return f"data: {json.dumps(document)}\n\n".encode()


def test_the_timer_counts_content_chunks_not_role_or_usage_chunks() -> None:
    timer = SseTimer()
    timer.feed(_event(stream_chunk("m", 1, {"role": "assistant"}, None)), 10.0)
    timer.feed(_event(stream_chunk("m", 1, {"content": "Hello"}, None)), 10.2)
    timer.feed(_event(stream_chunk("m", 1, {"content": " world"}, None)), 10.3)
    timer.feed(_event(stream_chunk("m", 1, {}, "stop")), 10.4)
    timer.feed(_event({"choices": [], "usage": {"completion_tokens": 2}}) + b"data: [DONE]\n\n", 10.5)

    timing = timer.timing(started=10.0)

    assert timing.ttft_ms == pytest.approx(200.0)
    assert timing.ttlb_ms == pytest.approx(500.0)
    assert timing.content_chunks == 2


def test_the_timer_reads_events_split_across_pieces_at_the_time_their_line_completes() -> None:
    raw = _event(stream_chunk("m", 1, {"content": "Hi"}, None)) + b"data: [DONE]\n\n"
    timer = SseTimer()
    timer.feed(raw[:7], 1.0)
    timer.feed(raw[7:], 1.05)

    assert timer.timing(started=1.0).ttft_ms == pytest.approx(50.0)


def test_a_buffered_answer_has_its_first_token_with_its_last() -> None:
    timer = SseTimer()
    body = b"".join(_event(stream_chunk("m", 1, {"content": t}, None)) for t in ("a", "b", "c"))
    timer.feed(body + b"data: [DONE]\n\n", 2.0)

    timing = timer.timing(started=1.0)

    assert timing.ttft_ms == timing.ttlb_ms
    assert first_chunk_fraction([timing]) == 1.0


def test_an_error_event_or_a_stream_without_content_cannot_be_timed() -> None:
    failed = SseTimer()
    failed.feed(_event({"error": {"message": "upstream failed"}}), 1.0)
    with pytest.raises(StreamingUnavailableError, match="upstream failed"):
        failed.timing(started=0.0)
    empty = SseTimer()
    empty.finish(1.0)
    with pytest.raises(StreamingUnavailableError, match="no content"):
        empty.timing(started=0.0)


def _timings(ttfts: list[float], ttlb: float, model: float | None = None) -> list[StreamTiming]:
    return [StreamTiming(t, ttlb, 20, model) for t in ttfts]


def test_overhead_is_per_request_when_each_models_ttft_is_known() -> None:
    gateway = VariantTimings("in", [StreamTiming(110, 500, 20, 100), StreamTiming(130, 520, 20, 101)])

    overhead = ttft_overhead(gateway)

    assert overhead.method == "per request"
    assert overhead.p50 == pytest.approx(19.5)  # the median of 10 and 29
    assert overhead.p99 == pytest.approx(10 + 19 * 0.99)


def test_overhead_against_the_upstream_is_a_difference_of_percentiles_floored_at_zero() -> None:
    upstream = VariantTimings(DIRECT, _timings([100.0] * 99 + [110.0], 480.0))
    gateway = VariantTimings(LOCAL_STACK, _timings([130.0] * 99 + [200.0], 500.0))

    ttft = ttft_overhead(gateway, upstream)
    ttlb = ttlb_overhead(gateway, upstream)
    faster = ttft_overhead(upstream, gateway)

    assert ttft.method == "percentile difference"
    assert ttft.p50 == pytest.approx(30.0)
    assert ttft.p99 == pytest.approx((130 + 70 * 0.01) - (100 + 10 * 0.01))
    assert [ttlb.p50, ttlb.p99] == pytest.approx([20.0, 20.0])
    assert (faster.p50, faster.p99) == (0.0, 0.0)


def test_overhead_without_measurements_is_nan_not_an_error() -> None:
    assert math.isnan(ttft_overhead(VariantTimings("x")).p50)
    assert math.isnan(ttft_overhead(VariantTimings("x", _timings([1.0], 2.0))).p50)  # no model TTFT
    assert math.isnan(ttlb_overhead(VariantTimings("x"), VariantTimings("y", _timings([1.0], 2.0))).p99)


@pytest.fixture
def ctx(tmp_path: Path) -> BenchContext:
    return BenchContext(out_dir=tmp_path, profile=BenchProfile.quick())


def test_the_section_names_the_goal_the_measured_overhead_and_the_misses(ctx: BenchContext) -> None:
    variants = [
        VariantTimings(DIRECT, _timings([100.0] * 10, 700.0)),
        VariantTimings(LOCAL_STACK, _timings([150.0] * 9 + [600.0], 760.0)),
        VariantTimings(IN_PROCESS, _timings([105.0] * 10, 690.0, model=100.0)),
    ]

    section = build_section(ctx, variants)

    checks = {t.name: t for t in section.targets}
    local_p50 = checks[f"gateway TTFT overhead p50 ({LOCAL_STACK})"]
    local_p99 = checks[f"gateway TTFT overhead p99 ({LOCAL_STACK})"]
    assert (local_p50.measured, local_p50.target, local_p50.verdict) == (50.0, TTFT_OVERHEAD_TARGET_MS, "met")
    assert local_p99.measured == pytest.approx(150 + 450 * 0.91 - 100)
    assert local_p99.verdict == "missed"
    assert checks[f"gateway TTFT overhead p50 ({IN_PROCESS})"].measured == pytest.approx(5.0)
    assert checks[f"first chunk at, share of the answer's time, p50 ({IN_PROCESS})"].verdict == "met"
    assert f"**Missed:** gateway TTFT overhead p99 ({LOCAL_STACK})" in section.body
    assert "| 50.0 |" in section.body and "percentile difference" in section.body
    (figure,) = section.figures
    assert (ctx.out_dir / figure.filename).is_file() and figure.filename.endswith(".png")
    assert section.results["overhead_ms"][LOCAL_STACK]["ttft_p50"] == 50.0
    assert section.key == KEY


def test_a_variant_that_could_not_stream_is_reported_not_measured(ctx: BenchContext) -> None:
    reason = "stream: true was answered with application/json"
    variants = [
        VariantTimings(DIRECT, _timings([100.0] * 5, 700.0)),
        VariantTimings(LOCAL_STACK, not_measured=reason),
        VariantTimings(IN_PROCESS, not_measured="RuntimeError: no streaming"),
    ]

    section = build_section(ctx, variants)

    assert {t.verdict for t in section.targets} == {"not measured"}
    assert f"not measured: {reason}" in section.body
    assert f"**Not measured:** {LOCAL_STACK}: {reason}" in section.body
    assert section.error is None


def test_nothing_measured_still_gives_a_section_without_a_figure(ctx: BenchContext) -> None:
    section = build_section(ctx, [VariantTimings(DIRECT, not_measured="OSError: refused")])

    assert section.figures == []
    assert "not measured" in section.body


def test_the_fake_provider_streams_the_shape_and_records_its_own_first_token() -> None:
    shape = StreamShape(first_token_ms=5.0, token_ms=1.0, tokens=4)
    provider = PacedStreamingProvider(shape)
    target = Target("t", Provider.BEDROCK, 0.0, 0.0, 8192, model_id="m")
    request = ChatRequest(model="chat-default", messages=(Message(role=Role.USER, content="hi"),))

    events = list(provider.stream(target, request))

    assert [e.text for e in events if isinstance(e, TextDelta)] == stream_tokens(4)
    assert isinstance(events[-1], StreamEnd) and events[-1].usage is not None
    assert provider.last_ttft_ms is not None and provider.last_ttft_ms >= 5.0
