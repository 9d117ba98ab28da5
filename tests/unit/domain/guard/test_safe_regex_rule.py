"""The linear-time rule of `llmops.domain.guard.safe_regex` (issue 11), enforced.

(a) Lambda code compiles no pattern of its own: no ``import re`` outside safe_regex (and the one
    allow-listed module that only reads files shipped in the repository).
(b) Every registered pattern compiles with its engine (RE2 unless it says what it needs).
(c) regexploit's static analysis finds no ReDoS in any pattern still on Python's re, and a crafted-
    input timing check backs it where regexploit is blind (it ignores bounded repetition: it found
    nothing in the phone shape that took 17 s, which is why RE2 comes first).
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import time
import warnings
from pathlib import Path

import pytest

from llmops.domain.guard import safe_regex

REPO = Path(__file__).resolve().parents[4]
LAMBDA_PACKAGES = ("domain", "adapters", "application", "observability", "config", "workflows")
# module (relative to shared/llmops) -> why it may use Python's re directly
ALLOWED = {
    "domain/guard/safe_regex.py": "the rule's own module",
    "workflows/__init__.py": "substitutes ${placeholders} in the state-machine definitions shipped in the repo",
}
_REGEX_MODULES = frozenset({"re", "regex", "sre_compile", "sre_parse", "sre_constants", "re2"})


def _lambda_sources() -> list[Path]:
    root = REPO / "shared" / "llmops"
    files = [p for package in LAMBDA_PACKAGES for p in sorted((root / package).rglob("*.py"))]
    return files + sorted((REPO / "functions").rglob("*.py"))


def _regex_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in _REGEX_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in _REGEX_MODULES:
            found.append(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            found.append("__import__(...)")
    return found


def test_lambda_code_compiles_patterns_only_through_safe_regex() -> None:
    root = REPO / "shared" / "llmops"
    offenders = {}
    for path in _lambda_sources():
        relative = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()
        imports = _regex_imports(path)
        if imports and relative not in ALLOWED:
            offenders[relative] = imports
    assert not offenders, (
        f"compile patterns that see untrusted text with llmops.domain.guard.safe_regex (RE2), not re: {offenders}"
    )


def test_the_scan_sees_the_modules_that_face_untrusted_text() -> None:
    scanned = {p.relative_to(REPO).as_posix() for p in _lambda_sources()}
    for expected in (
        "shared/llmops/domain/guard/pii_detectors.py",
        "shared/llmops/domain/guard/obfuscated_pii.py",
        "shared/llmops/domain/guard/injection/decoding.py",
        "shared/llmops/domain/guard/injection/scorer.py",
        "shared/llmops/domain/token_estimate.py",
        "shared/llmops/application/openai_schema.py",
        "shared/llmops/adapters/sagemaker/transformation.py",
    ):
        assert expected in scanned


def _import_lambda_modules() -> None:
    import llmops

    for package in LAMBDA_PACKAGES:
        module = importlib.import_module(f"llmops.{package}")
        for info in pkgutil.walk_packages(module.__path__, prefix=f"llmops.{package}."):
            importlib.import_module(info.name)
    assert llmops


def _registered() -> tuple[safe_regex.RegisteredPattern, ...]:
    _import_lambda_modules()
    return safe_regex.registered_patterns()


def test_every_registered_pattern_compiles_with_its_engine() -> None:
    entries = _registered()
    assert len(entries) > 50
    for entry in entries:
        if entry.engine == "re2":
            safe_regex.compile(entry.pattern, entry.flags)  # type: ignore[call-overload]
        else:
            assert entry.needs.strip(), entry.pattern
            safe_regex.compile_backtracking(entry.pattern, entry.flags, needs=entry.needs)  # type: ignore[call-overload]


def _backtracking() -> list[safe_regex.RegisteredPattern]:
    unique = {(e.pattern, e.flags): e for e in _registered() if e.engine == "re"}
    return list(unique.values())


def _regexploit_findings(pattern: str | bytes, flags: int) -> list[str]:
    from regexploit.ast.sre import SreOpParser
    from regexploit.redos import find

    source = pattern.decode("latin-1") if isinstance(pattern, bytes) else pattern
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = SreOpParser().parse_sre(source, flags)
    return [f"starriness {r.starriness}: {r.example()}" for r in find(parsed)]


def test_regexploit_is_not_blind() -> None:
    assert _regexploit_findings(r"(a+)+$", 0)
    assert _regexploit_findings(r"(?:\w+\s?)*x", 0)


def test_no_python_re_pattern_has_a_redos_that_regexploit_can_see() -> None:
    patterns = _backtracking()
    assert patterns, "no Python-re pattern is registered: drop this test and regexploit"
    findings = {e.pattern: found for e in patterns if (found := _regexploit_findings(e.pattern, e.flags))}
    assert not findings, findings


_PROBES = ("a", "1", " ", "\n", "_", "'", ".", "-", ":", "%", "x0", "0.", "a ", "a'", "1,", "a.", "ab1 ", "\u00e9a")


def _cost(pattern: safe_regex.Pattern[str] | safe_regex.Pattern[bytes], text: str | bytes) -> float:
    best = float("inf")
    for _ in range(5):  # the minimum of five: a loaded CI machine preempts some runs, rarely all
        start = time.perf_counter()
        for _m in pattern.finditer(text):  # type: ignore[arg-type]
            pass
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("entry", _backtracking(), ids=lambda e: repr(e.pattern)[:40])
def test_python_re_patterns_are_linear_on_crafted_repetitions(entry: safe_regex.RegisteredPattern) -> None:
    """A search over n repetitions of a probe and over 16n: linear gives ~16x, quadratic ~256x (the
    bound leaves room for a loaded machine)."""
    pattern = safe_regex.compile_backtracking(entry.pattern, entry.flags, needs=entry.needs)  # type: ignore[call-overload]
    n = 4000
    for probe in _PROBES:
        small, large = probe * (n // len(probe)), probe * (16 * n // len(probe))
        if isinstance(entry.pattern, bytes):
            small, large = small.encode("latin-1", "replace"), large.encode("latin-1", "replace")  # type: ignore[assignment]
        base = max(_cost(pattern, small), 5e-4)  # below 0.5 ms, timer noise dominates
        ratio = _cost(pattern, large) / base
        assert ratio < 100, f"{entry.pattern!r} on {probe!r} * n: time(16n)/time(n) = {ratio:.1f}"
