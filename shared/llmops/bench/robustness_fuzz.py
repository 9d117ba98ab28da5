"""The robustness benchmark's fuzzing results: the statuses schemathesis saw per operation (the fuzz
suite's `LLMOPS_FUZZ_REPORT`) and the schemathesis checks failing fuzz tests broke."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llmops.bench.pytest_results import TestOutcome
from llmops.bench.report import markdown_table

__all__ = [
    "CONFORMANCE_FAILURES",
    "OTHER_CHECK_FAILURES",
    "SERVER_ERROR",
    "five_xx_at_least",
    "fuzz_failure_kinds",
    "fuzz_report_lines",
    "fuzz_route_rows",
    "status_class",
]

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


def fuzz_failure_kinds(tests: Iterable[TestOutcome]) -> dict[str, int]:
    """Failing fuzz tests per schemathesis check title found in their failure text."""
    kinds: Counter[str] = Counter()
    for test in tests:
        if test.outcome not in {"failed", "error"} or not test.file.startswith("tests/fuzz/"):
            continue
        found = [t for t in (SERVER_ERROR, *CONFORMANCE_FAILURES, *OTHER_CHECK_FAILURES) if t in test.text]
        kinds.update(found or ["other assertion"])
    return dict(sorted(kinds.items()))


def five_xx_at_least(rows: Sequence[Mapping[str, Any]], failure_kinds: Mapping[str, int]) -> int:
    # A 5xx fails its test before the fuzz report counts it, and hypothesis stops that test at its
    # first failing case: each failing test with a server error stands for at least one 5xx.
    return sum(int(r["classes"].get("5xx", 0)) for r in rows) + int(failure_kinds.get(SERVER_ERROR, 0))


def fuzz_report_lines(
    fuzz: Mapping[str, Any] | None, rows: Sequence[Mapping[str, Any]], kinds: Mapping[str, int]
) -> list[str]:
    """The report's fuzzing part: statuses per operation and the two promises' verdicts."""
    if fuzz is None:
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
    five_xx = five_xx_at_least(rows, kinds)
    lines = [
        f"**Fuzzing** (schemathesis, {fuzz.get('examples_per_operation', '?')} examples per operation "
        f"and generation method; {fuzz.get('requests', sum(r['cases'] for r in rows))} cases that passed "
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
