"""Black-box API tests: a real `llmops serve` subprocess driven by the official openai SDK."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

ROOT = Path(__file__).resolve().parents[2]
LLMOPS = Path(sys.executable).parent / "llmops"


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    state_dir = tmp_path_factory.mktemp("llmops-state")
    log = (state_dir / "serve.log").open("w")
    process = subprocess.Popen(
        [str(LLMOPS), "serve", "--port", "0", "--state-dir", str(state_dir)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))},
    )
    state_file = state_dir / "local.json"
    deadline = time.monotonic() + 60
    while not state_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"llmops serve did not start:\n{(state_dir / 'serve.log').read_text()}")
        time.sleep(0.1)
    state: dict[str, Any] = json.loads(state_file.read_text())
    state["state_dir"] = str(state_dir)
    yield state
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=20) == 0, "llmops serve did not exit cleanly on SIGTERM"
    finally:
        if process.poll() is None:
            process.kill()
    assert not state_file.exists(), "local.json should be removed on shutdown"


@pytest.fixture
def client(local_stack: dict[str, Any]) -> openai.OpenAI:
    return openai.OpenAI(base_url=local_stack["base_url"], api_key=local_stack["api_key"], max_retries=0)


@pytest.fixture
def llmops_cli(local_stack: dict[str, Any]) -> Any:
    """Runs an `llmops` admin command against the running local stack and returns its stdout."""

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(LLMOPS), *args, "--state-dir", local_stack["state_dir"]],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": "200"},
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"llmops {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    return run


@pytest.fixture
def new_key(llmops_cli: Any, local_stack: dict[str, Any]) -> Any:
    """Creates a key with the given `llmops keys create` options; returns (raw key, client)."""

    def create(tenant: str, *options: str) -> tuple[str, openai.OpenAI]:
        out = llmops_cli("keys", "create", "--tenant", tenant, *options, "--json").stdout
        raw = json.loads(out)["api_key"]
        return raw, openai.OpenAI(base_url=local_stack["base_url"], api_key=raw, max_retries=0)

    return create
