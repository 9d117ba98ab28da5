"""The robustness benchmark's fault-injection results: the fallback rates and the mixed-fault burst
the fault suite measured (`LLMOPS_FAULT_REPORT`), and which promise a failing fault test broke."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmops.bench.pytest_results import TestOutcome
from llmops.bench.report import format_number, markdown_table

__all__ = [
    "BURST_OUTCOME_STATUS",
    "FALLBACK_TEST",
    "PROMISE_CHECKS",
    "FallbackScenario",
    "fallback_scenarios",
    "fallback_target_percent",
    "fault_report_lines",
    "promise_failures",
]

FALLBACK_TEST = "test_failing_primary_falls_back_to_the_healthy_target"

BURST_OUTCOME_STATUS = {
    "ok_primary": 200,
    "ok_fallback": 200,
    "upstream_error": 502,
    "upstream_throttled": 503,
    "upstream_timeout": 504,
}
# Functions in tests/faults/fault_scenarios.py; a failure's traceback names the one that failed.
PROMISE_CHECKS = {
    "accounting (GET /v1/usage: nothing double-charged or left reserved)": ("assert_accounted",),
    "audit (one record per request, hash chains intact)": ("assert_audited", "audit_request_ids"),
    "documented error shape when no target is healthy": ("assert_upstream_error",),
}


@dataclass(frozen=True, slots=True)
class FallbackScenario:
    name: str
    outcome: str  # passed, failed, error, skipped or "not run"
    success_rate: float | None  # recorded by the test only when all its checks passed


def promise_failures(tests: Iterable[TestOutcome]) -> dict[str, list[str]]:
    """Per fault-suite promise, the failing tests whose traceback goes through its check."""
    failures: dict[str, list[str]] = {promise: [] for promise in PROMISE_CHECKS}
    for test in tests:
        if test.outcome not in {"failed", "error"} or not test.file.startswith("tests/faults/"):
            continue
        for promise, functions in PROMISE_CHECKS.items():
            if any(re.search(rf"\b{function}\b", test.text) for function in functions):
                failures[promise].append(test.name)
    return failures


def fallback_scenarios(faults: Mapping[str, Any] | None, tests: Sequence[TestOutcome]) -> list[FallbackScenario]:
    """The healthy-fallback scenarios, by JUnit outcome, with the rate the test recorded (if it did)."""
    rates: Mapping[str, Any] = (faults or {}).get("fallback_success_rate") or {}
    outcomes: dict[str, str] = {}
    for test in tests:
        if test.name.startswith(f"{FALLBACK_TEST}[") and test.name.endswith("]"):
            outcomes[test.name[len(FALLBACK_TEST) + 1 : -1]] = test.outcome
    names = sorted(set(outcomes) | set(rates))
    return [
        FallbackScenario(
            name,
            outcomes.get(name, "passed" if name in rates else "not run"),
            float(rates[name]) if isinstance(rates.get(name), int | float) else None,
        )
        for name in names
    ]


def fallback_target_percent(scenarios: Sequence[FallbackScenario]) -> float | None:
    """The lowest per-scenario success rate in %, a failed scenario counting as 0 (it recorded none)."""
    ran = [s for s in scenarios if s.outcome in {"passed", "failed", "error"}]
    if not ran:
        return None
    return 100.0 * min(s.success_rate if s.success_rate is not None and s.outcome == "passed" else 0.0 for s in ran)


def _percent(value: float | None) -> str:
    return format_number(None if value is None else 100.0 * value, 1, "%")


def fault_report_lines(
    faults: Mapping[str, Any] | None,
    tests: Sequence[TestOutcome],
    scenarios: Sequence[FallbackScenario],
    promises: Mapping[str, list[str]],
) -> list[str]:
    """The report's fault-injection part: fallback rates, the mixed burst and the promises' verdicts."""
    lines = ["**Fault injection** (model emulators failing on purpose; `tests/faults`):", ""]
    if scenarios:
        lines += [
            "Failing primary, healthy fallback: share of requests answered (by the fallback).",
            "",
            markdown_table(
                ("scenario", "test", "success rate"),
                [
                    (
                        s.name,
                        s.outcome,
                        _percent(s.success_rate) if s.outcome == "passed" else "failed (counted as 0 %)",
                    )
                    for s in scenarios
                ],
            ),
            "",
        ]
    burst: Mapping[str, Any] = (faults or {}).get("mixed_burst") or {}
    if burst:
        outcomes: Mapping[str, int] = burst.get("outcomes") or {}
        total = sum(outcomes.values()) or 1
        lines += [
            f"Mixed-fault burst: {burst.get('requests')} requests, {burst.get('concurrency')} at a time, both "
            f"targets faulty (per call: {json.dumps(burst.get('fault_spec_per_target', {}), sort_keys=True)}). "
            f"Success rate {_percent(burst.get('success_rate'))}; requests that left the primary and were "
            f"answered by the fallback: {_percent(burst.get('fallback_success_rate'))}.",
            "",
            markdown_table(
                ("outcome", "HTTP status", "requests", "share"),
                [
                    (name, BURST_OUTCOME_STATUS.get(name, "?"), count, _percent(count / total))
                    for name, count in sorted(outcomes.items(), key=lambda item: (-item[1], item[0]))
                ],
            ),
            "",
        ]
        calls: Mapping[str, Mapping[str, int]] = burst.get("emulator_calls") or {}
        if calls:
            kinds = sorted({k for c in calls.values() for k in c if k != "calls"})
            lines += [
                markdown_table(
                    ("emulator calls", "calls", *kinds),
                    [(target, c.get("calls", 0), *(c.get(k, 0) for k in kinds)) for target, c in calls.items()],
                ),
                "",
            ]
    elif faults is not None or scenarios:
        lines += ["The mixed-fault burst recorded no rates (its test failed or did not run).", ""]
    fault_tests = [t for t in tests if t.file.startswith("tests/faults/")]
    if fault_tests:
        lines += [
            markdown_table(
                ("promise (checked after every fault scenario)", "verdict"),
                [
                    (promise, "held" if not failed else f"broken in {', '.join(failed)}")
                    for promise, failed in promises.items()
                ],
            ),
            "",
        ]
    if faults is None and not scenarios:
        lines += ["No fault rates were written (the provider fault tests did not run to the end).", ""]
    return lines
