"""`python -m llmops.bench.local_serve ...`: `llmops serve` with in-memory accounting.

Same options as `llmops serve`; with `LLMOPS_BENCH_ACCOUNTING=memory` the gateway's quota ledger
and audit log are in-memory fakes, so this variant of the stack measures everything but the
emulated database (reported as such). It runs one front-door process, since the fakes live in
this process only.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import Any

import typer

from llmops.bench.fakes import InMemoryAuditSink, InMemoryLedger
from llmops.cli.serve import serve

__all__ = ["ACCOUNTING_VARIABLE", "main"]

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


def main() -> None:
    if os.environ.get(ACCOUNTING_VARIABLE) == "memory":
        _use_in_memory_accounting()
        sys.argv += ["--workers", "1"]
    typer.run(serve)


if __name__ == "__main__":
    main()
