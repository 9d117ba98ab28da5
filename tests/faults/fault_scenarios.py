"""Fault scenarios and the checks the fault tests make, all from outside the stack.

- `Scenario`: one alias per scenario, with targets of its own (`scenario_routes()` is the route
  file the fault stack runs with).
- `Emulators`: the model emulators' fault-injection admin API.
- `Tenant`: a fresh tenant and key that remembers every response it got.
- `assert_accounted` / `assert_audited`: the quota windows (`GET /v1/usage`) and the audit trail
  (Audit table + `llmops audit verify`) agree with what the tenant was answered.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx

from llmops.adapters.dynamodb.audit_log import DynamoAuditLog
from llmops.adapters.dynamodb.key_store import DynamoKeyStore
from llmops.domain.tenancy import Limits
from llmops.local.naming import local_table_name

__all__ = [
    "ROOT",
    "Emulators",
    "Scenario",
    "Tenant",
    "assert_accounted",
    "assert_audited",
    "assert_upstream_error",
    "audit_request_ids",
    "moto_client",
    "new_tenant",
    "run_llmops",
    "scenario_routes",
]

ROOT = Path(__file__).resolve().parents[2]
LLMOPS = Path(sys.executable).parent / "llmops"
# Each scenario gets an alias of its own, backed by model ids and endpoints of its own: the gateway's
# circuit breaker is per target and lives as long as the stack, so scenarios sharing targets would
# see each other's failures (a breaker opened by one test reorders the next test's attempts).
BEDROCK_SCENARIOS = (
    "throttled",
    "internal-error",
    "service-unavailable",
    "model-error",
    "timeout",
    "slow",
    "all-throttled",
    "all-erroring",
    "all-timing-out",
    "recovering",
    "breaker",
    "burst",
    "concurrency",
)
SAGEMAKER_SCENARIOS = ("sagemaker-error",)
SINGLE_TARGET_SCENARIOS = frozenset({"slow", "all-timing-out", "recovering", "concurrency"})
SAGEMAKER_VARIANT = "primary"


@dataclass(frozen=True)
class Scenario:
    """One alias: a primary and, unless single-target, a Bedrock fallback."""

    name: str

    @property
    def alias(self) -> str:
        return f"faults-{self.name}"

    @property
    def on_sagemaker(self) -> bool:
        return self.name in SAGEMAKER_SCENARIOS

    @property
    def primary_service(self) -> str:
        return "sagemaker" if self.on_sagemaker else "bedrock"

    @property
    def primary_key(self) -> str:
        """The emulator's fault and stats key for the primary."""
        if self.on_sagemaker:
            return f"faults-{self.name}-endpoint/{SAGEMAKER_VARIANT}"
        return f"faults.{self.name}-primary-v1:0"

    @property
    def fallback_key(self) -> str:
        return f"faults.{self.name}-fallback-v1:0"

    @property
    def primary_target(self) -> str:
        """As the x-llmops-target header shows it."""
        return f"sagemaker:{self.primary_key}" if self.on_sagemaker else f"bedrock:{self.primary_key}"

    @property
    def fallback_target(self) -> str:
        return f"bedrock:{self.fallback_key}"


def _target(**fields: Any) -> dict[str, Any]:
    prices = {"price_per_1k_input_usd": 0.0008, "price_per_1k_output_usd": 0.004}
    return {**prices, "context_window": 32768, "max_output_tokens": 4096, **fields}


def scenario_routes() -> dict[str, Any]:
    targets: dict[str, Any] = {}
    routes: dict[str, Any] = {}
    for scenario in (Scenario(n) for n in (*BEDROCK_SCENARIOS, *SAGEMAKER_SCENARIOS)):
        primary, fallback = f"{scenario.name}-primary", f"{scenario.name}-fallback"
        if scenario.on_sagemaker:
            endpoint = scenario.primary_key.split("/")[0]
            targets[primary] = _target(provider="sagemaker", endpoint_name=endpoint, variant=SAGEMAKER_VARIANT)
        else:
            targets[primary] = _target(provider="bedrock", model_id=scenario.primary_key)
        route: dict[str, Any] = {"description": f"fault scenario {scenario.name}", "targets": [{"target": primary}]}
        if scenario.name not in SINGLE_TARGET_SCENARIOS:
            targets[fallback] = _target(provider="bedrock", model_id=scenario.fallback_key)
            route["fallbacks"] = [fallback]
        routes[scenario.alias] = route
    return {"version": "faults-1", "targets": targets, "routes": routes}


# Generous limits: the windows must exist (so /v1/usage reports them) but never refuse anything.
KEY_LIMITS = Limits(
    requests_per_minute=100_000,
    tokens_per_minute=100_000_000,
    tokens_per_day=1_000_000_000,
    monthly_budget_usd=1000.0,
)


def run_llmops(stack: dict[str, Any], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env["COLUMNS"] = "1000"  # rich must not wrap the JSON it prints
    return subprocess.run(
        [str(LLMOPS), *args, "--state-dir", stack["state_dir"]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


class Emulators:
    """The Bedrock and SageMaker runtime emulators' admin API."""

    def __init__(self, stack: dict[str, Any]) -> None:
        self._urls = {"bedrock": stack["bedrock_runtime_url"], "sagemaker": stack["sagemaker_runtime_url"]}

    def fault(self, service: str, key: str, **spec: float) -> None:
        response = httpx.post(f"{self._urls[service]}/_emulator/faults", json={"key": key, **spec}, timeout=10)
        response.raise_for_status()

    def calls(self, service: str, key: str) -> dict[str, int]:
        """Calls the emulator received for `key`, by outcome (ok, throttled, error, timeout)."""
        response = httpx.get(f"{self._urls[service]}/_emulator/stats", timeout=10)
        response.raise_for_status()
        empty = {"calls": 0, "ok": 0, "throttled": 0, "error": 0, "timeout": 0}
        counts: dict[str, int] = response.json()["calls"].get(key, empty)
        return counts

    def reset(self) -> None:
        # Also wakes calls still hanging in a simulated timeout, so no thread outlives its test.
        for url in self._urls.values():
            httpx.post(f"{url}/_emulator/reset", json={"seed": 0}, timeout=10).raise_for_status()


@dataclass
class Tenant:
    """A tenant with one fresh key; remembers every response it got."""

    name: str
    api_key: str
    stack: dict[str, Any]
    responses: list[httpx.Response] = field(default_factory=list)
    baseline: dict[str, dict[str, Any]] = field(default_factory=dict)

    def _client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.stack["base_url"] + "/",
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=60,
        )

    def chat(self, model: str, content: str = "Say hello in five words.", **fields: Any) -> httpx.Response:
        """One chat completion; `model` is an alias (see Scenario.alias)."""
        body = {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 64, **fields}
        with self._client() as client:
            response = client.post("chat/completions", json=body)
        self.responses.append(response)
        return response

    def usage(self) -> dict[str, dict[str, Any]]:
        with self._client() as client:
            response = client.get("usage")
        response.raise_for_status()
        return {row["window"]: row for row in response.json()["windows"] if row["scope"] == "key"}

    def after_its_responses(self) -> None:
        """Returns once the gateway has done what it does after its responses (the settle with the
        audit record, written after the last byte): its one execution environment takes the next
        request only then, as a Lambda environment does, so a request through it is the barrier."""
        httpx.get(self.stack["front_door_url"] + "/health", timeout=60).raise_for_status()

    @property
    def request_ids(self) -> list[str]:
        return [r.headers["x-request-id"] for r in self.responses]


def moto_client(stack: dict[str, Any], service: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        region_name="us-east-1",
        endpoint_url=stack["aws_endpoint_url"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def new_tenant(stack: dict[str, Any]) -> Tenant:
    """A fresh tenant and key, created the way `llmops keys create` does (that CLI is a thin
    wrapper over DynamoKeyStore; a subprocess per test would cost seconds)."""
    name = f"faults-{uuid.uuid4().hex[:12]}"
    store = DynamoKeyStore(moto_client(stack, "dynamodb"), local_table_name("ApiKeys"), stack["key_pepper"])
    raw_key, _ = store.create(name, time.time(), limits=KEY_LIMITS)
    tenant = Tenant(name=name, api_key=raw_key, stack=stack)
    tenant.baseline = tenant.usage()
    return tenant


def assert_upstream_error(response: httpx.Response, status: int, code: str, alias: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["code"] == code
    assert f"'{alias}'" in error["message"]
    if status == 503:
        assert response.headers["retry-after"].isdigit()


def assert_accounted(tenant: Tenant) -> dict[str, float]:
    """Windows hold exactly the admitted requests' actual usage: nothing double-charged, nothing
    left reserved (a failed request's reservation, request count included, is released).

    A window that rolled over during the test (a minute boundary) can only be checked as an upper
    bound; every other window is checked exactly.
    """
    admitted = [r for r in tenant.responses if r.status_code == 200]
    # A response-cache hit is a request but spends no tokens and no money.
    spent = [r for r in admitted if r.headers.get("x-llmops-cache") != "hit"]
    tokens = float(sum(r.json()["usage"]["total_tokens"] for r in spent))
    expected = {
        "rpm": float(len(admitted)),
        "tpm": tokens,
        "tpd": tokens,
        "usd_month": sum(float(r.headers["x-llmops-cost-usd"]) for r in spent),
    }
    windows = tenant.usage()
    assert set(windows) == set(expected), windows
    for name, row in windows.items():
        tolerance = 1e-7 * (len(admitted) + 1) if name == "usd_month" else 0.0
        if row["resets_at"] == tenant.baseline[name]["resets_at"]:
            assert abs(row["used"] - expected[name]) <= tolerance, (name, row, expected[name])
        else:
            assert row["used"] <= expected[name] + tolerance, (name, row, expected[name])
    return expected


def audit_request_ids(stack: dict[str, Any], tenant_id: str) -> Counter[str]:
    """Request ids of the tenant's audit entries, read straight from the Audit table."""
    dynamodb = moto_client(stack, "dynamodb")
    ids: Counter[str] = Counter()
    request: dict[str, Any] = {
        "TableName": local_table_name("Audit"),
        "FilterExpression": "tenant_id = :t AND begins_with(sk, :entry)",
        "ExpressionAttributeValues": {":t": {"S": tenant_id}, ":entry": {"S": "r#"}},
    }
    while True:
        page = dynamodb.scan(**request)
        ids.update(item["request_id"]["S"] for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return ids
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def assert_audited(tenant: Tenant, *, with_cli: bool = False) -> None:
    """One audit record per request sent, none lost, none doubled, and the hash chains intact.

    `with_cli` runs `llmops audit verify` itself; otherwise the same check runs in-process
    (DynamoAuditLog.verify, which the CLI wraps) to save a subprocess per test.
    """
    sent = Counter(tenant.request_ids)
    assert len(sent) == len(tenant.responses), "request ids must be unique"
    tenant.after_its_responses()
    assert audit_request_ids(tenant.stack, tenant.name) == sent
    if with_cli:
        verify = run_llmops(tenant.stack, "audit", "verify", "--tenant", tenant.name, "--json", check=False)
        report = json.loads(verify.stdout)
        assert verify.returncode == 0 and report["ok"], report
        assert report["records"] == len(tenant.responses)
        return
    log = DynamoAuditLog(moto_client(tenant.stack, "dynamodb"), local_table_name("Audit"))
    result = log.verify(tenant.name, time.time())
    assert result.ok, result.problems
    assert result.records == len(tenant.responses)
