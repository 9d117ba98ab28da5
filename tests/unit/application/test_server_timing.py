"""Server-Timing: the gateway's own time apart from the providers', in one header."""

from __future__ import annotations

from llmops.application.server_timing import provider_ms_in, provider_timing, server_timing, with_server_timing


def test_the_gateway_time_is_the_invocation_less_the_providers() -> None:
    assert server_timing(120.0, 100.0) == "gateway;dur=20.0, provider;dur=100.0"
    assert server_timing(3.25) == "gateway;dur=3.2"  # no model called: the gateway's time only
    # A stream's headers go out at the provider's first event: the first token is in hand then.
    assert server_timing(80.0, 60.0, streamed=True) == "gateway;dur=20.0, provider;dur=60.0, ttft;dur=80.0"
    assert server_timing(5.0, 9.0) == "gateway;dur=0.0, provider;dur=9.0"  # clocks never go negative


def test_an_endpoints_provider_time_is_read_back_and_replaced_by_the_whole_header() -> None:
    result = {"statusCode": 200, "headers": {"server-timing": provider_timing(42.5)["Server-Timing"]}}
    assert provider_ms_in(result) == 42.5
    with_server_timing(result, server_timing(50.0, 42.5, streamed=True))
    assert result["headers"] == {"Server-Timing": "gateway;dur=7.5, provider;dur=42.5, ttft;dur=50.0"}
    assert provider_ms_in({"headers": {"Server-Timing": "gateway;dur=1"}}) is None


def test_multi_value_headers_get_one_value() -> None:
    result = {"statusCode": 200, "multiValueHeaders": {"Server-Timing": ["provider;dur=1"], "x": ["y"]}}
    with_server_timing(result, "gateway;dur=2.0, provider;dur=1.0")
    assert result["multiValueHeaders"] == {"x": ["y"], "Server-Timing": ["gateway;dur=2.0, provider;dur=1.0"]}
