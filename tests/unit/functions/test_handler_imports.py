"""Handlers stay thin: they import the application layer, never adapters, boto3 or tooling.

import-linter's contracts forbid what handlers must not import (pyproject.toml); this test is the
allowlist: any third-party or llmops import outside these prefixes fails it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

FUNCTIONS = Path(__file__).resolve().parents[3] / "functions"
HANDLERS = sorted(FUNCTIONS.glob("*/handler.py"))
ALLOWED_PREFIXES = (
    "aws_lambda_powertools",
    "llmops.application",
    "llmops.config",
    "llmops.domain",
    "llmops.observability",
)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_every_function_has_a_handler() -> None:
    assert {p.parent.name for p in HANDLERS} >= {"gateway", "authorizer"}


@pytest.mark.parametrize("handler", HANDLERS, ids=lambda p: p.parent.name)
def test_handler_imports_only_the_application_layer(handler: Path) -> None:
    for name in _imports(handler):
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top == "__future__":
            continue
        assert name.startswith(ALLOWED_PREFIXES), f"{handler.parent.name} imports {name}"
