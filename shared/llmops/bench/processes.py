"""Subprocesses the benchmarks start: each in its own process group, always stopped, even on failure."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["ManagedProcess", "ProcessFailedError", "free_port", "rss_bytes", "wait_for_http", "wait_for_json_file"]


class ProcessFailedError(RuntimeError):
    """A benchmark subprocess exited or never became ready; the message ends with its log tail."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_bytes(pid: int) -> int | None:
    """Resident set size of `pid` from /proc (Linux), or None if it is gone or /proc is missing."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class ManagedProcess:
    """A subprocess in a new session; `stop()` signals the whole group, then kills what is left."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        name: str = "",
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.name = name or Path(argv[0]).name
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self._process.pid

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            # argv is built by the benchmark from fixed flags and paths it chose.
            self._process = subprocess.Popen(  # noqa: S603
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # its own process group: stop() reaches its children too
            )
        return self

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def fail(self, message: str) -> ProcessFailedError:
        return ProcessFailedError(f"{self.name}: {message}\n--- log tail ({self.log_path}) ---\n{self.log_tail()}")

    def stop(self, grace_s: float = 10.0) -> int | None:
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                process.wait(timeout=5)
        # Children that outlived their parent (e.g. uvicorn workers) go too.
        self._signal_group(signal.SIGKILL)
        return process.returncode

    def _signal_group(self, sig: signal.Signals) -> None:
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, sig)

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _wait(process: ManagedProcess, ready: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = ready()
        if result is not None:
            return result
        if not process.alive():
            raise process.fail(f"exited before {what}")
        if time.monotonic() > deadline:
            raise process.fail(f"no {what} after {timeout_s:.0f} s")
        time.sleep(0.1)


def wait_for_json_file(process: ManagedProcess, path: Path, timeout_s: float = 60.0) -> dict[str, Any]:
    """Waits until `process` has written `path` as complete JSON, and returns it."""

    def ready() -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    result: dict[str, Any] = _wait(process, ready, timeout_s, f"state file {path}")
    return result


def wait_for_http(process: ManagedProcess, host: str, port: int, timeout_s: float = 60.0) -> None:
    """Waits until `process` accepts TCP connections on host:port."""

    def ready() -> bool | None:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return None

    _wait(process, ready, timeout_s, f"listener on {host}:{port}")
