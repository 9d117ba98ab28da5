"""Extra front-door processes, each a separate "Lambda container", sharing the front door's port.

A handler runs one event at a time (see front_door.py), so one process serves one request at a
time, as one Lambda container does. Lambda scales by adding containers; the local stack does the
same with worker processes that bind the same port (SO_REUSEPORT) and share moto and the
emulators. Run as `python -m llmops.local.front_door_workers HOST PORT AUTH_CACHE_TTL_S GATEWAY_TIMEOUT_S READY_FILE`,
with the environment the local stack set up; the worker creates READY_FILE once it listens.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType

from llmops.local.front_door import FrontDoor
from llmops.local.metric_store import capture_from_environment
from llmops.local.wsgi_server import LoopbackServer

__all__ = ["FrontDoorWorkers"]

_START_TIMEOUT_S = 60


class FrontDoorWorkers:
    def __init__(
        self, host: str, port: int, count: int, authorizer_cache_ttl_s: float, gateway_timeout_s: float
    ) -> None:
        self._args = [host, str(port), str(authorizer_cache_ttl_s), str(gateway_timeout_s)]
        self._count = count
        self._processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        # Readiness goes through files, not pipes: a worker's stdout carries its logs, and a pipe
        # nobody drains would block it once full.
        self._ready_dir = Path(tempfile.mkdtemp(prefix="llmops-workers-"))
        ready_files = [self._ready_dir / f"worker-{i}" for i in range(self._count)]
        for ready in ready_files:
            self._processes.append(
                subprocess.Popen(  # noqa: S603 - our own module, arguments we built
                    [sys.executable, "-m", "llmops.local.front_door_workers", *self._args, str(ready)]
                )
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not all(ready.exists() for ready in ready_files):
            if time.monotonic() > deadline or any(p.poll() is not None for p in self._processes):
                self.stop()
                raise RuntimeError("a front-door worker failed to start; run with --workers 1 to see why")
            time.sleep(0.05)

    def stop(self) -> None:
        for process in self._processes:
            if process.poll() is None:
                process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self._processes.clear()


def _serve(host: str, port: int, authorizer_cache_ttl_s: float, gateway_timeout_s: float, ready_file: Path) -> None:
    stopping = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    _stop_when_orphaned(stopping)
    capture_from_environment()  # this container's EMF lines go to the local metric store too
    server = LoopbackServer(
        FrontDoor(authorizer_cache_ttl_s=authorizer_cache_ttl_s, gateway_timeout_s=gateway_timeout_s),
        host=host,
        port=port,
        reuse_port=True,
    ).start()
    ready_file.touch()
    try:
        stopping.wait()
    finally:
        server.stop()


def _stop_when_orphaned(stopping: threading.Event, poll_s: float = 0.5) -> None:
    """Sets `stopping` once the process that started this worker is gone. A `llmops serve` killed
    outright (SIGKILL, a crashed terminal) cannot stop its workers, and a worker left listening on
    the shared port would keep taking requests for a stack whose moto is gone. The parent's death
    shows as a new parent id (init or a subreaper adopts the worker): portable, unlike PR_SET_PDEATHSIG."""
    parent = os.getppid()

    def watch() -> None:
        while not stopping.wait(poll_s):
            if os.getppid() != parent:
                stopping.set()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), Path(sys.argv[5]))
