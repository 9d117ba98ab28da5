"""A hung model cannot outlive the gateway function (issue 11, item 2), against a live local stack.

The stack runs with a gateway timeout of a few seconds, and its front door hands every invocation a
Lambda context that runs out then; an invocation that outlives it is answered with API Gateway's
integration-timeout 504, as in AWS, so a 200 or the gateway's own 504 proves the handler finished in
time. Primaries hang far longer than the function's timeout.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fault_scenarios import (  # type: ignore[import-not-found]
    Emulators,
    Scenario,
    Tenant,
    assert_accounted,
    assert_audited,
    assert_upstream_error,
    moto_client,
    new_tenant,
    run_llmops,
    scenario_routes,
)

from llmops.adapters.dynamodb.audit_log import DynamoAuditLog
from llmops.adapters.dynamodb.key_store import DynamoKeyStore
from llmops.adapters.dynamodb.quota_ledger import DynamoQuotaLedger
from llmops.domain.quotas import Demand
from llmops.local.naming import local_table_name
from tests.local_stack_process import start_llmops_serve, stop_llmops_serve

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("deadline-faults")]

GATEWAY_TIMEOUT_S = 6.0  # the function's timeout on this stack; the deadline margin is the default 2 s
HANG_S = 30.0  # how long a hung target holds a call: far beyond the function's timeout


@pytest.fixture(scope="module")
def deadline_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    state_dir = tmp_path_factory.mktemp("deadline-stack")
    routes_file = state_dir / "routes.json"
    routes_file.write_text(json.dumps(scenario_routes(), indent=2))
    process, state = start_llmops_serve(
        state_dir,
        "--routes-file",
        str(routes_file),
        "--gateway-timeout-s",
        str(GATEWAY_TIMEOUT_S),
        # The configured read timeout is above what the deadline allows: the deadline must cut it.
        "--provider-read-timeout-s",
        "20",
        "--workers",
        "1",
        "--reservation-sweep-s",
        "1",
    )
    yield state
    stop_llmops_serve(process)


@pytest.fixture
def emulators(deadline_stack: dict[str, Any]) -> Iterator[Emulators]:
    emulators = Emulators(deadline_stack)
    emulators.reset()
    yield emulators
    emulators.reset()  # wakes the calls still hanging


@pytest.fixture
def tenant(deadline_stack: dict[str, Any]) -> Tenant:
    return new_tenant(deadline_stack)


def _audited_error_code(tenant: Tenant, request_id: str) -> str | None:
    tenant.after_its_responses()
    record = DynamoAuditLog(moto_client(tenant.stack, "dynamodb"), local_table_name("Audit")).get(
        tenant.name, request_id
    )
    assert record is not None
    return record.error_code


def test_hung_primary_is_answered_by_the_fallback_within_the_function_timeout(
    emulators: Emulators, tenant: Tenant
) -> None:
    scenario = Scenario("timeout")
    emulators.fault(scenario.primary_service, scenario.primary_key, timeout_rate=1.0, timeout_s=HANG_S)

    started = time.monotonic()
    response = tenant.chat(scenario.alias)
    elapsed = time.monotonic() - started

    assert response.status_code == 200, response.text
    assert response.headers["x-llmops-target"] == scenario.fallback_target
    assert elapsed < GATEWAY_TIMEOUT_S
    assert emulators.calls(scenario.primary_service, scenario.primary_key)["timeout"] == 1  # not called twice
    assert emulators.calls("bedrock", scenario.fallback_key)["ok"] == 1
    assert_accounted(tenant)  # settled at the fallback's actual usage, nothing left reserved
    assert_audited(tenant)


def test_nothing_answering_in_time_is_the_gateways_504_with_the_reservation_released(
    emulators: Emulators, tenant: Tenant
) -> None:
    scenario = Scenario("all-timing-out")  # a single target: nothing to fall back to
    emulators.fault(scenario.primary_service, scenario.primary_key, timeout_rate=1.0, timeout_s=HANG_S)
    both = Scenario("all-erroring")  # a primary and a fallback, both hung
    for key in (both.primary_key, both.fallback_key):
        emulators.fault("bedrock", key, timeout_rate=1.0, timeout_s=HANG_S)

    for alias in (scenario.alias, both.alias):
        started = time.monotonic()
        response = tenant.chat(alias)
        assert time.monotonic() - started < GATEWAY_TIMEOUT_S
        # The gateway's own answer in the OpenAI shape, not API Gateway's integration timeout.
        assert_upstream_error(response, 504, "upstream_timeout", alias)
        assert _audited_error_code(tenant, response.headers["x-request-id"]) == "upstream_timeout"

    assert assert_accounted(tenant) == {"rpm": 0.0, "tpm": 0.0, "tpd": 0.0, "usd_month": 0.0}
    assert_audited(tenant)


def test_a_reservation_its_function_never_settled_is_released_by_the_local_sweeper(tenant: Tenant) -> None:
    """What a function killed mid-request leaves behind, planted directly: a reservation already due."""
    context = DynamoKeyStore(
        moto_client(tenant.stack, "dynamodb"), local_table_name("ApiKeys"), tenant.stack["key_pepper"]
    ).resolve(tenant.api_key, time.time())
    ledger = DynamoQuotaLedger(
        moto_client(tenant.stack, "dynamodb"), local_table_name("Quotas"), local_table_name("Usage")
    )
    now = time.time()
    # Due a few seconds from now, not at once: the stack's 1 s timer would otherwise release it
    # before the planting is checked.
    release_at = int(now) + 4
    ledger.reserve(
        context, "killed-mid-request", Demand(tokens=5_000, cost_nanos=7_000_000), now, release_at=release_at
    )
    assert tenant.usage()["tpd"]["used"] == tenant.baseline["tpd"]["used"] + 5_000
    time.sleep(max(0.0, release_at + 1 - time.time()))

    swept = run_llmops(tenant.stack, "usage", "sweep", "--json")  # the CLI verb, racing the 1 s timer
    assert set(json.loads(swept.stdout)) == {"released", "already_settled", "tenants"}

    deadline = time.monotonic() + 10
    while tenant.usage()["tpd"]["used"] != tenant.baseline["tpd"]["used"] and time.monotonic() < deadline:
        time.sleep(0.2)
    windows = tenant.usage()
    for name in ("rpm", "tpm", "tpd", "usd_month"):
        assert windows[name]["used"] == tenant.baseline[name]["used"], name
