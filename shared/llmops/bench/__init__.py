"""`llmops bench`: reproducible benchmarks with a Markdown report and PNG plots under reports/.

Tooling only: nothing here is imported by the Lambda handlers, and the package is left out of the
Lambda layer. Modules: one per benchmark (`guard_speed`, `handler_overhead`, `cold_start`,
`side_by_side`, `load`, `robustness`), the pieces they share (`stats`, `report`, `plots`,
`loadgen`, `processes`, `stacks`, `litellm_env`, `upstream`, `workload`), the readers of the
robustness suites' output (`pytest_results`, `robustness_fuzz`, `robustness_faults`) and `runner`,
which runs them in order.
Methodology: docs/benchmarks.md.
"""

__all__: list[str] = []
