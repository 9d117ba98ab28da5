"""Fault-injection fixtures: one local stack per worker, emulator faults reset around every test,
and a fresh tenant + key per test so its quota windows and audit trail hold only that test's traffic.
The scenarios and checks live in fault_scenarios.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fault_scenarios import Emulators, Tenant, new_tenant, scenario_routes  # type: ignore[import-not-found]

from tests.local_stack_process import start_llmops_serve, stop_llmops_serve

PROVIDER_READ_TIMEOUT_S = 1.0
FAULT_REPORT_ENV = "LLMOPS_FAULT_REPORT"


@pytest.fixture(scope="session")
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    state_dir = tmp_path_factory.mktemp("faults-stack")
    routes_file = state_dir / "routes.json"
    routes_file.write_text(json.dumps(scenario_routes(), indent=2))
    # Emulated timeouts must surface in about a second, not the local stack's default 5 s. One
    # front-door worker: circuit breakers are per container, and the breaker tests count calls.
    process, state = start_llmops_serve(
        state_dir,
        "--routes-file",
        str(routes_file),
        "--provider-read-timeout-s",
        str(PROVIDER_READ_TIMEOUT_S),
        "--workers",
        "1",
    )
    yield state
    stop_llmops_serve(process)


@pytest.fixture
def emulators(fault_stack: dict[str, Any]) -> Iterator[Emulators]:
    emulators = Emulators(fault_stack)
    emulators.reset()
    yield emulators
    emulators.reset()


@pytest.fixture
def tenant(fault_stack: dict[str, Any]) -> Tenant:
    return new_tenant(fault_stack)


# -- the promises, checked from outside ------------------------------------------------------------


@pytest.fixture(scope="session")
def fault_rates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Measured rates per scenario, written as JSON at the end (`LLMOPS_FAULT_REPORT` picks the path)."""
    rates: dict[str, Any] = {}
    yield rates
    target = os.environ.get(FAULT_REPORT_ENV)
    path = Path(target) if target else tmp_path_factory.mktemp("fault-report") / "fault_rates.json"
    path.write_text(json.dumps(rates, indent=2, sort_keys=True))
    print(f"\nfault rates: {path}")
