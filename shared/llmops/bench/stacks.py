"""`llmops serve` subprocesses for the benchmarks, with guards on or off, and keys with limits.

The stacks are plain `llmops serve`; only the in-memory accounting variant runs through
`llmops.bench.local_serve`, which swaps the quota ledger and audit log for in-memory fakes.

"Guards off" replaces the `default` guard policy (the one every key uses) with one that enables no
detector and no system-prompt leak check, through `LLMOPS_GUARD_POLICIES`, exactly as an operator
would configure it; the guard engine then only normalizes text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from llmops.bench.local_serve import ACCOUNTING_VARIABLE
from llmops.bench.processes import ManagedProcess, wait_for_json_file
from llmops.config.env import EnvVar

__all__ = [
    "GUARDS_OFF_POLICIES",
    "LocalStackProcess",
    "clean_environment",
    "create_key",
    "llmops_command",
    "start_local_stack",
]

GUARDS_OFF_POLICIES: Final[dict[str, dict[str, Any]]] = {
    "default": {"detectors": [], "system_prompt_leak_check": False}
}
# Prefixes of variables the benchmark process may carry that must not leak into a fresh stack.
_STACK_OWNED_PREFIXES = ("AWS_", "POWERTOOLS_", "LLMOPS_", "MOTO_")


def llmops_command(*args: str) -> list[str]:
    """The `llmops` CLI of this interpreter, independent of PATH."""
    return [sys.executable, "-m", "llmops.cli.main", *args]


def clean_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_STACK_OWNED_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass(slots=True)
class LocalStackProcess:
    process: ManagedProcess
    state: dict[str, Any]
    state_dir: Path

    @property
    def base_url(self) -> str:
        return str(self.state["base_url"])

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.stop()


def start_local_stack(
    state_dir: Path,
    *,
    guards_on: bool = True,
    forward_url: str | None = None,
    name: str = "llmops-serve",
    timeout_s: float = 90.0,
    in_memory_accounting: bool = False,
) -> LocalStackProcess:
    """Starts `llmops serve --port 0` and waits for its local.json. The caller must `stop()` it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    state_file = state_dir / "local.json"
    state_file.unlink(missing_ok=True)
    options = ["--port", "0", "--state-dir", str(state_dir)]
    if in_memory_accounting:
        argv = [sys.executable, "-m", "llmops.bench.local_serve", *options]
    else:
        argv = llmops_command("serve", *options)
    if forward_url:
        argv += ["--forward-url", forward_url]
    extra = {} if guards_on else {EnvVar.GUARD_POLICIES.value: json.dumps(GUARDS_OFF_POLICIES)}
    if in_memory_accounting:
        extra[ACCOUNTING_VARIABLE] = "memory"
    process = ManagedProcess(argv, log_path=state_dir / "serve.log", env=clean_environment(extra), name=name)
    process.start()
    try:
        state = wait_for_json_file(process, state_file, timeout_s)
    except BaseException:
        process.stop()
        raise
    return LocalStackProcess(process=process, state=state, state_dir=state_dir)


def create_key(
    stack: LocalStackProcess,
    tenant: str,
    *,
    rpm: int | None = None,
    tpm: int | None = None,
    models: str = "*",
) -> str:
    """A new API key on the running stack, through `llmops keys create --json`."""
    argv = llmops_command("keys", "create", "--tenant", tenant, "--models", models, "--json")
    argv += ["--state-dir", str(stack.state_dir)]
    if rpm is not None:
        argv += ["--rpm", str(rpm)]
    if tpm is not None:
        argv += ["--tpm", str(tpm)]
    result = subprocess.run(  # noqa: S603 - our own CLI with arguments we built
        argv, capture_output=True, text=True, check=False, timeout=120, env=clean_environment()
    )
    if result.returncode != 0:
        raise RuntimeError(f"llmops keys create failed: {(result.stderr or result.stdout).strip()[-1000:]}")
    return str(json.loads(result.stdout)["api_key"])
