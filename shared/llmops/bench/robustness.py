"""Robustness: the fuzz and fault-injection suites at benchmark size, with their rates in the report.

Runs `pytest tests/fuzz tests/faults` as a subprocess (two xdist workers, `--dist loadgroup`, as
`make test` does) with more fuzz examples per operation (`LLMOPS_FUZZ_EXAMPLES`) and a longer
mixed-fault burst (`LLMOPS_FAULT_BURST`) than the test suite's defaults, and reads back what the
suites write: the statuses the fuzzer saw per operation (`LLMOPS_FUZZ_REPORT`), the measured
fallback rates and error mix (`LLMOPS_FAULT_REPORT`) and pytest's JUnit XML, which says which
promise a failing test broke (a schemathesis check, `assert_accounted`, `assert_audited`).

The tests record rates only once all of their checks passed, so a failing test leaves its rate out
of the JSON; the section takes the outcome from the JUnit XML instead of trusting a missing number.

This module runs the suites and builds the section; the fuzz report is read in `robustness_fuzz`,
the fault report in `robustness_faults` and pytest's output in `pytest_results` (names the
benchmark's users import are re-exported here).
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmops.bench.context import BenchContext, BenchProfile
from llmops.bench.processes import ManagedProcess
from llmops.bench.pytest_results import TestOutcome, parse_junit, parse_pytest_summary
from llmops.bench.report import Comparison, Section, TargetCheck, markdown_table
from llmops.bench.robustness_faults import (
    FALLBACK_TEST,
    FallbackScenario,
    fallback_scenarios,
    fallback_target_percent,
    fault_report_lines,
    promise_failures,
)
from llmops.bench.robustness_fuzz import (
    five_xx_at_least,
    fuzz_failure_kinds,
    fuzz_report_lines,
    fuzz_route_rows,
    status_class,
)
from llmops.bench.stacks import clean_environment

__all__ = [
    "FALLBACK_TEST",
    "KEY",
    "TITLE",
    "FallbackScenario",
    "RobustnessRun",
    "RobustnessSize",
    "TestOutcome",
    "build_section",
    "fallback_scenarios",
    "fuzz_failure_kinds",
    "fuzz_route_rows",
    "parse_junit",
    "parse_pytest_summary",
    "promise_failures",
    "pytest_command",
    "run",
    "size_for",
    "status_class",
]

KEY = "robustness"
TITLE = "Robustness: API fuzzing and provider fault injection"
TEST_PATHS = ("tests/fuzz", "tests/faults")
FUZZ_EXAMPLES_ENV = "LLMOPS_FUZZ_EXAMPLES"  # tests/fuzz/fuzz_settings.py
FUZZ_REPORT_ENV = "LLMOPS_FUZZ_REPORT"
FAULT_BURST_ENV = "LLMOPS_FAULT_BURST"  # tests/faults/test_provider_faults.py
FAULT_REPORT_ENV = "LLMOPS_FAULT_REPORT"  # tests/faults/conftest.py
FUZZ_REPORT_FILE = "fuzz_statuses.json"
FAULT_REPORT_FILE = "fault_rates.json"
JUNIT_FILE = "junit.xml"
LOG_FILE = "pytest.log"


@dataclass(frozen=True, slots=True)
class RobustnessSize:
    fuzz_examples: int  # hypothesis examples per operation and generation method
    fault_burst: int  # requests in the mixed-fault burst
    timeout_s: float  # for the whole pytest run


def size_for(profile: BenchProfile) -> RobustnessSize:
    if profile.name == "quick":
        return RobustnessSize(fuzz_examples=30, fault_burst=30, timeout_s=5 * 60)
    return RobustnessSize(fuzz_examples=200, fault_burst=100, timeout_s=15 * 60)


@dataclass(slots=True)
class RobustnessRun:
    """Everything one run left behind, already read from disk."""

    size: RobustnessSize
    fuzz: Mapping[str, Any] | None
    faults: Mapping[str, Any] | None
    tests: list[TestOutcome]
    summary: dict[str, int]
    exit_code: int | None
    seconds: float
    timed_out: bool = False
    files: dict[str, str] = field(default_factory=dict)


def pytest_command(junit_path: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        *TEST_PATHS,
        "-q",
        "-p",
        "no:cacheprovider",
        "-n",
        "2",
        "--dist",
        "loadgroup",
        "-rfE",
        f"--junitxml={junit_path}",
    ]


def _tests_body(run: RobustnessRun) -> list[str]:
    per_file: dict[str, Counter[str]] = {}
    for test in run.tests:
        per_file.setdefault(test.file, Counter())[test.outcome] += 1
    summary = ", ".join(f"{n} {what}" for what, n in run.summary.items()) or "no summary line"
    lines = [
        f"**pytest:** {summary} in {run.seconds:.0f} s (exit code {run.exit_code})"
        + (f"; **stopped after the {run.size.timeout_s:.0f} s limit**" if run.timed_out else "")
        + ".",
        "",
    ]
    if per_file:
        lines += [
            markdown_table(
                ("test file (JUnit cases, subtests included)", "passed", "failed", "errors", "skipped"),
                [(name, c["passed"], c["failed"], c["error"], c["skipped"]) for name, c in sorted(per_file.items())],
            ),
            "",
        ]
    failed = [t for t in run.tests if t.outcome in {"failed", "error"}]
    if failed:
        lines += [
            "Failing tests (details in the JUnit XML and the pytest log):",
            "",
            *(f"- `{t.file}::{t.name}`" for t in failed),
            "",
        ]
    return lines


def build_section(run: RobustnessRun) -> Section:
    rows = fuzz_route_rows(run.fuzz) if run.fuzz is not None else []
    kinds = fuzz_failure_kinds(run.tests)
    scenarios = fallback_scenarios(run.faults, run.tests)
    promises = promise_failures(run.tests)
    fuzz_ran = run.fuzz is not None or any(t.file == "tests/fuzz/test_api_fuzz.py" for t in run.tests)
    five_xx = five_xx_at_least(rows, kinds) if fuzz_ran else None
    fallback_percent = fallback_target_percent(scenarios)
    body = [
        f"`pytest {' '.join(TEST_PATHS)} -n 2 --dist loadgroup` against live `llmops serve` stacks, with "
        f"`{FUZZ_EXAMPLES_ENV}={run.size.fuzz_examples}` and `{FAULT_BURST_ENV}={run.size.fault_burst}` "
        f"(the test suite's defaults are 10 and 20), bounded to {run.size.timeout_s / 60:.0f} minutes.",
        "",
        *fuzz_report_lines(run.fuzz, rows, kinds),
        *fault_report_lines(run.faults, run.tests, scenarios, promises),
        *_tests_body(run),
    ]
    if run.files:
        body.append("Raw files: " + ", ".join(f"`{path}`" for path in run.files.values()) + ".")
    return Section(
        key=KEY,
        title=TITLE,
        body="\n".join(body),
        targets=[
            TargetCheck("fuzz: 5xx responses", None if five_xx is None else float(five_xx), 0.0, "responses"),
            TargetCheck(
                "faults: fallback success while a healthy target exists",
                fallback_percent,
                100.0,
                "%",
                Comparison.AT_LEAST,
            ),
        ],
        results={
            "size": {
                "fuzz_examples": run.size.fuzz_examples,
                "fault_burst": run.size.fault_burst,
                "timeout_s": run.size.timeout_s,
            },
            "fuzz": {
                "report": run.fuzz,
                "routes": rows,
                "five_xx_at_least": five_xx,
                "failing_tests_by_check": kinds,
            },
            "faults": {
                "report": run.faults,
                "fallback_scenarios": [
                    {"name": s.name, "outcome": s.outcome, "success_rate": s.success_rate} for s in scenarios
                ],
                "promise_failures": promises,
            },
            "pytest": {
                "summary": run.summary,
                "exit_code": run.exit_code,
                "timed_out": run.timed_out,
                "seconds": round(run.seconds, 1),
                "failed": [f"{t.file}::{t.name}" for t in run.tests if t.outcome in {"failed", "error"}],
            },
            "files": run.files,
        },
        error=f"pytest did not finish within {run.size.timeout_s:.0f} s" if run.timed_out else None,
    )


# -- the run ---------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# pytest's exit codes for "all passed" and "some tests failed"; anything else (interrupted, internal
# or usage error, nothing collected) means there are no numbers to report.
_PYTEST_RAN = {0, 1}


def run(ctx: BenchContext) -> Section:
    work = ctx.work_dir(KEY)
    size = size_for(ctx.profile)
    paths = {name: work / name for name in (FUZZ_REPORT_FILE, FAULT_REPORT_FILE, JUNIT_FILE, LOG_FILE)}
    for path in paths.values():  # never read a previous run's files
        path.unlink(missing_ok=True)
    env = clean_environment(
        {
            FUZZ_EXAMPLES_ENV: str(size.fuzz_examples),
            FAULT_BURST_ENV: str(size.fault_burst),
            FUZZ_REPORT_ENV: str(paths[FUZZ_REPORT_FILE]),
            FAULT_REPORT_ENV: str(paths[FAULT_REPORT_FILE]),
        }
    )
    process = ManagedProcess(
        pytest_command(paths[JUNIT_FILE]), log_path=paths[LOG_FILE], env=env, cwd=ctx.repo_root, name="pytest"
    )
    started = time.monotonic()
    timed_out = False
    process.start()
    try:
        with ctx.console.status(
            f"pytest {' '.join(TEST_PATHS)}: {size.fuzz_examples} fuzz examples per operation, "
            f"a {size.fault_burst}-request fault burst (up to {size.timeout_s / 60:.0f} min)..."
        ):
            while process.alive():
                if time.monotonic() - started > size.timeout_s:
                    timed_out = True
                    break
                time.sleep(1)
    finally:
        exit_code = process.stop()
    seconds = time.monotonic() - started
    log = process.log_tail(chars=200_000)
    if not timed_out and exit_code not in _PYTEST_RAN:
        raise process.fail(f"exited with {exit_code}")
    ctx.console.log(f"pytest finished with exit code {exit_code} in {seconds:.0f} s")
    return build_section(
        RobustnessRun(
            size=size,
            fuzz=_read_json(paths[FUZZ_REPORT_FILE]),
            faults=_read_json(paths[FAULT_REPORT_FILE]),
            tests=parse_junit(paths[JUNIT_FILE]),
            summary=parse_pytest_summary(log),
            exit_code=exit_code,
            seconds=seconds,
            timed_out=timed_out,
            files={name: str(path) for name, path in paths.items() if path.exists()},
        )
    )
