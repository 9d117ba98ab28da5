"""Cold start: a fresh Python process importing the gateway handler, versus one importing litellm,
plus the size of what a Lambda deployment of the gateway ships (the layer and the function code).

Both imports are timed inside the child with `time.perf_counter` around the import alone, median of
N fresh processes each; the wall time of the whole child (interpreter start-up included) is shown
too. "Init + first request" also builds the composition root and serves one chat completion
against the local stack's moto and Bedrock emulator, which is what a Lambda's first invocation pays.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llmops.bench.context import BenchContext
from llmops.bench.litellm_env import LiteLLMUnavailableError, litellm_environment
from llmops.bench.plots import grouped_bars
from llmops.bench.report import Comparison, Figure, Section, TargetCheck, format_number, markdown_table
from llmops.bench.stacks import LocalStackProcess, clean_environment, start_local_stack
from llmops.bench.stats import median, ratio
from llmops.bench.workload import chat_request_body
from llmops.config.env import EnvVar
from llmops.config.tables import TABLES
from llmops.local.naming import LOCAL_REGION, local_table_name
from llmops.observability.metrics import GATEWAY_SERVICE
from llmops.observability.powertools_env import powertools_environment

__all__ = ["KEY", "TITLE", "run", "zip_directory"]

KEY = "cold_start"
TITLE = "Cold start and bundle size"
INIT_TARGET_MS = 400.0
RATIO_TARGET = 0.1
BUNDLE_TARGET_MB = 10.0
_RESULT_MARKER = "BENCH_RESULT "

# The child: time the import of the handler module (and optionally one invocation) by itself.
_GATEWAY_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import importlib.util
spec = importlib.util.spec_from_file_location("llmops_function_gateway", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
t1 = time.perf_counter()
out = {"init_ms": (t1 - t0) * 1000}
if len(sys.argv) > 2:
    class Context:
        function_name = "llmops-gateway"
        memory_limit_in_mb = 1024
        function_version = "$LATEST"
        invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:llmops-gateway"
        aws_request_id = "cold-start"
        def get_remaining_time_in_millis(self):
            return 30000
    with open(sys.argv[2]) as f:
        event = json.load(f)
    result = module.handler(event, Context())
    out["first_request_ms"] = (time.perf_counter() - t1) * 1000
    out["status"] = result["statusCode"]
print("BENCH_RESULT " + json.dumps(out))
"""

_LITELLM_CHILD = """
import json, time
t0 = time.perf_counter()
import litellm
print("BENCH_RESULT " + json.dumps({"init_ms": (time.perf_counter() - t0) * 1000}))
"""


def _lambda_environment() -> dict[str, str]:
    """What the CDK stack sets on the gateway function (infra/capabilities/python_function.py)."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_REGION": LOCAL_REGION,
        # No X-Ray daemon here; the tracer module is still imported, so init time includes it.
        **powertools_environment(GATEWAY_SERVICE, log_level="WARNING", tracing=False),
    }


def _run_child(argv: list[str], env: Mapping[str, str], cwd: Path) -> dict[str, Any]:
    started = time.perf_counter()
    # argv: this benchmark's interpreters and inline scripts.
    result = subprocess.run(  # noqa: S603
        argv, capture_output=True, text=True, check=False, timeout=180, env=dict(env), cwd=cwd
    )
    wall_ms = (time.perf_counter() - started) * 1000
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith(_RESULT_MARKER)), None)
    if result.returncode != 0 or line is None:
        detail = (result.stderr or result.stdout).strip()[-1500:]
        raise RuntimeError(f"cold-start child failed (exit {result.returncode}): {detail}")
    data: dict[str, Any] = json.loads(line.removeprefix(_RESULT_MARKER))
    data["process_wall_ms"] = wall_ms
    return data


def _stack_environment(stack: LocalStackProcess) -> dict[str, str]:
    state = stack.state
    env = {
        "AWS_ENDPOINT_URL": str(state["aws_endpoint_url"]),
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": str(state["bedrock_runtime_url"]),
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": str(state["sagemaker_runtime_url"]),
        EnvVar.KEY_PEPPER.value: str(state["key_pepper"]),
        EnvVar.AUDIT_DLQ_URL.value: str(state["audit_dlq_url"]),
    }
    env.update({spec.env_var: local_table_name(spec.logical_name) for spec in TABLES})
    return env


def _first_request_event(ctx: BenchContext, index: int) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ctx.repo_root / "events" / "chat_completion.json").read_text())
    event["body"] = chat_request_body().decode()
    event["requestContext"]["requestId"] = f"cold-start-{index}-{time.time_ns()}"
    event["requestContext"]["authorizer"].update(
        {"tenant_id": "dev", "key_id": "coldstart", "limits": json.dumps({"rpm": 1000, "tpm": 10_000_000})}
    )
    return event


def _gateway_runs(ctx: BenchContext, runs: int, advance: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    work = ctx.work_dir(KEY)
    handler = ctx.repo_root / "functions" / "gateway" / "handler.py"
    base_env = clean_environment({**_lambda_environment(), "PYTHONPATH": str(ctx.repo_root / "shared")})
    argv = [sys.executable, "-c", _GATEWAY_CHILD, str(handler)]
    init_only = []
    for _ in range(runs):
        init_only.append(_run_child(argv, base_env, work))
        advance()
    stack = start_local_stack(work / "stack", guards_on=True, name="llmops-serve (cold start)")
    try:
        env = {**base_env, **_stack_environment(stack)}
        first = []
        for index in range(runs):
            event_file = work / f"event-{index}.json"
            event_file.write_text(json.dumps(_first_request_event(ctx, index)))
            first.append(_run_child([*argv, str(event_file)], env, work))
            advance()
    finally:
        stack.stop()
    return init_only, first


def _litellm_runs(ctx: BenchContext, runs: int, advance: Any) -> tuple[list[dict[str, Any]], str]:
    litellm = ctx.litellm()
    env = litellm_environment(clean_environment())
    samples = []
    for _ in range(runs):
        samples.append(_run_child([str(litellm.python), "-c", _LITELLM_CHILD], env, ctx.work_dir(KEY)))
        advance()
    return samples, litellm.version


def zip_directory(source: Path, archive: Path, prefix: str = "") -> int:
    """Zips `source` (without __pycache__ and .pyc) like a Lambda asset; returns the archive's bytes."""
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path in sorted(source.rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            zf.write(path, f"{prefix}{path.relative_to(source).as_posix()}")
    return archive.stat().st_size


def _directory_bytes(source: Path) -> int:
    return sum(p.stat().st_size for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def _layer_build_module(repo_root: Path) -> Any:
    """infra/capabilities/layer_build.py, loaded by path: importing the `infra.capabilities` package
    would import aws_cdk and start a jsii node process (seconds) for nothing."""
    name = "llmops_bench_layer_build"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, repo_root / "infra" / "capabilities" / "layer_build.py")
    if spec is None or spec.loader is None:
        raise ImportError("cannot load infra/capabilities/layer_build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


def _bundle(ctx: BenchContext) -> dict[str, Any]:
    """Builds the layer with infra's own build code, then zips it and the function code."""
    layer_build = _layer_build_module(ctx.repo_root)
    LayerBuild, LayerBuildError = layer_build.LayerBuild, layer_build.LayerBuildError  # noqa: N806 - classes
    work = ctx.work_dir(KEY) / "bundle"
    layer_dir = work / "layer"
    if layer_dir.exists():
        import shutil  # noqa: PLC0415

        shutil.rmtree(layer_dir)
    build = LayerBuild(
        package_dir=ctx.repo_root / "shared" / "llmops",
        requirements=layer_build.runtime_requirements(ctx.repo_root / "pyproject.toml", ctx.repo_root / "uv.lock"),
        # The same cache as `cdk synth` (infra/capabilities/lambda_layer.py): a synth's pip work is reused.
        cache_root=ctx.repo_root / ".cache" / "lambda-layer",
    )
    note = ""
    try:
        build.build_into(layer_dir)
    except LayerBuildError as exc:
        note = f"dependencies could not be installed ({str(exc).splitlines()[0]}); the layer holds llmops only"
        layer_dir.mkdir(parents=True, exist_ok=True)
        LayerBuild(build.package_dir, (), build.cache_root, install_requirements=False).build_into(layer_dir)
    functions = ctx.repo_root / "functions"
    layer_zip = zip_directory(layer_dir, work / "layer.zip")
    gateway_zip = zip_directory(functions / "gateway", work / "gateway-function.zip")
    all_functions_zip = zip_directory(functions, work / "functions.zip")
    packages = sorted(p.name for p in (layer_dir / "python" / "llmops").iterdir() if p.is_dir())
    return {
        "requirements": list(build.requirements),
        "layer_zip_bytes": layer_zip,
        "layer_unzipped_bytes": _directory_bytes(layer_dir),
        "gateway_function_zip_bytes": gateway_zip,
        "all_functions_zip_bytes": all_functions_zip,
        "bundle_zip_bytes": layer_zip + all_functions_zip,
        "llmops_subpackages_in_layer": packages,
        "note": note,
    }


def run(ctx: BenchContext) -> Section:
    runs = ctx.profile.cold_start_runs
    results: dict[str, Any] = {"runs": runs}
    litellm_error: str | None = None
    with ctx.progress() as progress:
        task = progress.add_task("cold starts (fresh processes)", total=3 * runs)

        def advance() -> None:
            progress.advance(task)

        init_only, first = _gateway_runs(ctx, runs, advance)
        try:
            litellm_samples, litellm_version = _litellm_runs(ctx, runs, advance)
        except LiteLLMUnavailableError as exc:
            litellm_samples, litellm_version, litellm_error = [], "", str(exc)
    with ctx.console.status("Building the Lambda layer the way infra/ does and zipping it..."):
        bundle = _bundle(ctx)

    def med(samples: list[dict[str, Any]], field: str) -> float:
        return median([float(s[field]) for s in samples]) if samples else float("nan")

    gateway_init = med(init_only, "init_ms")
    first_total = median([s["init_ms"] + s["first_request_ms"] for s in first])
    litellm_init = med(litellm_samples, "init_ms")
    init_ratio = ratio(gateway_init, litellm_init)
    results.update(
        {
            "gateway_init": init_only,
            "gateway_init_and_first_request": first,
            "litellm_import": litellm_samples,
            "litellm_version": litellm_version,
            "litellm_error": litellm_error,
            "median_gateway_init_ms": gateway_init,
            "median_gateway_init_and_first_request_ms": first_total,
            "median_litellm_import_ms": litellm_init,
            "ratio_gateway_init_to_litellm_import": init_ratio,
            "bundle": bundle,
        }
    )
    mb = 1024 * 1024
    rows = [
        (
            "gateway handler: import (module init)",
            format_number(gateway_init, 0),
            format_number(med(init_only, "process_wall_ms"), 0),
        ),
        (
            "gateway handler: init + first chat request",
            format_number(first_total, 0),
            format_number(med(first, "process_wall_ms"), 0),
        ),
        (
            f"`import litellm` ({litellm_version or 'not available'})",
            format_number(litellm_init, 0),
            format_number(med(litellm_samples, "process_wall_ms"), 0),
        ),
    ]
    statuses = sorted({str(s.get("status")) for s in first})
    path, relative = ctx.figure(KEY, "init")
    grouped_bars(
        path,
        ["gateway init", "gateway init + 1st request", "import litellm"],
        {"median ms (in-process)": [gateway_init, first_total, litellm_init if litellm_samples else None]},
        title=f"Cold start, median of {runs} fresh processes",
        ylabel="milliseconds",
    )
    bundle_rows = [
        (
            "layer (runtime deps + llmops, boto3 excluded)",
            format_number(bundle["layer_zip_bytes"] / mb, 2),
            format_number(bundle["layer_unzipped_bytes"] / mb, 2),
        ),
        ("gateway function code", format_number(bundle["gateway_function_zip_bytes"] / mb, 3), ""),
        ("layer + all of functions/", format_number(bundle["bundle_zip_bytes"] / mb, 2), ""),
    ]
    body_lines = [
        f'Median of {runs} fresh processes each. "in-process" is `time.perf_counter()` around the import '
        '(and the first invocation) inside the child; "process wall" adds interpreter start-up and exit. '
        "The gateway child runs with the environment CDK gives the function (Powertools settings; tracing "
        "disabled as there is no X-Ray daemon, but the tracer's modules are still imported). LiteLLM reads its "
        "bundled model cost map (`LITELLM_LOCAL_MODEL_COST_MAP=True`) rather than downloading it.",
        "",
        markdown_table(("what", "median in-process ms", "median process wall ms"), rows),
        "",
        f"First-request statuses: {', '.join(statuses)} (served against the local stack's moto and Bedrock "
        "emulator over loopback).",
        "",
        f"Ratio gateway init / `import litellm`: **{format_number(init_ratio, 3, 'x')}**.",
        "",
        "Lambda bundle, built with `infra/capabilities/layer_build.py` (arm64 wheels for python3.12, the "
        "packages the Lambda runtime already provides left out) and zipped with deflate:",
        "",
        markdown_table(("artifact", "zipped MB", "unzipped MB"), bundle_rows),
        "",
        f"llmops subpackages in the layer: {', '.join(bundle['llmops_subpackages_in_layer'])}.",
    ]
    if bundle["note"]:
        body_lines += ["", f"Note: {bundle['note']}."]
    if litellm_error:
        body_lines += ["", f"LiteLLM was not measured: {litellm_error}"]
    return Section(
        key=KEY,
        title=TITLE,
        body="\n".join(body_lines),
        figures=[Figure(relative, "Cold start: gateway handler init vs import litellm")],
        targets=[
            TargetCheck("gateway handler cold init (median)", gateway_init, INIT_TARGET_MS, "ms"),
            TargetCheck("gateway init / import litellm", init_ratio, RATIO_TARGET, "x"),
            TargetCheck(
                "Lambda bundle zipped (layer + functions)",
                bundle["bundle_zip_bytes"] / mb,
                BUNDLE_TARGET_MB,
                "MB",
                Comparison.BELOW,
            ),
        ],
        results=results,
    )
