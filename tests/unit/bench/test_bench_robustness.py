"""The robustness benchmark's reading of the fuzz and fault reports, JUnit XML and pytest's summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmops.bench.context import BenchProfile
from llmops.bench.report import render_report
from llmops.bench.robustness import (
    FALLBACK_TEST,
    RobustnessRun,
    TestOutcome,
    build_section,
    fallback_scenarios,
    fuzz_failure_kinds,
    fuzz_route_rows,
    parse_junit,
    parse_pytest_summary,
    promise_failures,
    pytest_command,
    size_for,
    status_class,
)

FUZZ_REPORT: dict[str, Any] = {
    "examples_per_operation": 30,
    "operations": {
        "GET /v1/models": {"200": 12},
        "POST /v1/chat/completions": {
            "200": 20,
            "400 invalid_request_error": 7,
            "400 content_blocked": 2,
            "401 None": 1,
        },
    },
    "requests": 42,
}

FAULT_REPORT: dict[str, Any] = {
    "fallback_success_rate": {"throttled": 1.0, "timeout": 1.0},
    "mixed_burst": {
        "requests": 10,
        "concurrency": 4,
        "fault_spec_per_target": {"error_rate": 0.3, "latency_ms": 20.0, "throttle_rate": 0.4},
        "success_rate": 0.8,
        "fallback_success_rate": 0.5,
        "outcomes": {"ok_primary": 5, "ok_fallback": 3, "upstream_throttled": 2},
        "emulator_calls": {
            "primary": {"calls": 14, "ok": 5, "throttled": 6, "error": 3, "timeout": 0},
            "fallback": {"calls": 9, "ok": 3, "throttled": 4, "error": 2, "timeout": 0},
        },
    },
}

JUNIT = f"""<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="2" skipped="0" tests="5">
<testcase classname="tests.fuzz.test_api_fuzz" name="test_valid_input_keeps_the_contract@fuzz[GET /v1/models]"/>
<testcase classname="tests.fuzz.test_api_fuzz" name="test_invalid_input_is_refused_in_openai_shape" time="2.0">
<failure message="schemathesis.exceptions.CheckFailed">1. Server error

2. Response violates schema</failure></testcase>
<testcase classname="tests.faults.test_provider_faults" name="{FALLBACK_TEST}[throttled]@faults" time="1.0"/>
<testcase classname="tests.faults.test_provider_faults" name="{FALLBACK_TEST}[timeout]@faults" time="2.0"/>
<testcase classname="tests.faults.test_provider_faults" name="{FALLBACK_TEST}[model-error]@faults" time="1.0">
<failure message="AssertionError">tenant = Tenant(...)
&gt;       assert_accounted(tenant)

tests/faults/fault_scenarios.py:250: in assert_accounted
E   AssertionError: ('rpm', ...)</failure></testcase>
</testsuite></testsuites>
"""

LOG_TAIL = """........F....
FAILED tests/faults/test_provider_faults.py::test_x - AssertionError
2 failed, 3 passed, 4 subtests passed, 1 warning in 61.20s (0:01:01)
"""


def _run(tmp_path: Path, **overrides: Any) -> RobustnessRun:
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT)
    fields: dict[str, Any] = {
        "size": size_for(BenchProfile.quick()),
        "fuzz": FUZZ_REPORT,
        "faults": FAULT_REPORT,
        "tests": parse_junit(junit),
        "summary": parse_pytest_summary(LOG_TAIL),
        "exit_code": 1,
        "seconds": 61.2,
    }
    return RobustnessRun(**{**fields, **overrides})


def test_sizes_follow_the_profile() -> None:
    quick, full = size_for(BenchProfile.quick()), size_for(BenchProfile.full())
    assert (quick.fuzz_examples, quick.fault_burst) == (30, 30)
    assert (full.fuzz_examples, full.fault_burst) == (200, 100)
    assert full.timeout_s > quick.timeout_s


def test_pytest_command_runs_both_suites_in_load_groups(tmp_path: Path) -> None:
    argv = pytest_command(tmp_path / "junit.xml")
    assert argv[1:5] == ["-m", "pytest", "tests/fuzz", "tests/faults"]
    assert "loadgroup" in argv
    assert f"--junitxml={tmp_path / 'junit.xml'}" in argv


def test_status_class() -> None:
    assert status_class("200") == "2xx"
    assert status_class("400 invalid_json") == "4xx"
    assert status_class("503 upstream_throttled") == "5xx"
    assert status_class("weird") == "other"


def test_fuzz_rows_count_cases_per_status_class_and_error_code() -> None:
    rows = {r["operation"]: r for r in fuzz_route_rows(FUZZ_REPORT)}
    chat = rows["POST /v1/chat/completions"]
    assert chat["cases"] == 30
    assert chat["classes"] == {"2xx": 20, "4xx": 10}
    assert chat["error_codes"] == {"invalid_request_error": 7, "content_blocked": 2}  # "None" is no code
    assert rows["GET /v1/models"]["classes"] == {"2xx": 12}


def test_junit_outcomes_and_failure_text(tmp_path: Path) -> None:
    tests = _run(tmp_path).tests
    assert [(t.file, t.outcome) for t in tests[:2]] == [
        ("tests/fuzz/test_api_fuzz.py", "passed"),
        ("tests/fuzz/test_api_fuzz.py", "failed"),
    ]
    assert "Server error" in tests[1].text
    # xdist's "@group" suffix is dropped, subtest and parameter ids are kept.
    assert tests[0].name == "test_valid_input_keeps_the_contract[GET /v1/models]"
    assert tests[2].name == f"{FALLBACK_TEST}[throttled]"
    assert parse_junit(tmp_path / "missing.xml") == []


def test_pytest_summary_counts() -> None:
    assert parse_pytest_summary(LOG_TAIL) == {"failed": 2, "passed": 3, "subtests passed": 4}
    assert parse_pytest_summary("1 error in 0.5s") == {"errors": 1}
    assert parse_pytest_summary("no summary here") == {}


def test_failures_are_attributed_to_the_promise_they_broke(tmp_path: Path) -> None:
    tests = _run(tmp_path).tests
    assert fuzz_failure_kinds(tests) == {"Response violates schema": 1, "Server error": 1}
    broken = promise_failures(tests)
    assert broken["accounting (GET /v1/usage: nothing double-charged or left reserved)"] == [
        f"{FALLBACK_TEST}[model-error]"
    ]
    assert broken["audit (one record per request, hash chains intact)"] == []


def test_a_failed_fallback_scenario_has_no_rate(tmp_path: Path) -> None:
    scenarios = {s.name: s for s in fallback_scenarios(FAULT_REPORT, _run(tmp_path).tests)}
    assert scenarios["throttled"].success_rate == 1.0
    assert scenarios["model-error"].outcome == "failed"
    assert scenarios["model-error"].success_rate is None
    assert fallback_scenarios(None, []) == []


def test_section_targets_and_body(tmp_path: Path) -> None:
    section = build_section(_run(tmp_path))
    targets = {t.name: t for t in section.targets}
    # One 5xx behind a failing test, none among the counted cases.
    assert targets["fuzz: 5xx responses"].measured == 1.0
    assert targets["fuzz: 5xx responses"].verdict == "missed"
    # model-error failed before recording its rate: it counts as 0 %.
    fallback = targets["faults: fallback success while a healthy target exists"]
    assert fallback.measured == 0.0
    assert fallback.verdict == "missed"
    assert section.error is None
    text = render_report("Benchmarks", [section], {})
    assert "| POST /v1/chat/completions | 30 | 20 | 10 | 0 | invalid_request_error x7, content_blocked x2 |" in text
    assert "| upstream_throttled | 503 | 2 | 20.0 % |" in text
    assert "| primary | 14 | 3 | 5 | 6 | 0 |" in text
    assert "2 failed, 3 passed, 4 subtests passed" in text
    assert f"- `tests/faults/test_provider_faults.py::{FALLBACK_TEST}[model-error]`" in text
    assert "broken in test_failing_primary" in text


def test_an_all_green_run_meets_both_targets(tmp_path: Path) -> None:
    passing = [
        TestOutcome("tests/fuzz/test_api_fuzz.py", "test_valid_input_keeps_the_contract", "passed"),
        TestOutcome("tests/faults/test_provider_faults.py", f"{FALLBACK_TEST}[throttled]", "passed"),
        TestOutcome("tests/faults/test_provider_faults.py", f"{FALLBACK_TEST}[timeout]", "passed"),
    ]
    section = build_section(_run(tmp_path, tests=passing, exit_code=0, summary={"passed": 3}))
    assert [t.verdict for t in section.targets] == ["met", "met"]
    assert section.results["fuzz"]["five_xx_at_least"] == 0


def test_missing_reports_are_not_measured_and_a_timeout_is_an_error(tmp_path: Path) -> None:
    section = build_section(_run(tmp_path, fuzz=None, faults=None, tests=[], summary={}, timed_out=True))
    assert [t.verdict for t in section.targets] == ["not measured", "not measured"]
    assert section.error is not None
    assert "no status report was written" in section.body
