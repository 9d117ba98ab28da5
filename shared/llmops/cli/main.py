"""`llmops`: the local stack and the admin commands, against a local or a deployed stack."""

from __future__ import annotations

import typer

from llmops.cli import (
    alarms,
    audit,
    bench,
    canary,
    dashboard,
    demo,
    emulator,
    evaluate,
    guard,
    guard_policies,
    keys,
    prompts,
    retrain,
    serve,
    usage,
)

app = typer.Typer(
    name="llmops",
    help="LLMOps gateway: run the local stack and administer a local or deployed gateway.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("serve")(serve.serve)
app.command("bench")(bench.bench)
app.add_typer(keys.app, name="keys", help="Create, list, revoke and rotate API keys; tenant-wide limits.")
app.add_typer(usage.app, name="usage", help="Spend and tokens by alias and day.")
app.add_typer(audit.app, name="audit", help="Verify, show and replay the hash-chained audit trail.")
app.add_typer(prompts.app, name="prompts", help="Versioned prompt templates: push, label, diff, roll back, test.")
app.add_typer(guard.app, name="guard", help="The learned guard layer: train it offline (llmops guard train).")
app.add_typer(guard_policies.app, name="guard-policies", help="Versioned guard policies with labels, per tenant.")
app.add_typer(canary.app, name="canary", help="Canary promotion with automatic rollback (Step Functions).")
app.add_typer(retrain.app, name="retrain", help="The retraining trigger workflow.")
app.add_typer(evaluate.app, name="eval", help="Evaluate the guardrails on public data, next to Presidio.")
app.add_typer(emulator.app, name="emulator", help="Set latency and faults on the local model emulators.")
app.command("alarms")(alarms.alarms)
app.command("dashboard")(dashboard.dashboard)
app.add_typer(demo.app, name="demo", help="Demonstrations on the local stack (a canary rolled back).")

if __name__ == "__main__":
    app()
