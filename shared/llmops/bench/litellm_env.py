"""LiteLLM from PyPI in a cache virtualenv of its own: never a dependency of this project.

The venv lives under ~/.cache/llmops-bench/litellm-venv (override with LLMOPS_BENCH_LITELLM_VENV)
and is reused once installed. The model cost map is read from the package's bundled copy
(`LITELLM_LOCAL_MODEL_COST_MAP`) so import times measure the import, not a download from GitHub.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_LITELLM_VENV",
    "LITELLM_REQUIREMENT",
    "LiteLLMEnv",
    "LiteLLMUnavailableError",
    "ensure_litellm",
    "litellm_environment",
    "proxy_config",
]

DEFAULT_LITELLM_VENV = Path(
    os.environ.get("LLMOPS_BENCH_LITELLM_VENV", str(Path.home() / ".cache" / "llmops-bench" / "litellm-venv"))
)
LITELLM_REQUIREMENT = "litellm[proxy]"
_MARKER = ".llmops-bench-installed"


class LiteLLMUnavailableError(RuntimeError):
    """LiteLLM could not be installed (no registry access?): the comparison is skipped, not faked."""


@dataclass(frozen=True, slots=True)
class LiteLLMEnv:
    venv: Path
    version: str

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def proxy(self) -> Path:
        return self.venv / "bin" / "litellm"


def litellm_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_LOG": "ERROR",
            "LITELLM_TELEMETRY": "False",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _version(python: Path) -> str | None:
    probe = subprocess.run(  # noqa: S603 - our own venv's interpreter
        [str(python), "-c", "from importlib.metadata import version; print(version('litellm'))"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return probe.stdout.strip() or None if probe.returncode == 0 else None


def _run(argv: list[str], what: str, timeout_s: float) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout_s)  # noqa: S603
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()[-1500:]
        raise LiteLLMUnavailableError(f"{what} failed (exit {result.returncode}): {detail}")


def ensure_litellm(venv: Path = DEFAULT_LITELLM_VENV, *, install: bool = True) -> LiteLLMEnv:
    """The cached LiteLLM venv, created with `python3 -m venv` + pip on first use."""
    env = LiteLLMEnv(venv=venv, version="")
    if (venv / _MARKER).exists() and env.python.exists():
        version = _version(env.python)
        if version:
            return LiteLLMEnv(venv=venv, version=version)
    if not install:
        raise LiteLLMUnavailableError(f"no LiteLLM venv at {venv} and installing was not allowed")
    python3 = shutil.which("python3") or shutil.which("python")
    if python3 is None:
        raise LiteLLMUnavailableError("no python3 on PATH to create the LiteLLM venv with")
    venv.parent.mkdir(parents=True, exist_ok=True)
    if not env.python.exists():
        _run([python3, "-m", "venv", str(venv)], "python3 -m venv", 300)
    pip = [str(env.python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
    _run([*pip, LITELLM_REQUIREMENT], f"pip install '{LITELLM_REQUIREMENT}'", 1200)
    version = _version(env.python)
    if not version:
        raise LiteLLMUnavailableError("LiteLLM installed but `importlib.metadata.version('litellm')` failed")
    (venv / _MARKER).write_text(version + "\n")
    return LiteLLMEnv(venv=venv, version=version)


def proxy_config(model_name: str, upstream_base_url: str) -> str:
    """A proxy config with one model in front of the fake upstream: no guardrails, no callbacks, no DB.

    Written as JSON, which is YAML: LiteLLM reads it with its YAML loader.
    """
    config = {
        "model_list": [
            {
                "model_name": model_name,
                "litellm_params": {
                    "model": "openai/bench-upstream",
                    "api_base": upstream_base_url,
                    "api_key": "bench-not-a-secret",
                },
            }
        ],
        "litellm_settings": {"drop_params": True, "set_verbose": False, "telemetry": False},
        "general_settings": {},
    }
    return json.dumps(config, indent=2)
