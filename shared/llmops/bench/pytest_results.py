"""What a pytest run leaves behind, read back: JUnit XML test cases and the last summary line.

Generic over the suites; the robustness benchmark reads the fuzz and fault suites' runs with it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TestOutcome", "parse_junit", "parse_pytest_summary"]

_XDIST_GROUP = re.compile(r"@[\w.-]+(?=\[|$)")
_SUMMARY_LINE = re.compile(r"\b\d+ (?:subtests )?(?:passed|failed|errors?|skipped)\b.* in [\d.]+s")
_SUMMARY_COUNT = re.compile(r"(\d+) ((?:subtests )?(?:passed|failed|errors?|skipped|xfailed|xpassed|deselected))")


@dataclass(frozen=True, slots=True)
class TestOutcome:
    """One JUnit test case: `outcome` is passed, failed, error or skipped; `text` the failure's report."""

    __test__ = False  # not a pytest test class, whatever its name says

    file: str
    name: str
    outcome: str
    text: str = ""


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
