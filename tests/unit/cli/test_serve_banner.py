"""What `llmops serve` prints once the stack is up: each label on the same line as its value."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from llmops.cli.serve import print_ready

STATE = {
    "base_url": "http://127.0.0.1:8080/v1",
    "api_key": "llmops-dev00000-" + "k" * 40,
    "tenant": "dev",
    "aws_endpoint_url": "http://127.0.0.1:5123",
}


def test_the_tenant_and_the_key_stay_on_their_label_lines_on_a_narrow_terminal() -> None:
    out = Console(width=40, record=True, color_system=None)
    print_ready(out, STATE, Path(".llmops"))
    lines = out.export_text().splitlines()
    assert "  tenant: dev" in lines
    assert f"  API key: {STATE['api_key']}" in lines
    assert f"  AWS (moto): {STATE['aws_endpoint_url']}" in lines
    assert "  state: .llmops/local.json" in lines
