"""Cold start: a fresh Python process importing the gateway handler, versus one importing litellm,
plus the size of what a Lambda deployment of the gateway ships (the layer and the function code).

The gateway is measured the way Lambda runs it: a bundle built with infra's own layer build (for
this machine's CPU instead of arm64), laid out as Lambda lays it out (the layer's `python/`, the
runtime's boto3 and botocore apart from it as in /var/runtime, the function's directory as
/var/task), made read-only, run by an interpreter of the runtime's Python version (3.12, found as
the layer build finds it) with `PYTHONDONTWRITEBYTECODE=1`. Twice: the layer as shipped (with the
bytecode the build compiles) and without any bytecode (what a layer built with `--no-compile` and
no `.pyc` gives Lambda). The runtime's own packages keep bytecode in both, as the managed runtime
ships them compiled.

Imports are timed inside the child with `time.perf_counter` around the import alone, median of N
fresh processes each (the variants interleaved, so load on the machine hits them alike); the wall
time of the whole child (interpreter start-up included) is shown too. One more child runs with
`-X importtime` for the breakdown by package. "Init + first request" also builds the composition
root and serves one chat completion against the local stack's moto and Bedrock emulator, which is
what a Lambda's first invocation pays.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmops.bench.context import BenchContext
from llmops.bench.import_profile import package_costs, parse_importtime
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
INIT_TARGET_MS = 300.0
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
    """What the CDK stack sets on the gateway function (infra/capabilities/python_function.py), and
    what Lambda's Python runtime sets for every function."""
    return {
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": "/var/task",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_REGION": LOCAL_REGION,
        # No X-Ray daemon here: tracing off, so (as in a function with tracing off) no Tracer is built.
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


@dataclass(frozen=True, slots=True)
class LambdaBundle:
    """A read-only gateway deployment laid out as Lambda lays it out, runnable on this machine."""

    python: Path  # the runtime's Python version, or this interpreter when none is installed
    python_version: str
    task: Path  # /var/task: functions/gateway, no bytecode (the function asset excludes it)
    runtime: Path  # /var/runtime: boto3 and botocore, compiled
    layer_compiled: Path  # /opt/python as shipped
    layer_source_only: Path  # /opt/python without any .pyc
    note: str

    def environment(self, *, bytecode: bool) -> dict[str, str]:
        layer = self.layer_compiled if bytecode else self.layer_source_only
        return {"PYTHONPATH": os.pathsep.join((str(self.task), str(layer), str(self.runtime)))}


def _make_writable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _make_read_only(root: Path) -> None:
    # As Lambda mounts code and layers: nothing can write a __pycache__ beside a module.
    for path in [*root.rglob("*"), root]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _host_platform_args(layer_build: Any, version: str) -> tuple[str, ...]:
    """infra's wheel selection (manylinux, glibc 2.34, wheels only) for this machine's CPU instead of arm64."""
    args = list(layer_build.LAMBDA_PLATFORM_ARGS)
    args[args.index("--python-platform") + 1] = f"{platform.machine()}-manylinux_2_34"
    args[args.index("--python-version") + 1] = version
    return tuple(args)


def _runtime_packages(ctx: BenchContext, layer_build: Any, platform_args: tuple[str, ...], target: Path) -> None:
    """boto3 and botocore at the versions the tests run (what the managed runtime provides)."""
    locked = layer_build.locked_versions(ctx.repo_root / "uv.lock")
    requirements = [f"{name}=={locked[name]}" if name in locked else name for name in ("boto3", "botocore")]
    command = [
        *layer_build.uv_command(),
        "pip",
        "install",
        "--no-config",
        "--quiet",
        *platform_args,
        "--target",
        str(target),
        *requirements,
    ]
    # argv: uv, fixed flags and this repository's locked versions.
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)  # noqa: S603
    if result.returncode != 0:
        raise RuntimeError(f"could not install the runtime's boto3: {(result.stderr or result.stdout)[-800:]}")


def lambda_bundle(ctx: BenchContext) -> LambdaBundle:
    """Builds the gateway's layer with infra's `LayerBuild` (bytecode included) for this machine."""
    layer_build = _layer_build_module(ctx.repo_root)
    python = layer_build.runtime_python()
    note = ""
    if python is None:
        python = Path(sys.executable)
        note = (
            f"no Python {layer_build.RUNTIME_PYTHON_VERSION} here: measured with {platform.python_version()}, "
            "not the runtime's version"
        )
    version = layer_build.python_version(str(python))
    root = ctx.work_dir(KEY) / "lambda"
    if root.exists():
        _make_writable(root)
        shutil.rmtree(root)
    platform_args = _host_platform_args(layer_build, version)
    build = layer_build.LayerBuild(
        package_dir=ctx.repo_root / "shared" / "llmops",
        requirements=layer_build.runtime_requirements(ctx.repo_root / "pyproject.toml", ctx.repo_root / "uv.lock"),
        # Not the synth's cache: entries for this CPU would evict the synth's arm64 ones.
        cache_root=ctx.repo_root / ".cache" / "bench-lambda-layer",
        platform_args=platform_args,
        bytecode_python=python,
    )
    build.build_into(root / "opt-compiled")
    shutil.copytree(root / "opt-compiled", root / "opt-source", ignore=shutil.ignore_patterns("__pycache__"))
    _runtime_packages(ctx, layer_build, platform_args, root / "runtime")
    layer_build.compile_bytecode(python, root / "runtime", root / "runtime")
    shutil.copytree(
        ctx.repo_root / "functions" / "gateway", root / "task", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    _make_read_only(root)
    return LambdaBundle(
        python=python,
        python_version=version,
        task=root / "task",
        runtime=root / "runtime",
        layer_compiled=root / "opt-compiled" / "python",
        layer_source_only=root / "opt-source" / "python",
        note=note,
    )


def _gateway_child(bundle: LambdaBundle, *extra: str) -> list[str]:
    return [str(bundle.python), *extra, "-c", _GATEWAY_CHILD, str(bundle.task / "handler.py")]


def _gateway_runs(
    ctx: BenchContext, bundle: LambdaBundle, runs: int, advance: Any
) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """Fresh processes per variant (interleaved), the import breakdown, then init + first request."""
    work = ctx.work_dir(KEY)
    base_env = clean_environment(_lambda_environment())
    shipped_env = {**base_env, **bundle.environment(bytecode=True)}
    source_env = {**base_env, **bundle.environment(bytecode=False)}
    samples: dict[str, list[dict[str, Any]]] = {"shipped": [], "no_bytecode": [], "first_request": []}
    for _ in range(runs):
        samples["shipped"].append(_run_child(_gateway_child(bundle), shipped_env, work))
        samples["no_bytecode"].append(_run_child(_gateway_child(bundle), source_env, work))
        advance()
        advance()
    # argv: the bundle's interpreter and the fixed child script.
    profiled = subprocess.run(  # noqa: S603
        _gateway_child(bundle, "-X", "importtime"),
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
        env=shipped_env,
        cwd=work,
    )
    stack = start_local_stack(work / "stack", guards_on=True, name="llmops-serve (cold start)")
    try:
        env = {**shipped_env, **_stack_environment(stack)}
        for index in range(runs):
            event_file = work / f"event-{index}.json"
            event_file.write_text(json.dumps(_first_request_event(ctx, index)))
            samples["first_request"].append(_run_child([*_gateway_child(bundle), str(event_file)], env, work))
            advance()
    finally:
        stack.stop()
    return samples, profiled.stderr


def _litellm_runs(ctx: BenchContext, runs: int, advance: Any) -> tuple[list[dict[str, Any]], str]:
    litellm = ctx.litellm()
    env = litellm_environment(clean_environment())
    samples = []
    for _ in range(runs):
        samples.append(_run_child([str(litellm.python), "-c", _LITELLM_CHILD], env, ctx.work_dir(KEY)))
        advance()
    return samples, litellm.version


def zip_directory(source: Path, archive: Path, prefix: str = "", *, bytecode: bool = False) -> int:
    """Zips `source` like a Lambda asset (without __pycache__ and .pyc unless `bytecode`: the layer
    ships the bytecode its build compiled); returns the archive's bytes."""
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path in sorted(source.rglob("*")):
            if not path.is_file() or (not bytecode and ("__pycache__" in path.parts or path.suffix == ".pyc")):
                continue
            zf.write(path, f"{prefix}{path.relative_to(source).as_posix()}")
    return archive.stat().st_size


def _directory_bytes(source: Path) -> int:
    return sum(p.stat().st_size for p in source.rglob("*") if p.is_file())


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
        bytecode_python=layer_build.runtime_python(),
    )
    note = ""
    try:
        build.build_into(layer_dir)
    except LayerBuildError as exc:
        note = f"dependencies could not be installed ({str(exc).splitlines()[0]}); the layer holds llmops only"
        layer_dir.mkdir(parents=True, exist_ok=True)
        LayerBuild(build.package_dir, (), build.cache_root, install_requirements=False).build_into(layer_dir)
    functions = ctx.repo_root / "functions"
    layer_zip = zip_directory(layer_dir, work / "layer.zip", bytecode=True)
    gateway_zip = zip_directory(functions / "gateway", work / "gateway-function.zip")
    all_functions_zip = zip_directory(functions, work / "functions.zip")
    packages = sorted(
        p.name for p in (layer_dir / "python" / "llmops").iterdir() if p.is_dir() and p.name != "__pycache__"
    )
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


def _import_breakdown(stderr: str, top: int = 12) -> tuple[list[tuple[str, str, str]], list[dict[str, Any]]]:
    imports = parse_importtime(stderr)
    costs = package_costs(imports)
    total_ms = sum(cost.self_ms for cost in costs)
    rows = [
        (f"`{cost.package}`", format_number(cost.self_ms, 1), format_number(100 * cost.self_ms / total_ms, 0) + "%")
        for cost in costs[:top]
        if total_ms > 0
    ]
    return rows, [{"package": c.package, "self_ms": c.self_ms, "modules": c.modules} for c in costs[:40]]


def run(ctx: BenchContext) -> Section:
    runs = ctx.profile.cold_start_runs
    results: dict[str, Any] = {"runs": runs}
    litellm_error: str | None = None
    with ctx.console.status("Building the gateway's Lambda bundle for this machine (infra's layer build)..."):
        lambda_env = lambda_bundle(ctx)
    with ctx.progress() as progress:
        task = progress.add_task("cold starts (fresh processes)", total=4 * runs)

        def advance() -> None:
            progress.advance(task)

        samples, importtime_stderr = _gateway_runs(ctx, lambda_env, runs, advance)
        try:
            litellm_samples, litellm_version = _litellm_runs(ctx, runs, advance)
        except LiteLLMUnavailableError as exc:
            litellm_samples, litellm_version, litellm_error = [], "", str(exc)
    with ctx.console.status("Building the Lambda layer the way infra/ does and zipping it..."):
        bundle = _bundle(ctx)

    def med(samples: list[dict[str, Any]], field: str) -> float:
        return median([float(s[field]) for s in samples]) if samples else float("nan")

    init_only, source_only, first = samples["shipped"], samples["no_bytecode"], samples["first_request"]
    gateway_init = med(init_only, "init_ms")
    source_init = med(source_only, "init_ms")
    first_total = median([s["init_ms"] + s["first_request_ms"] for s in first])
    litellm_init = med(litellm_samples, "init_ms")
    init_ratio = ratio(gateway_init, litellm_init)
    breakdown_rows, breakdown = _import_breakdown(importtime_stderr)
    results.update(
        {
            "python": lambda_env.python_version,
            "gateway_init": init_only,
            "gateway_init_without_bytecode": source_only,
            "gateway_init_and_first_request": first,
            "litellm_import": litellm_samples,
            "litellm_version": litellm_version,
            "litellm_error": litellm_error,
            "median_gateway_init_ms": gateway_init,
            "median_gateway_init_without_bytecode_ms": source_init,
            "median_gateway_init_and_first_request_ms": first_total,
            "median_litellm_import_ms": litellm_init,
            "ratio_gateway_init_to_litellm_import": init_ratio,
            "import_breakdown_self_ms": breakdown,
            "bundle": bundle,
        }
    )
    mb = 1024 * 1024
    rows = [
        (
            "gateway handler: import (module init), layer as shipped (bytecode)",
            format_number(gateway_init, 0),
            format_number(med(init_only, "process_wall_ms"), 0),
        ),
        (
            "gateway handler: import, layer without bytecode",
            format_number(source_init, 0),
            format_number(med(source_only, "process_wall_ms"), 0),
        ),
        (
            "gateway handler: init + first chat request (as shipped)",
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
        ["gateway init", "gateway init, no bytecode", "gateway init + 1st request", "import litellm"],
        {
            "median ms (in-process)": [
                gateway_init,
                source_init,
                first_total,
                litellm_init if litellm_samples else None,
            ]
        },
        title=f"Cold start, median of {runs} fresh processes",
        ylabel="milliseconds",
    )
    bundle_rows = [
        (
            "layer (runtime deps + llmops + bytecode, boto3 excluded)",
            format_number(bundle["layer_zip_bytes"] / mb, 2),
            format_number(bundle["layer_unzipped_bytes"] / mb, 2),
        ),
        ("gateway function code", format_number(bundle["gateway_function_zip_bytes"] / mb, 3), ""),
        ("layer + all of functions/", format_number(bundle["bundle_zip_bytes"] / mb, 2), ""),
    ]
    body_lines = [
        f"Median of {runs} fresh processes each, measured as Lambda runs the function: Python "
        f"{lambda_env.python_version}, the layer built by `infra/capabilities/layer_build.py` (for this "
        "machine's CPU), read-only, `PYTHONDONTWRITEBYTECODE=1`, the runtime's boto3 apart as in "
        '/var/runtime. "in-process" is `time.perf_counter()` around the import (and the first invocation) '
        'inside the child; "process wall" adds interpreter start-up and exit. The child has the environment '
        "CDK gives the function (Powertools settings; tracing off as there is no X-Ray daemon, so no Tracer "
        "is built: with tracing on, the first invocation builds it). LiteLLM reads its bundled model cost map "
        "(`LITELLM_LOCAL_MODEL_COST_MAP=True`) rather than downloading it.",
        "",
        markdown_table(("what", "median in-process ms", "median process wall ms"), rows),
        "",
        f"First-request statuses: {', '.join(statuses)} (served against the local stack's moto and Bedrock "
        "emulator over loopback).",
        "",
        f"Ratio gateway init / `import litellm`: **{format_number(init_ratio, 3, 'x')}**.",
        "",
        "Where the shipped cold init goes (`python -X importtime`, one more process; self time summed per "
        "package, ours per subpackage):",
        "",
        markdown_table(("package", "self ms", "share"), breakdown_rows),
        "",
        "Lambda bundle, built with `infra/capabilities/layer_build.py` (arm64 wheels for python3.12, the "
        "packages the Lambda runtime already provides left out, bytecode compiled by Python 3.12) and zipped "
        "with deflate:",
        "",
        markdown_table(("artifact", "zipped MB", "unzipped MB"), bundle_rows),
        "",
        f"llmops subpackages in the layer: {', '.join(bundle['llmops_subpackages_in_layer'])}.",
    ]
    if lambda_env.note:
        body_lines += ["", f"Note: {lambda_env.note}."]
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
            TargetCheck("gateway handler cold init, as shipped (median)", gateway_init, INIT_TARGET_MS, "ms"),
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
