"""The exec wrapper starts the loop the way Lambda starts it: as `AWS_LAMBDA_EXEC_WRAPPER`, given the
runtime's own start command (`<python> /var/runtime/bootstrap.py`), with `_HANDLER` in the task root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmops.lambda_runtime import PRELUDE_DELIMITER
from llmops.local.runtime_api import BodyChunk, LocalRuntimeApi, StreamEnded

WRAPPER = Path(__file__).resolve().parents[3] / "shared" / "llmops" / "lambda_runtime" / "llmops-runtime"
SHARED = WRAPPER.parents[2]

HANDLER = """
from llmops.lambda_runtime import StreamingResponse

def handler(event, context):
    def body():
        yield b"hello "
        yield event["name"].encode()
    return StreamingResponse(200, {"Content-Type": "text/plain"}, body())
"""


@pytest.fixture
def runtime_api() -> Iterator[LocalRuntimeApi]:
    api = LocalRuntimeApi("wrapped", timeout_s=30).start()
    yield api
    api.stop()


def test_the_wrapper_runs_our_loop_with_the_runtimes_interpreter(tmp_path: Path, runtime_api: LocalRuntimeApi) -> None:
    assert os.access(WRAPPER, os.X_OK), "Lambda refuses a wrapper it cannot execute"
    (tmp_path / "handler.py").write_text(HANDLER)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(SHARED),
        "AWS_LAMBDA_RUNTIME_API": runtime_api.endpoint,
        "_HANDLER": "handler.handler",
        "LAMBDA_TASK_ROOT": str(tmp_path),
    }
    process = subprocess.Popen([str(WRAPPER), sys.executable, "/var/runtime/bootstrap.py"], env=env, cwd=tmp_path)
    try:
        invocation = runtime_api.submit({"name": "lambda"})
        received = b""
        while not isinstance(part := invocation.next_part(30), StreamEnded):
            assert isinstance(part, BodyChunk)
            received += part.data
        prelude, _, body = received.partition(PRELUDE_DELIMITER)
        assert json.loads(prelude)["statusCode"] == 200
        assert body == b"hello lambda"
    finally:
        runtime_api.stop()  # invocation/next answers 503: the loop ends
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
