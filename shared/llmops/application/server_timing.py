"""The `Server-Timing` header on every gateway response: the gateway's own time apart from the model's.

`gateway;dur=G, provider;dur=P` (milliseconds): P is the time spent waiting on model providers
(every attempt and fallback, as the `provider` stage of the audit record's `stage_ms`), G the rest
of the invocation until the response was handed to the transport (parsing, guards, routing, cache,
quota and audit writes, rendering). A route that calls no model has `gateway;dur` only.

A streamed answer sends its headers before its body, at the provider's first event: then P is the
wait for that first event, G the gateway's time before and after it, and `ttft;dur` (= G + P) when
the first token was in hand, ready to be written. What follows (the rest of the stream, the output
guard per delta, settle and audit after the last byte) cannot be in a header already sent; the audit
record has it.

An endpoint that streams puts its provider time in its headers (`provider_timing`), since its trace
is finished only after the body; the Lambda handler, which knows the whole invocation's time, turns
that (or a finished trace's provider time) into the final header (`with_server_timing`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["SERVER_TIMING", "provider_ms_in", "provider_timing", "server_timing", "with_server_timing"]

SERVER_TIMING = "Server-Timing"
_PROVIDER = "provider"


def _ms(value: float) -> str:
    return f"{max(0.0, value):.1f}"


def provider_timing(provider_ms: float) -> dict[str, str]:
    """The header an endpoint answers with when its provider time is known before its trace ends."""
    return {SERVER_TIMING: f"{_PROVIDER};dur={_ms(provider_ms)}"}


def server_timing(total_ms: float, provider_ms: float | None = None, *, streamed: bool = False) -> str:
    """The header's value for an invocation that took `total_ms`, `provider_ms` of it on models."""
    provider = max(0.0, provider_ms) if provider_ms is not None else None
    metrics = [f"gateway;dur={_ms(total_ms - (provider or 0.0))}"]
    if provider is not None:
        metrics.append(f"{_PROVIDER};dur={_ms(provider)}")
        if streamed:
            metrics.append(f"ttft;dur={_ms(total_ms)}")
    return ", ".join(metrics)


def _header_values(result: Mapping[str, Any]) -> list[str]:
    values: list[str] = []
    for key, value in (result.get("headers") or {}).items():
        if key.lower() == SERVER_TIMING.lower():
            values.append(str(value))
    for key, many in (result.get("multiValueHeaders") or {}).items():
        if key.lower() == SERVER_TIMING.lower():
            values.extend(str(v) for v in many)
    return values


def provider_ms_in(result: Mapping[str, Any]) -> float | None:
    """The `provider;dur` an endpoint put in a proxy result's headers, if any."""
    for value in _header_values(result):
        for metric in value.split(","):
            name, _, params = metric.strip().partition(";")
            if name.strip() != _PROVIDER:
                continue
            for param in params.split(";"):
                key, _, number = param.strip().partition("=")
                if key == "dur":
                    try:
                        return float(number)
                    except ValueError:
                        return None
    return None


def with_server_timing(result: dict[str, Any], value: str) -> dict[str, Any]:
    """`result` (a proxy integration result) with `Server-Timing: value`, replacing any the route set."""
    for section in ("headers", "multiValueHeaders"):
        headers = result.get(section)
        if headers:
            result[section] = {k: v for k, v in headers.items() if k.lower() != SERVER_TIMING.lower()}
    if result.get("multiValueHeaders") is not None:
        result["multiValueHeaders"][SERVER_TIMING] = [value]
    else:
        result["headers"] = {**(result.get("headers") or {}), SERVER_TIMING: value}
    return result
