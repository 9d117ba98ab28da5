"""`python -m llmops.bench.local_serve ...`: `llmops serve` with in-memory accounting.

Takes the `llmops serve` options the benchmarks pass (`--port`, `--state-dir`, `--forward-url`);
with `LLMOPS_BENCH_ACCOUNTING=memory` the gateway's quota ledger and audit log are in-memory fakes,
so this variant of the stack measures everything but the emulated database (reported as such). It
runs one front-door process, since the fakes live in this process only.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from llmops.bench.fakes import InMemoryAuditSink, InMemoryLedger
from llmops.local.foreground import run_in_foreground
from llmops.local.stack import LocalStack, LocalStackOptions

__all__ = ["ACCOUNTING_VARIABLE", "main", "stack_options"]

ACCOUNTING_VARIABLE = "LLMOPS_BENCH_ACCOUNTING"


def _use_in_memory_accounting() -> None:
    """Wraps the composition root before the front door loads the handler module (which imports it)."""
    from llmops.application import wiring  # noqa: PLC0415 - patched before anything else binds it

    original = wiring.build_gateway

    def build_gateway(*args: Any, **kwargs: Any) -> wiring.GatewayRuntime:
        runtime = original(*args, **kwargs)
        chat = replace(runtime.chat, ledger=InMemoryLedger(), audit=InMemoryAuditSink())
        return replace(runtime, chat=chat)

    module: Any = wiring
    module.build_gateway = build_gateway


def stack_options(argv: Sequence[str] | None = None) -> LocalStackOptions:
    defaults = LocalStackOptions()
    parser = argparse.ArgumentParser(prog="python -m llmops.bench.local_serve")
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port)
    parser.add_argument("--state-dir", type=Path, default=defaults.state_dir)
    parser.add_argument("--forward-url", default=defaults.forward_url)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    args = parser.parse_args(argv)
    return LocalStackOptions(
        host=args.host, port=args.port, state_dir=args.state_dir, forward_url=args.forward_url, workers=args.workers
    )


def main(argv: Sequence[str] | None = None) -> None:
    options = stack_options(argv)
    if os.environ.get(ACCOUNTING_VARIABLE) == "memory":
        _use_in_memory_accounting()
        options.workers = 1
    run_in_foreground(LocalStack(options))


if __name__ == "__main__":
    main()
