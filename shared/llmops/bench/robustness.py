"""Robustness: the fuzz and fault-injection suites at benchmark size, with their rates in the report.

Runs `pytest tests/fuzz tests/faults` as a subprocess (two xdist workers, `--dist loadgroup`, as
`make test` does) with more fuzz examples per operation (`LLMOPS_FUZZ_EXAMPLES`) and a longer
mixed-fault burst (`LLMOPS_FAULT_BURST`) than the test suite's defaults, and reads back what the
suites write: the statuses the fuzzer saw per operation (`LLMOPS_FUZZ_REPORT`), the measured
fallback rates and error mix (`LLMOPS_FAULT_REPORT`) and pytest's JUnit XML, which says which
promise a failing test broke (a schemathesis check, `assert_accounted`, `assert_audited`).

The tests record rates only once all of their checks passed, so a failing test leaves its rate out
of the JSON; the section takes the outcome from the JUnit XML instead of trusting a missing number.
"""

from __future__ import annotations

import json
import re
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmops.bench.context import BenchContext, BenchProfile
from llmops.bench.processes import ManagedProcess
from llmops.bench.report import Comparison, Section, TargetCheck, format_number, markdown_table
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
# The test whose parametrized scenarios each have a failing primary and a healthy fallback.
FALLBACK_TEST = "test_failing_primary_falls_back_to_the_healthy_target"
# Titles of the schemathesis checks (schemathesis.failures) as they appear in a failure's text.
SERVER_ERROR = "Server error"
CONFORMANCE_FAILURES = (
    "Response violates schema",
    "Undocumented HTTP status code",
    "Undocumented Content-Type",
    "Missing Content-Type header",
    "Malformed media type",
    "Missing required headers",
    "JSON deserialization error",
)
OTHER_CHECK_FAILURES = (
    "Accepted negative data",
    "Rejected positive data",
    "Authentication declared but not enforced",
)
# What the burst's outcomes are answered with (tests/faults/test_provider_faults.py).
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
# pytest-xdist's `--dist loadgroup` appends `@<group>` to a test's name, before a subtest's `[...]`.
_XDIST_GROUP = re.compile(r"@[\w.-]+(?=\[|$)")
_SUMMARY_LINE = re.compile(r"\b\d+ (?:subtests )?(?:passed|failed|errors?|skipped)\b.* in [\d.]+s")
_SUMMARY_COUNT = re.compile(r"(\d+) ((?:subtests )?(?:passed|failed|errors?|skipped|xfailed|xpassed|deselected))")


@dataclass(frozen=True, slots=True)
class RobustnessSize:
    fuzz_examples: int  # hypothesis examples per operation and generation method
    fault_burst: int  # requests in the mixed-fault burst
    timeout_s: float  # for the whole pytest run


def size_for(profile: BenchProfile) -> RobustnessSize:
    if profile.name == "quick":
        return RobustnessSize(fuzz_examples=30, fault_burst=30, timeout_s=5 * 60)
    return RobustnessSize(fuzz_examples=200, fault_burst=100, timeout_s=15 * 60)


@dataclass(frozen=True, slots=True)
class TestOutcome:
    """One JUnit test case: `outcome` is passed, failed, error or skipped; `text` the failure's report."""

    __test__ = False  # not a pytest test class, whatever its name says

    file: str
    name: str
    outcome: str
    text: str = ""


@dataclass(frozen=True, slots=True)
class FallbackScenario:
    name: str
    outcome: str  # passed, failed, error, skipped or "not run"
    success_rate: float | None  # recorded by the test only when all its checks passed


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


# -- parsing (pure) --------------------------------------------------------------------------------


def status_class(outcome: str) -> str:
    """`"400 invalid_json"` -> `"4xx"`; anything that does not start with a status is `"other"`."""
    status = outcome.split(" ", 1)[0]
    return f"{status[0]}xx" if len(status) == 3 and status.isdigit() else "other"


def _error_code(outcome: str) -> str | None:
    parts = outcome.split(" ", 1)
    return parts[1] if len(parts) == 2 and parts[1] != "None" else None


def fuzz_route_rows(fuzz: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per operation: cases, cases per status class and error codes, from the fuzz status report."""
    rows: list[dict[str, Any]] = []
    for operation, outcomes in sorted((fuzz.get("operations") or {}).items()):
        classes: Counter[str] = Counter()
        codes: Counter[str] = Counter()
        for outcome, count in outcomes.items():
            classes[status_class(outcome)] += int(count)
            code = _error_code(outcome)
            if code:
                codes[code] += int(count)
        rows.append(
            {
                "operation": operation,
                "cases": sum(classes.values()),
                "classes": dict(sorted(classes.items())),
                "error_codes": dict(codes.most_common()),
            }
        )
    return rows


def parse_junit(path: Path) -> list[TestOutcome]:
    """Test cases of a JUnit XML file (pytest's `--junitxml`); empty if the file is missing or torn."""
    try:
        root = ET.parse(path).getroot()  # noqa: S314 - written by the pytest run this benchmark started
    except (OSError, ET.ParseError):
        return []
    outcomes: list[TestOutcome] = []
    for case in root.iter("testcase"):
        classname = case.get("classname", "")
        outcome, text = "passed", ""
        for kind in ("failure", "error", "skipped"):
            element = case.find(kind)
            if element is not None:
                outcome = "failed" if kind == "failure" else kind
                text = "\n".join(part for part in (element.get("message"), element.text) if part)
                break
        name = _XDIST_GROUP.sub("", case.get("name", ""))
        outcomes.append(TestOutcome(_test_file(classname), name, outcome, text))
    return outcomes


def _test_file(classname: str) -> str:
    """`tests.faults.test_provider_faults` (or `...test_x.TestClass`) -> `tests/faults/test_provider_faults.py`."""
    parts = classname.split(".")
    while parts and not parts[-1].startswith("test_"):
        parts.pop()
    return "/".join(parts) + ".py" if parts else classname


def parse_pytest_summary(log: str) -> dict[str, int]:
    """Counts from pytest's last summary line (`2 failed, 48 passed, 3 warnings in 61.2s`)."""
    lines = [line for line in log.splitlines() if _SUMMARY_LINE.search(line)]
    if not lines:
        return {}
    counts: dict[str, int] = {}
    for number, what in _SUMMARY_COUNT.findall(lines[-1]):
        key = "errors" if what == "error" else what
        counts[key] = counts.get(key, 0) + int(number)
    return counts


def fuzz_failure_kinds(tests: Iterable[TestOutcome]) -> dict[str, int]:
    """Failing fuzz tests per schemathesis check title found in their failure text."""
    kinds: Counter[str] = Counter()
    for test in tests:
        if test.outcome not in {"failed", "error"} or not test.file.startswith("tests/fuzz/"):
            continue
        found = [t for t in (SERVER_ERROR, *CONFORMANCE_FAILURES, *OTHER_CHECK_FAILURES) if t in test.text]
        kinds.update(found or ["other assertion"])
    return dict(sorted(kinds.items()))


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


def _fallback_target_percent(scenarios: Sequence[FallbackScenario]) -> float | None:
    """The lowest per-scenario success rate in %, a failed scenario counting as 0 (it recorded none)."""
    ran = [s for s in scenarios if s.outcome in {"passed", "failed", "error"}]
    if not ran:
        return None
    return 100.0 * min(s.success_rate if s.success_rate is not None and s.outcome == "passed" else 0.0 for s in ran)


def _five_xx(rows: Sequence[Mapping[str, Any]], failure_kinds: Mapping[str, int]) -> int:
    # A 5xx fails its test before the fuzz report counts it, and hypothesis stops that test at its
    # first failing case: each failing test with a server error stands for at least one 5xx.
    return sum(int(r["classes"].get("5xx", 0)) for r in rows) + int(failure_kinds.get(SERVER_ERROR, 0))


# -- rendering (pure) ------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return format_number(None if value is None else 100.0 * value, 1, "%")


def _fuzz_body(run: RobustnessRun, rows: Sequence[Mapping[str, Any]], kinds: Mapping[str, int]) -> list[str]:
    if run.fuzz is None:
        return ["**Fuzzing:** no status report was written (the fuzz module did not finish).", ""]
    classes = sorted({c for r in rows for c in r["classes"]} | {"2xx", "4xx", "5xx"})
    table = markdown_table(
        ("operation", "cases", *classes, "error codes (most frequent first)"),
        [
            (
                r["operation"],
                r["cases"],
                *(r["classes"].get(c, 0) for c in classes),
                ", ".join(f"{code} x{n}" for code, n in list(r["error_codes"].items())[:5]) or "-",
            )
            for r in rows
        ],
    )
    conformance = sum(kinds.get(title, 0) for title in CONFORMANCE_FAILURES)
    five_xx = _five_xx(rows, kinds)
    lines = [
        f"**Fuzzing** (schemathesis, {run.fuzz.get('examples_per_operation', '?')} examples per operation "
        f"and generation method; {run.fuzz.get('requests', sum(r['cases'] for r in rows))} cases that passed "
        "every check are counted below):",
        "",
        table,
        "",
        markdown_table(
            ("promise", "verdict"),
            [
                ("no 5xx response", "held" if five_xx == 0 else f"broken (at least {five_xx} 5xx)"),
                (
                    "responses conform to the document (status, content type, schema, headers)",
                    "held" if conformance == 0 else f"broken in {conformance} test(s)",
                ),
            ],
        ),
    ]
    if kinds:
        lines += ["", "Failing fuzz tests by schemathesis check:", ""]
        lines.append(markdown_table(("check", "failing tests"), sorted(kinds.items())))
    return [*lines, ""]


def _faults_body(
    run: RobustnessRun, scenarios: Sequence[FallbackScenario], promises: Mapping[str, list[str]]
) -> list[str]:
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
    burst: Mapping[str, Any] = (run.faults or {}).get("mixed_burst") or {}
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
    elif run.faults is not None or scenarios:
        lines += ["The mixed-fault burst recorded no rates (its test failed or did not run).", ""]
    fault_tests = [t for t in run.tests if t.file.startswith("tests/faults/")]
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
    if run.faults is None and not scenarios:
        lines += ["No fault rates were written (the provider fault tests did not run to the end).", ""]
    return lines


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
    five_xx = _five_xx(rows, kinds) if fuzz_ran else None
    fallback_percent = _fallback_target_percent(scenarios)
    body = [
        f"`pytest {' '.join(TEST_PATHS)} -n 2 --dist loadgroup` against live `llmops serve` stacks, with "
        f"`{FUZZ_EXAMPLES_ENV}={run.size.fuzz_examples}` and `{FAULT_BURST_ENV}={run.size.fault_burst}` "
        f"(the test suite's defaults are 10 and 20), bounded to {run.size.timeout_s / 60:.0f} minutes.",
        "",
        *_fuzz_body(run, rows, kinds),
        *_faults_body(run, scenarios, promises),
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
