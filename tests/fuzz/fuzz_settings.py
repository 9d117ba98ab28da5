"""How big the fuzz run is and where its report goes, read from the environment.

`LLMOPS_FUZZ_EXAMPLES`: hypothesis examples per operation and generation method, small by default
so `make test` stays fast; the benchmark raises it for a bigger run.
`LLMOPS_FUZZ_REPORT`: a path for the JSON of statuses seen per operation (default: pytest's tmp dir).
"""

from __future__ import annotations

import os

__all__ = ["DEFAULT_FUZZ_EXAMPLES", "FUZZ_EXAMPLES_ENV", "FUZZ_REPORT_ENV", "fuzz_examples"]

FUZZ_EXAMPLES_ENV = "LLMOPS_FUZZ_EXAMPLES"
FUZZ_REPORT_ENV = "LLMOPS_FUZZ_REPORT"
DEFAULT_FUZZ_EXAMPLES = 10


def fuzz_examples() -> int:
    return max(1, int(os.environ.get(FUZZ_EXAMPLES_ENV) or DEFAULT_FUZZ_EXAMPLES))
