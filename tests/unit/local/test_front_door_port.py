"""The front door's port: a new stack refuses one another process listens on, and its workers do
not outlive it.

The workers share the port with SO_REUSEPORT, so a worker left by a `llmops serve` killed outright
would keep taking a share of the new stack's requests (for a stack whose moto is gone: 503s); the
check must hold against such a listener as well as a plain one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmops.cli.main import app
from llmops.local.wsgi_server import PortInUseError, ensure_port_free

WAIT_S = 20.0


@pytest.fixture(params=[True, False], ids=["reuse-port listener", "plain listener"])
def held_port(request: pytest.FixtureRequest) -> Iterator[int]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if request.param:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    yield int(listener.getsockname()[1])
    listener.close()


def test_a_port_someone_listens_on_is_refused(held_port: int) -> None:
    with pytest.raises(PortInUseError, match=f"127.0.0.1:{held_port} is in use"):
        ensure_port_free("127.0.0.1", held_port)


def test_a_free_port_and_port_zero_pass() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = int(probe.getsockname()[1])
    probe.close()
    ensure_port_free("127.0.0.1", port)
    ensure_port_free("127.0.0.1", 0)


def test_serve_on_a_held_port_says_so_and_starts_nothing(held_port: int, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--port", str(held_port), "--state-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert f"127.0.0.1:{held_port} is in use by another process" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "local.json").exists()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's reaping is left


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_a_worker_stops_once_the_process_that_started_it_is_gone(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    # The parent starts a worker, as FrontDoorWorkers does, then dies without stopping it (os._exit,
    # like SIGKILL: no finally, no atexit). The worker writes elsewhere than our pipe, so the run ends
    # with the parent even when the worker outlives it.
    parent = textwrap.dedent(
        f"""
        import os, subprocess, sys, time
        worker = subprocess.Popen([sys.executable, "-m", "llmops.local.front_door_workers",
                                   "127.0.0.1", "0", "60", "900", {str(ready)!r}],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not os.path.exists({str(ready)!r}):
            time.sleep(0.05)
        print(worker.pid, flush=True)
        os._exit(0)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", parent], check=True, capture_output=True, text=True, timeout=WAIT_S * 3
    )
    worker_pid = int(done.stdout.strip())
    deadline = time.monotonic() + WAIT_S
    try:
        while _alive(worker_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker_pid), "the orphaned worker kept listening"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker_pid, signal.SIGKILL)
