"""Runs the real Lambda handler modules in-process, the way the Lambda runtime would.

Handlers live in functions/<name>/handler.py (not a package), so they are loaded by file path
under a unique module name, once, exactly like a warm Lambda container.
"""

from __future__ import annotations

import importlib.util
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from llmops.config.timeouts import GATEWAY_TIMEOUT_S

__all__ = ["FUNCTIONS_DIR", "LocalLambdaContext", "invoke", "load_handler_module"]

FUNCTIONS_DIR = Path(__file__).resolve().parents[3] / "functions"


@dataclass(slots=True)
class LocalLambdaContext:
    """The attributes Powertools reads from a Lambda context object, and a clock that runs out.

    One context per invocation, as in Lambda: the remaining time counts down from `timeout_s`
    (the deployed function's timeout, `llmops.config.timeouts`) from when the context was made.
    """

    function_name: str
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timeout_s: float = GATEWAY_TIMEOUT_S
    started_at: float = field(default_factory=time.monotonic)
    # True when the caller runs the answer's `after_response` work itself once it has the answer, as
    # the runtime loop does (llmops.lambda_runtime.after_response); else the handler does it first.
    runs_after_response: bool = False

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.started_at + self.timeout_s - time.monotonic()) * 1000))

    @property
    def timed_out(self) -> bool:
        """True once Lambda would have killed the invocation."""
        return time.monotonic() >= self.started_at + self.timeout_s


def load_handler_module(name: str, functions_dir: Path = FUNCTIONS_DIR) -> ModuleType:
    module_name = f"llmops_function_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    path = functions_dir / name / "handler.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load Lambda handler {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def invoke(module: ModuleType, event: dict[str, Any], context: LocalLambdaContext) -> Any:
    return module.handler(event, context)
