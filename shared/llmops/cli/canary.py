"""`llmops canary start|status|approve|abort`: promote a target behind an alias, gated on SLO alarms.

The work happens in the canary state machine (`llmops/workflows/canary.asl.json`); these commands
start it, read its history, answer its approval requests and abort it. Aborting stops the
execution and then restores the baseline weights (and a release bundle's prompt label) itself,
because a stopped execution runs no rollback states.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table

from llmops.adapters.dynamodb.guard_policy_store import DynamoGuardPolicyStore
from llmops.adapters.dynamodb.prompt_store import DynamoPromptStore
from llmops.adapters.stepfunctions_canary import AwsCanaryControlPlane, execution_history, route_document
from llmops.cli.options import DEFAULT_STATE_DIR, AsJson, Region, StackName, StateDir
from llmops.cli.stack import StackConnection, connect
from llmops.cli.terminal import console, errors, fail
from llmops.local.alarms import LOCAL_STAGE
from llmops.local.workflows import (
    OUTPUT_ALARM_STAGE,
    OUTPUT_APPROVAL_ARN,
    OUTPUT_ARTIFACT_BUCKET,
    OUTPUT_CANARY_ARN,
    OUTPUT_RETRAINING_ARN,
    local_artifact_bucket,
    local_state_machine_name,
)
from llmops.observability.alarm_catalogue import canary_gate_names
from llmops.workflows import APPROVAL, CANARY, RETRAINING
from llmops.workflows.canary_control import abort_canary, approve_canary, guard_policy_bundle, prompt_bundle
from llmops.workflows.canary_input import (
    CanaryInput,
    GuardPolicyBundle,
    PromptBundle,
    canary_input_for_targets,
    execution_name,
)
from llmops.workflows.canary_rollback import (
    PromptRestore,
)
from llmops.workflows.history import canary_progress

__all__ = ["app", "prepare_canary", "start_canary", "workflow_outputs"]

app = typer.Typer(help="Promote a candidate behind an alias in gated steps; roll back on breach.", no_args_is_help=True)

Execution = Annotated[str, typer.Argument(help="Execution ARN (or name, for the local stack).")]


def workflow_outputs(conn: StackConnection, stack: str | None) -> dict[str, str]:
    """State machine ARNs and the artifact bucket: stack outputs, or looked up by name locally."""
    if stack:
        cfn = conn.client("cloudformation")
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    names = {
        local_state_machine_name(CANARY): OUTPUT_CANARY_ARN,
        local_state_machine_name(RETRAINING): OUTPUT_RETRAINING_ARN,
        local_state_machine_name(APPROVAL): OUTPUT_APPROVAL_ARN,
    }
    outputs: dict[str, str] = {}
    for page in conn.client("stepfunctions").get_paginator("list_state_machines").paginate():
        for machine in page.get("stateMachines", []):
            if machine["name"] in names:
                outputs[names[machine["name"]]] = machine["stateMachineArn"]
    outputs[OUTPUT_ARTIFACT_BUCKET] = local_artifact_bucket()
    outputs[OUTPUT_ALARM_STAGE] = str(conn.local_state.get("alarms", {}).get("stage", LOCAL_STAGE))
    return outputs


def _state_machine_arn(conn: StackConnection, stack: str | None, output: str) -> str:
    arn = workflow_outputs(conn, stack).get(output)
    if not arn:
        where = f"stack {stack}" if stack else "the local stack"
        fail(f"{where} has no {output}; is the workflows capability deployed (or `llmops serve` running)?")
    return str(arn)


def _execution_arn(conn: StackConnection, stack: str | None, execution: str) -> str:
    if execution.startswith("arn:"):
        return execution
    machine = _state_machine_arn(conn, stack, OUTPUT_CANARY_ARN)
    return machine.replace(":stateMachine:", ":execution:", 1) + f":{execution}"


def _control_plane(conn: StackConnection) -> AwsCanaryControlPlane:
    return AwsCanaryControlPlane(conn.client("stepfunctions"), conn.client("dynamodb"), conn.client("sagemaker"))


def _guard_policy_bundle(
    conn: StackConnection, name: str | None, label: str | None, version: int | None
) -> GuardPolicyBundle | None:
    if name is None and label is None and version is None:
        return None
    if name is None or label is None or version is None:
        return fail(  # type: ignore[no-any-return]
            "a guard policy bundle needs all of --guard-policy, --guard-policy-label and --guard-policy-version"
        )
    store = DynamoGuardPolicyStore(conn.client("dynamodb"), conn.settings.prompts_table)
    try:
        return guard_policy_bundle(store, name, label, version)
    except (ValidationError, ValueError) as exc:
        return fail(str(exc))  # type: ignore[no-any-return]


def _prompt_bundle(
    conn: StackConnection, prompt_id: str | None, label: str | None, version: int | None, tenant: str | None
) -> PromptBundle | None:
    if prompt_id is None and label is None and version is None:
        if tenant is not None:
            return fail("--prompt-tenant names the owner of a --prompt bundle; give the bundle too")  # type: ignore[no-any-return]
        return None
    if prompt_id is None or label is None or version is None:
        return fail("a release bundle needs all of --prompt, --prompt-label and --prompt-version")  # type: ignore[no-any-return]
    store = DynamoPromptStore(conn.client("dynamodb"), conn.settings.prompts_table)
    try:
        return prompt_bundle(store, prompt_id, label, version, tenant)
    except (ValidationError, ValueError) as exc:
        return fail(str(exc))  # type: ignore[no-any-return]


def _problem(exc: ValidationError | ValueError) -> str:
    """A validation error as one sentence per problem (pydantic's own text lists URLs and input)."""
    if isinstance(exc, ValidationError):
        return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
    return str(exc)


def _check_targets(document: dict[str, Any], table: str, alias: str, baseline: str, candidate: str) -> None:
    """Refuses a canary whose targets are not both on the alias's route: a typo would otherwise
    send a share of the alias to a target nobody meant."""
    route = document["routes"].get(alias)
    if route is None:
        fail(f"no route named {alias!r} in {table}")
    # A fallback counts: promoting it to serve the alias is a canary too.
    on_route = [str(t["target"]) for t in route.get("targets", [])] + [str(f) for f in route.get("fallbacks") or []]
    for role, target in (("baseline", baseline), ("candidate", candidate)):
        if target not in on_route:
            fail(
                f"{role} {target!r} is not a target of alias {alias!r} (its targets and fallbacks: "
                f"{', '.join(on_route)}); add it to the route (a candidate with weight 0) before starting a canary"
            )


def _default_gates(conn: StackConnection, stack: str | None, candidate: str) -> list[str]:
    """The candidate's own SLO alarms (the per-target canary gates the alarm catalogue defines)."""
    stage = workflow_outputs(conn, stack).get(OUTPUT_ALARM_STAGE)
    if not stage:
        fail(
            f"stack {stack} has no {OUTPUT_ALARM_STAGE} output, so the candidate's default gates cannot be named: "
            "redeploy it, or name the gates with --gate (or pass --no-default-gates for a timed rollout)"
        )
    return canary_gate_names(str(stage), candidate)


def _check_gates_exist(conn: StackConnection, gates: tuple[str, ...], defaults: list[str]) -> None:
    """DescribeAlarms omits unknown names: a misspelt gate would never fire, so refuse it up front."""
    cloudwatch = conn.client("cloudwatch")
    found: set[str] = set()
    for start in range(0, len(gates), 100):
        page = cloudwatch.describe_alarms(AlarmNames=list(gates[start : start + 100]))
        found |= {a["AlarmName"] for a in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]}
    missing = [g for g in gates if g not in found]
    if not missing:
        return
    hint = (
        " (the default gates are the candidate's canary alarms, which the alarms capability creates for every "
        "route target; pass --no-default-gates to go without them)"
        if any(g in defaults for g in missing)
        else ""
    )
    fail(f"gate alarm(s) not found in CloudWatch, nothing was moved: {', '.join(missing)}{hint}")


def _steps(raw: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in raw.split(",") if p.strip())
    except ValueError:
        return fail("--steps takes comma-separated integer percentages, e.g. 5,25,50,100")  # type: ignore[no-any-return]


def prepare_canary(
    conn: StackConnection,
    stack: str | None,
    alias: str,
    baseline: str,
    candidate: str,
    *,
    steps: tuple[int, ...],
    gates: tuple[str, ...] = (),
    default_gates: bool = True,
    **options: Any,
) -> CanaryInput:
    """A canary's input after every check that must pass before traffic moves (exits naming the
    problem otherwise): both targets on the alias's route, the steps, every gate alarm existing.
    The gates are the candidate's own SLO alarms (unless `default_gates` is off) plus `gates`."""
    document = route_document(conn.client("dynamodb"), conn.settings.routes_table)
    _check_targets(document, conn.settings.routes_table, alias, baseline, candidate)
    defaults = _default_gates(conn, stack, candidate) if default_gates else []
    try:
        canary = canary_input_for_targets(
            document["targets"],
            alias,
            baseline,
            candidate,
            steps=steps,
            gates=tuple(dict.fromkeys([*defaults, *gates])),
            **options,
        )
    except (ValidationError, ValueError) as exc:
        fail(f"canary refused, nothing was moved: {_problem(exc)}")
    if canary.gates:
        _check_gates_exist(conn, canary.gates, defaults)
    else:
        errors.print("[yellow]warning:[/] --no-default-gates and no --gate: a timed rollout that never rolls back.")
    return canary


def start_canary(conn: StackConnection, stack: str | None, canary: CanaryInput, name: str | None = None) -> str:
    """Starts the canary state machine; returns the execution ARN."""
    execution = conn.client("stepfunctions").start_execution(
        stateMachineArn=_state_machine_arn(conn, stack, OUTPUT_CANARY_ARN),
        name=name or execution_name(CANARY, canary.alias),
        input=json.dumps(canary.to_execution_input()),
    )
    return str(execution["executionArn"])


@app.command("start")
def start(
    alias: Annotated[str, typer.Option("--alias", help="The route alias to move.")],
    baseline: Annotated[str, typer.Option("--baseline", help="Target id serving the alias now.")],
    candidate: Annotated[str, typer.Option("--candidate", help="Target id to promote.")],
    steps: Annotated[str, typer.Option("--steps", help="Candidate percentages; the last must be 100.")] = "5,25,50,100",
    bake_seconds: Annotated[int, typer.Option("--bake-seconds", help="Bake time per step.")] = 600,
    gate: Annotated[
        list[str] | None,
        typer.Option("--gate", help="A CloudWatch alarm gating each step, besides the default gates (repeat)."),
    ] = None,
    no_default_gates: Annotated[
        bool,
        typer.Option(
            "--no-default-gates",
            help="Do not gate on the candidate's own SLO alarms (error rate, p99 latency and TTFT, guard block "
            "rate, negative feedback); without --gate the canary is then a timed rollout that never rolls back.",
        ),
    ] = False,
    gate_poll_seconds: Annotated[int, typer.Option("--gate-poll-seconds", help="How often gates are read.")] = 60,
    approval: Annotated[bool, typer.Option("--approval", help="Wait for `canary approve` between steps.")] = False,
    keep_baseline_seconds: Annotated[
        int, typer.Option("--keep-baseline-seconds", help="Keep watching the gates after promotion.")
    ] = 0,
    name: Annotated[str | None, typer.Option("--name", help="Execution name (default: derived).")] = None,
    prompt: Annotated[
        str | None, typer.Option("--prompt", help="Release bundle: a prompt id whose label moves with the model.")
    ] = None,
    prompt_label: Annotated[
        str | None, typer.Option("--prompt-label", help="The label to move (its current version is the baseline).")
    ] = None,
    prompt_version: Annotated[
        int | None, typer.Option("--prompt-version", help="The prompt version the label moves to at 100%.")
    ] = None,
    prompt_tenant: Annotated[
        str | None,
        typer.Option("--prompt-tenant", help="The tenant owning the bundle's prompt (default: a shared prompt)."),
    ] = None,
    guard_policy: Annotated[
        str | None,
        typer.Option("--guard-policy", help="Release bundle: a guard policy whose label moves with the model."),
    ] = None,
    guard_policy_label: Annotated[
        str | None,
        typer.Option("--guard-policy-label", help="The guard policy label to move (e.g. production)."),
    ] = None,
    guard_policy_version: Annotated[
        int | None,
        typer.Option("--guard-policy-version", help="The guard policy version the label moves to at 100%."),
    ] = None,
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """Start a canary moving ALIAS from BASELINE to CANDIDATE (and optionally a prompt label and a
    guard policy label with it), gated on the candidate's own SLO alarms plus any --gate.

    Everything is checked before any traffic moves: both targets on the alias's route, the steps,
    every gate alarm existing, the release bundles."""
    conn = connect(state_dir, stack, region)
    bundle = _prompt_bundle(conn, prompt, prompt_label, prompt_version, prompt_tenant)
    guard_bundle = _guard_policy_bundle(conn, guard_policy, guard_policy_label, guard_policy_version)
    canary = prepare_canary(
        conn,
        stack,
        alias,
        baseline,
        candidate,
        steps=_steps(steps),
        gates=tuple(gate or ()),
        default_gates=not no_default_gates,
        bake_seconds=bake_seconds,
        gate_poll_seconds=gate_poll_seconds,
        approval=approval,
        baseline_keep_seconds=keep_baseline_seconds,
        prompt=bundle,
        guard_policy=guard_bundle,
    )
    execution = {"executionArn": start_canary(conn, stack, canary, name)}
    if as_json:
        console.print_json(
            json.dumps({"execution_arn": execution["executionArn"], "input": canary.to_execution_input()})
        )
        return
    console.print(
        f"Started canary [cyan]{execution['executionArn']}[/]\n"
        f"{canary.provider} canary on {alias}: {baseline} -> {candidate}, steps {list(canary.steps)}\n"
        f"gates: {', '.join(canary.gates) or 'none'}"
    )
    if canary.prompt is not None:
        p = canary.prompt
        console.print(
            f"prompt {p.scoped_id} label {p.label}: version {p.baseline_version} -> {p.candidate_version} at 100%"
        )
    if canary.guard_policy is not None:
        g = canary.guard_policy
        console.print(
            f"guard policy {g.name} label {g.label}: version {g.baseline_version} -> {g.candidate_version} at 100%"
        )


def _prompt_status(conn: StackConnection, canary: CanaryInput) -> dict[str, Any] | None:
    bundle = canary.prompt
    if bundle is None:
        return None
    store = DynamoPromptStore(conn.client("dynamodb"), conn.settings.prompts_table)
    state = store.get_label(bundle.scoped_id, bundle.label)
    return {
        "id": bundle.id,
        "tenant": bundle.tenant,
        "label": bundle.label,
        "baseline_version": bundle.baseline_version,
        "candidate_version": bundle.candidate_version,
        "current_version": state.version if state else None,
    }


def _guard_policy_status(conn: StackConnection, canary: CanaryInput) -> dict[str, Any] | None:
    bundle = canary.guard_policy
    if bundle is None:
        return None
    store = DynamoGuardPolicyStore(conn.client("dynamodb"), conn.settings.prompts_table)
    state = store.get_label(bundle.name, bundle.label)
    return {
        "name": bundle.name,
        "label": bundle.label,
        "baseline_version": bundle.baseline_version,
        "candidate_version": bundle.candidate_version,
        "current_version": state.version if state else None,
    }


def _list(sfn: Any, machine: str, as_json: bool) -> None:
    executions = sfn.list_executions(stateMachineArn=machine, maxResults=20).get("executions", [])
    rows = [
        {"name": e["name"], "status": e["status"], "started": str(e["startDate"]), "arn": e["executionArn"]}
        for e in executions
    ]
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title="Canary executions")
    for column in ("name", "status", "started"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["status"], row["started"])
    console.print(table)


@app.command("status")
def status(
    execution: Annotated[str | None, typer.Argument(help="Execution ARN or name; omit to list recent ones.")] = None,
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """Show a canary's progress and the alias's live weights, or list recent canaries."""
    conn = connect(state_dir, stack, region)
    sfn = conn.client("stepfunctions")
    if execution is None:
        _list(sfn, _state_machine_arn(conn, stack, OUTPUT_CANARY_ARN), as_json)
        return
    arn = _execution_arn(conn, stack, execution)
    described = sfn.describe_execution(executionArn=arn)
    canary = CanaryInput.from_execution_input(json.loads(described["input"]))
    progress = canary_progress(execution_history(sfn, arn))
    route = route_document(conn.client("dynamodb"), conn.settings.routes_table)["routes"].get(canary.alias, {})
    weights = {t["target"]: t["weight"] for t in route.get("targets", [])}
    report = {
        "execution_arn": arn,
        "status": described["status"],
        "alias": canary.alias,
        "provider": canary.provider,
        "baseline": canary.baseline.target,
        "candidate": canary.candidate.target,
        "steps": list(canary.steps),
        "current_step_percent": progress.percent,
        "current_state": progress.state,
        "awaiting_approval": progress.state == "RequestApproval" and described["status"] == "RUNNING",
        "route_weights": weights,
        "prompt": _prompt_status(conn, canary),
        "guard_policy": _guard_policy_status(conn, canary),
        "error": described.get("error"),
        "cause": described.get("cause"),
    }
    if as_json:
        console.print_json(json.dumps(report))
        return
    console.print(
        f"[bold]{report['status']}[/] {canary.alias}: {canary.baseline.target} -> {canary.candidate.target} "
        f"({canary.provider}), step {progress.percent}% of {list(canary.steps)}, state {progress.state}"
    )
    console.print(f"route weights now: {weights}")
    if report["prompt"]:
        p = report["prompt"]
        console.print(
            f"prompt {p['id']} label {p['label']}: {p['baseline_version']} -> {p['candidate_version']}, "
            f"points at {p['current_version']} now"
        )
    if report["guard_policy"]:
        g = report["guard_policy"]
        console.print(
            f"guard policy {g['name']} label {g['label']}: {g['baseline_version']} -> {g['candidate_version']}, "
            f"points at {g['current_version']} now"
        )
    if report["error"]:
        console.print(f"[red]{report['error']}[/]: {report['cause']}")


@app.command("approve")
def approve(
    execution: Execution,
    reject: Annotated[bool, typer.Option("--reject", help="Reject: the canary rolls back.")] = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """Approve (or reject) the next step of a canary started with --approval."""
    conn = connect(state_dir, stack, region)
    arn = _execution_arn(conn, stack, execution)
    if not approve_canary(_control_plane(conn), arn, reject=reject):
        fail("the execution is not waiting for an approval", code=1)
    console.print("Rejected: the canary rolls back." if reject else "Approved: the canary moves to its next step.")


@app.command("abort")
def abort(
    execution: Execution,
    as_json: AsJson = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    stack: StackName = None,
    region: Region = None,
) -> None:
    """Stop a canary and put all of the alias's traffic back on the baseline."""
    conn = connect(state_dir, stack, region)
    arn = _execution_arn(conn, stack, execution)
    result = abort_canary(
        _control_plane(conn),
        arn,
        conn.settings.routes_table,
        prompts_table=conn.settings.prompts_table,
    )
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "execution_arn": result.execution_arn,
                    "status_before": result.status_before,
                    "stopped": result.stopped,
                    "alias": result.canary.alias,
                    "baseline": result.canary.baseline.target,
                    "prompt": result.prompt.outcome.value,
                    "guard_policy": result.guard_policy.outcome.value,
                }
            )
        )
        return
    what = "Stopped the execution and restored" if result.stopped else f"Execution was {result.status_before}; restored"
    console.print(f"{what} alias {result.canary.alias} to baseline {result.canary.baseline.target} (100%).")
    bundle = result.canary.prompt
    if bundle is not None:
        console.print(_PROMPT_OUTCOME[result.prompt.outcome].format(b=bundle, now=result.prompt.current_version))
    guard = result.canary.guard_policy
    if guard is not None:
        text = _PROMPT_OUTCOME[result.guard_policy.outcome].replace("Prompt {b.id}", "Guard policy {b.name}")
        console.print(text.format(b=guard, now=result.guard_policy.current_version))


_PROMPT_OUTCOME = {
    PromptRestore.NO_BUNDLE: "",
    PromptRestore.RESTORE: "Prompt {b.id} label {b.label} moved back to version {b.baseline_version}.",
    PromptRestore.NOT_MOVED: "Prompt {b.id} label {b.label} is on baseline version {b.baseline_version}.",
    PromptRestore.CHANGED: "[yellow]Prompt {b.id} label {b.label} points at version {now}, set by someone else "
    "after the canary moved it: left as it is.[/]",
    PromptRestore.MISSING: "[yellow]Prompt {b.id} label {b.label} no longer exists: nothing to restore.[/]",
}
