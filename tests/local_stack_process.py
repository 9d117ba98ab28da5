"""Starts and stops `llmops serve` as a subprocess, as a user would; shared by the black-box suites."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LLMOPS = Path(sys.executable).parent / "llmops"
START_TIMEOUT_S = 90


def start_llmops_serve(state_dir: Path, *options: str) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Runs `llmops serve --port 0 --state-dir STATE_DIR [options]` and waits for its local.json."""
    log = (state_dir / "serve.log").open("w")
    process = subprocess.Popen(
        [str(LLMOPS), "serve", "--port", "0", "--state-dir", str(state_dir), *options],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        # The stack must configure AWS and Powertools itself, as it does for a user.
        env={k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))},
    )
    state_file = state_dir / "local.json"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not state_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"llmops serve did not start:\n{(state_dir / 'serve.log').read_text()}")
        time.sleep(0.1)
    state: dict[str, Any] = json.loads(state_file.read_text())
    state["state_dir"] = str(state_dir)
    state["front_door_url"] = str(state["base_url"]).removesuffix("/v1")
    return process, state


def stop_llmops_serve(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, as an operator would; returns the exit code (0 for a clean shutdown)."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
