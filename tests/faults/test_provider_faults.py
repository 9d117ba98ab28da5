"""Faulty model endpoints (throttling, 5xx, timeouts, slowness) against a live local stack.

Promises (docs/architecture.md, the README's HTTP API; issue 8 item 7):
- fallbacks succeed while a healthy target exists, and `x-llmops-target` names the one that answered;
- when every target fails the error is the documented one: 503 `upstream_throttled` with
  Retry-After, 502 `upstream_error` or 504 `upstream_timeout`, in the OpenAI shape, naming the alias;
- no request is double-charged or left reserved (checked on `GET /v1/usage`);
- no audit record is lost (one per request in the Audit table, `llmops audit verify` passes).

Each scenario has an alias and targets of its own (see conftest.Scenario), because the gateway's
per-target circuit breaker lives as long as the stack and would carry one test's failures into the
next.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fault_scenarios import (  # type: ignore[import-not-found]
    Emulators,
    Scenario,
    Tenant,
    assert_accounted,
    assert_audited,
    assert_upstream_error,
    audit_request_ids,
    new_tenant,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("faults")]

UPSTREAM_STATUSES = {502: "upstream_error", 503: "upstream_throttled", 504: "upstream_timeout"}
TIMEOUT_S = 3.0  # how long a faulted call hangs: above the stack's 1 s provider read timeout
BREAKER_THRESHOLD = 5  # llmops.domain.routing.CircuitBreaker.threshold


def _assert_ok_from(response: httpx.Response, target: str, alias: str) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["x-llmops-route"] == alias
    assert response.headers["x-llmops-target"] == target
    assert response.json()["usage"]["total_tokens"] > 0


@pytest.mark.parametrize(
    ("name", "spec", "outcome"),
    [
        ("throttled", {"throttle_rate": 1.0}, "throttled"),
        ("internal-error", {"error_rate": 1.0, "error_status": 500}, "error"),
        ("service-unavailable", {"error_rate": 1.0, "error_status": 503}, "error"),
        ("model-error", {"error_rate": 1.0, "error_status": 424}, "error"),
        ("timeout", {"timeout_rate": 1.0, "timeout_s": TIMEOUT_S}, "timeout"),
        ("sagemaker-error", {"error_rate": 1.0}, "error"),
    ],
    ids=["throttled", "internal-error", "service-unavailable", "model-error", "timeout", "sagemaker-error"],
)
def test_failing_primary_falls_back_to_the_healthy_target(
    emulators: Emulators, tenant: Tenant, fault_rates: dict[str, Any], name: str, spec: dict[str, float], outcome: str
) -> None:
    scenario = Scenario(name)
    emulators.fault(scenario.primary_service, scenario.primary_key, **spec)
    requests = 1 if outcome == "timeout" else 2  # each timeout costs two 1 s attempts
    for _ in range(requests):
        _assert_ok_from(tenant.chat(scenario.alias), scenario.fallback_target, scenario.alias)
    assert emulators.calls(scenario.primary_service, scenario.primary_key)[outcome] >= requests
    assert emulators.calls("bedrock", scenario.fallback_key)["ok"] == requests
    assert_accounted(tenant)
    assert_audited(tenant)
    fault_rates.setdefault("fallback_success_rate", {})[name] = sum(
        r.status_code == 200 for r in tenant.responses
    ) / len(tenant.responses)


def test_slow_but_healthy_target_answers_itself(emulators: Emulators, tenant: Tenant) -> None:
    # Slower than usual yet within the read timeout: no retry, no fallback, no error.
    scenario = Scenario("slow")
    emulators.fault("bedrock", scenario.primary_key, latency_ms=400)
    _assert_ok_from(tenant.chat(scenario.alias), scenario.primary_target, scenario.alias)
    assert emulators.calls("bedrock", scenario.primary_key) == {
        "calls": 1,
        "ok": 1,
        "throttled": 0,
        "error": 0,
        "timeout": 0,
    }
    assert_accounted(tenant)
    assert_audited(tenant)


@pytest.mark.parametrize(
    ("name", "spec", "status"),
    [
        ("all-throttled", {"throttle_rate": 1.0}, 503),
        ("all-erroring", {"error_rate": 1.0, "error_status": 500}, 502),
        # Single target: each timed-out target costs two 1 s attempts.
        ("all-timing-out", {"timeout_rate": 1.0, "timeout_s": TIMEOUT_S}, 504),
    ],
    ids=["throttled", "erroring", "timing-out"],
)
def test_no_healthy_target_is_the_documented_error_and_releases_the_reservation(
    emulators: Emulators, tenant: Tenant, name: str, spec: dict[str, float], status: int
) -> None:
    scenario = Scenario(name)
    emulators.fault("bedrock", scenario.primary_key, **spec)
    emulators.fault("bedrock", scenario.fallback_key, **spec)
    for _ in range(1 if status == 504 else 2):
        assert_upstream_error(tenant.chat(scenario.alias), status, UPSTREAM_STATUSES[status], scenario.alias)
    # Nothing was admitted: every window is back to zero, the request count included.
    assert assert_accounted(tenant) == {"rpm": 0.0, "tpm": 0.0, "tpd": 0.0, "usd_month": 0.0}
    assert_audited(tenant)


def test_recovered_target_serves_again(emulators: Emulators, tenant: Tenant) -> None:
    scenario = Scenario("recovering")
    emulators.fault("bedrock", scenario.primary_key, throttle_rate=1.0)
    assert_upstream_error(tenant.chat(scenario.alias), 503, "upstream_throttled", scenario.alias)
    emulators.reset()
    _assert_ok_from(tenant.chat(scenario.alias), scenario.primary_target, scenario.alias)
    assert_accounted(tenant)
    assert_audited(tenant)


def test_open_breaker_skips_the_failing_primary(emulators: Emulators, tenant: Tenant) -> None:
    scenario = Scenario("breaker")
    emulators.fault("bedrock", scenario.primary_key, error_rate=1.0)
    for _ in range(BREAKER_THRESHOLD):
        response = tenant.chat(scenario.alias)
        _assert_ok_from(response, scenario.fallback_target, scenario.alias)
        assert response.headers["x-llmops-attempts"] == "2"
    calls_when_opened = emulators.calls("bedrock", scenario.primary_key)["calls"]
    for _ in range(2):
        response = tenant.chat(scenario.alias)
        _assert_ok_from(response, scenario.fallback_target, scenario.alias)
        assert response.headers["x-llmops-attempts"] == "1"
    assert emulators.calls("bedrock", scenario.primary_key)["calls"] == calls_when_opened
    assert_accounted(tenant)
    assert_audited(tenant)


# `LLMOPS_FAULT_BURST` lets the benchmark run a longer burst for steadier rates.
BURST_REQUESTS = int(os.environ.get("LLMOPS_FAULT_BURST") or 20)
# Per call; botocore retries each target once, so a target fails a request about half the time and
# both targets fail about a quarter of the requests: the burst sees successes, fallbacks and errors.
BURST_FAULTS = {"throttle_rate": 0.4, "error_rate": 0.3, "latency_ms": 20.0}
BURST_CONCURRENCY = 4


def test_burst_under_mixed_faults_keeps_every_promise(
    emulators: Emulators, tenant: Tenant, fault_rates: dict[str, Any]
) -> None:
    scenario = Scenario("burst")
    for key in (scenario.primary_key, scenario.fallback_key):
        emulators.fault("bedrock", key, **BURST_FAULTS)
    with ThreadPoolExecutor(BURST_CONCURRENCY) as pool:
        responses = list(pool.map(lambda _: tenant.chat(scenario.alias), range(BURST_REQUESTS)))

    outcomes: Counter[str] = Counter()
    for response in responses:
        if response.status_code == 200:
            target = response.headers["x-llmops-target"]
            assert target in {scenario.primary_target, scenario.fallback_target}
            outcomes["ok_primary" if target == scenario.primary_target else "ok_fallback"] += 1
        else:
            code = UPSTREAM_STATUSES.get(response.status_code)
            assert code is not None, response.text
            assert_upstream_error(response, response.status_code, code, scenario.alias)
            outcomes[code] += 1
    assert outcomes["ok_primary"] + outcomes["ok_fallback"] > 0
    assert_accounted(tenant)
    assert_audited(tenant, with_cli=True)

    fell_back = [r for r in responses if r.headers.get("x-llmops-target") != scenario.primary_target]
    fault_rates["mixed_burst"] = {
        "requests": BURST_REQUESTS,
        "concurrency": BURST_CONCURRENCY,
        "fault_spec_per_target": BURST_FAULTS,
        "success_rate": (outcomes["ok_primary"] + outcomes["ok_fallback"]) / BURST_REQUESTS,
        "fallback_success_rate": outcomes["ok_fallback"] / len(fell_back) if fell_back else None,
        "outcomes": dict(outcomes),
        "emulator_calls": {
            "primary": emulators.calls("bedrock", scenario.primary_key),
            "fallback": emulators.calls("bedrock", scenario.fallback_key),
        },
    }


def test_concurrent_requests_keep_their_own_identity(fault_stack: dict[str, Any], emulators: Emulators) -> None:
    scenario = Scenario("concurrency")
    emulators.fault("bedrock", scenario.primary_key, latency_ms=30)  # widen the window requests overlap in
    tenants = [new_tenant(fault_stack), new_tenant(fault_stack)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: tenants[i % 2].chat(scenario.alias), range(24)))
    ids = [rid for t in tenants for rid in t.request_ids]
    assert len(set(ids)) == len(ids), "every request must keep its own x-request-id"
    tenants[0].after_its_responses()
    for t in tenants:
        assert audit_request_ids(fault_stack, t.name) == Counter(t.request_ids)
