"""What every benchmark gets: where to write, how big to run (full or quick), a console and progress bars."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from llmops.bench.litellm_env import DEFAULT_LITELLM_VENV, LiteLLMEnv, LiteLLMUnavailableError, ensure_litellm
from llmops.local.lambda_runtime import FUNCTIONS_DIR

__all__ = ["REPO_ROOT", "BenchContext", "BenchProfile"]

REPO_ROOT = FUNCTIONS_DIR.parent
FIGURES_DIR = "figures"


@dataclass(frozen=True, slots=True)
class BenchProfile:
    """Sizes of one run. `full` is the default (about 10 minutes on 2 cores), `quick` a smoke run."""

    name: str
    guard_iterations: int
    handler_requests: int  # per variant, in-memory accounting
    handler_accounting_requests: int  # per variant, against moto
    cold_start_runs: int
    side_by_side_requests: int  # per gateway and concurrency level
    side_by_side_seconds: float  # cap per gateway and concurrency level
    concurrency_levels: tuple[int, ...]
    load_seconds: float
    load_users: int
    load_rps_per_user: float
    streaming_requests: int = 60  # per variant (direct, local stack, in-process), one at a time

    @classmethod
    def full(cls) -> BenchProfile:
        return cls(
            name="full",
            guard_iterations=3000,
            handler_requests=3000,
            handler_accounting_requests=400,
            cold_start_runs=5,
            side_by_side_requests=500,
            side_by_side_seconds=12.0,
            concurrency_levels=(1, 8, 32),
            load_seconds=60.0,
            load_users=6,
            load_rps_per_user=3.0,
            streaming_requests=60,
        )

    @classmethod
    def quick(cls) -> BenchProfile:
        return cls(
            name="quick",
            guard_iterations=300,
            handler_requests=300,
            handler_accounting_requests=60,
            cold_start_runs=2,
            side_by_side_requests=40,
            side_by_side_seconds=2.0,
            concurrency_levels=(1, 8, 32),
            load_seconds=8.0,
            load_users=5,
            load_rps_per_user=4.0,
            streaming_requests=15,
        )


@dataclass(slots=True)
class BenchContext:
    out_dir: Path
    profile: BenchProfile
    console: Console = field(default_factory=lambda: Console(stderr=True))
    litellm_venv: Path = DEFAULT_LITELLM_VENV
    use_litellm: bool = True
    upstream_delay_ms: float = 20.0
    repo_root: Path = REPO_ROOT
    _litellm: LiteLLMEnv | LiteLLMUnavailableError | None = None

    def figure(self, key: str, name: str) -> tuple[Path, str]:
        """(absolute path to write, path relative to the report) for a PNG of benchmark `key`."""
        relative = f"{FIGURES_DIR}/{key}-{name}.png"
        path = self.out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path, relative

    def work_dir(self, key: str) -> Path:
        path = self.out_dir / "work" / key
        path.mkdir(parents=True, exist_ok=True)
        return path

    def progress(self) -> Progress:
        return Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )

    def litellm(self) -> LiteLLMEnv:
        """The LiteLLM cache venv, installed on first use; raises `LiteLLMUnavailableError` if it can't be."""
        if self._litellm is None:
            if not self.use_litellm:
                self._litellm = LiteLLMUnavailableError("LiteLLM comparison disabled (--no-litellm)")
            else:
                with self.console.status(f"Preparing LiteLLM in {self.litellm_venv} (first run installs it)..."):
                    try:
                        self._litellm = ensure_litellm(self.litellm_venv)
                    except LiteLLMUnavailableError as exc:
                        self._litellm = exc
        if isinstance(self._litellm, LiteLLMUnavailableError):
            raise self._litellm
        return self._litellm

    @contextmanager
    def phase(self, description: str) -> Iterator[None]:
        started = time.perf_counter()
        self.console.log(f"[bold]{description}[/]...")
        yield
        self.console.log(f"{description}: done in {time.perf_counter() - started:.1f} s")
