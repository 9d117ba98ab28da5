"""Black-box API tests: a real `llmops serve` subprocess driven by the official openai SDK."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.local_stack_process import LLMOPS, ROOT, start_llmops_serve, stop_llmops_serve


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    process, state = start_llmops_serve(tmp_path_factory.mktemp("llmops-state"))
    yield state
    assert stop_llmops_serve(process) == 0, "llmops serve did not exit cleanly on SIGTERM"
    assert not (Path(state["state_dir"]) / "local.json").exists(), "local.json should be removed on shutdown"


@pytest.fixture
def client(local_stack: dict[str, Any]) -> openai.OpenAI:
    return openai.OpenAI(base_url=local_stack["base_url"], api_key=local_stack["api_key"], max_retries=0)


@pytest.fixture
def llmops_cli(local_stack: dict[str, Any]) -> Any:
    """Runs an `llmops` admin command against the running local stack and returns its stdout."""

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # The gateway writes a request's audit record and usage after its response; its one
        # execution environment takes the next request only once that is done, as Lambda's does,
        # so a request through it first makes the command see every answer's books.
        httpx.get(local_stack["front_door_url"] + "/health", timeout=60).raise_for_status()
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
