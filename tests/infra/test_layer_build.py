"""The shared layer build: what goes in, what stays out, caching, the uv command, and a clear error when uv fails."""

from __future__ import annotations

import itertools
import json
import os
import sys
from pathlib import Path

import pytest

from infra.capabilities import lambda_layer
from infra.capabilities.lambda_layer import shared_layer_build
from infra.capabilities.layer_build import (
    LAYER_PYTHON_ENV,
    RUNTIME_PYTHON_VERSION,
    UV_ENV,
    LayerBuild,
    LayerBuildError,
    MissingBytecodeWarning,
    runtime_python,
    runtime_requirements,
    uv_command,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def _package(tmp_path: Path) -> Path:
    package = tmp_path / "src" / "llmops"
    for relative in (
        "__init__.py",
        "domain/chat.py",
        "cli/main.py",
        "local/serve.py",
        "domain/__pycache__/x.pyc",
    ):
        (package / relative).parent.mkdir(parents=True, exist_ok=True)
        (package / relative).write_text("# " + relative)
    return package


def test_requirements_drop_runtime_provided_packages_and_pin_to_the_lock(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    dependencies = ["pydantic>=2.8", "boto3>=1.35", "aws-lambda-powertools[tracer]>=3"]
    pyproject.write_text(f'[project]\nname = "x"\ndependencies = {json.dumps(dependencies)}\n')
    lock = tmp_path / "uv.lock"
    lock.write_text(
        "".join(
            f'[[package]]\nname = "{n}"\nversion = "{v}"\n\n' for n, v in [("pydantic", "2.9.1"), ("boto3", "1.35")]
        )
    )
    assert runtime_requirements(pyproject, lock) == ("aws-lambda-powertools[tracer]>=3", "pydantic==2.9.1")


def test_project_requirements_exclude_boto3() -> None:
    requirements = runtime_requirements(REPO_ROOT / "pyproject.toml", REPO_ROOT / "uv.lock")
    assert not [r for r in requirements if r.startswith("boto3")]
    assert any(r.startswith("pydantic==") for r in requirements)


def test_layer_holds_the_package_without_cli_local_or_bytecode(tmp_path: Path) -> None:
    build = LayerBuild(package_dir=_package(tmp_path), requirements=(), cache_root=tmp_path / "cache")
    out = tmp_path / "out"
    build.build_into(out)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["python/llmops/__init__.py", "python/llmops/domain/chat.py"]


def test_the_exec_wrapper_sits_at_the_layer_root_executable(tmp_path: Path) -> None:
    wrapper = tmp_path / "llmops-runtime"
    wrapper.write_text('#!/bin/sh\nexec "$1" -m llmops.lambda_runtime.loop\n')
    build = LayerBuild(
        package_dir=_package(tmp_path), requirements=(), cache_root=tmp_path / "cache", exec_wrapper=wrapper
    )
    out = tmp_path / "out"
    build.build_into(out)
    assert (out / "llmops-runtime").read_bytes() == wrapper.read_bytes()
    assert (out / "llmops-runtime").stat().st_mode & 0o777 == 0o755
    without = LayerBuild(package_dir=build.package_dir, requirements=(), cache_root=build.cache_root)
    assert build.input_hash() != without.input_hash()


def test_the_shared_layer_carries_the_streaming_runtime_and_its_wrapper(tmp_path: Path) -> None:
    build = shared_layer_build(install_requirements=False, cache_root=tmp_path / "cache")
    out = tmp_path / "out"
    build.build_into(out)
    assert (out / "python" / "llmops" / "lambda_runtime" / "loop.py").is_file()
    # package data the Lambda code reads at import (the injection signal table, the seed routes)
    assert (out / "python" / "llmops" / "domain" / "guard" / "injection" / "signals.json").is_file()
    assert (out / "python" / "llmops" / "config" / "routes.json").is_file()
    script = (out / "llmops-runtime").read_text()
    assert script.startswith("#!/bin/sh")
    assert "-m llmops.lambda_runtime.loop" in script


def test_the_layer_ships_bytecode_that_is_used_without_checking_the_source(tmp_path: Path) -> None:
    # Any interpreter compiles here; the build names the runtime's version via `runtime_python`.
    build = LayerBuild(
        package_dir=_package(tmp_path),
        requirements=(),
        cache_root=tmp_path / "cache",
        bytecode_python=Path(sys.executable),
    )
    out = tmp_path / "out"
    build.build_into(out)
    tag = sys.implementation.cache_tag
    compiled = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.pyc"))
    assert compiled == [
        f"python/llmops/__pycache__/__init__.{tag}.pyc",
        f"python/llmops/domain/__pycache__/chat.{tag}.pyc",
    ]
    # PEP 552 flags word: bit 0 hash-based, bit 1 check_source; unchecked-hash is 0b01, so a read-only
    # layer whose zip kept no mtimes still loads it.
    flags = int.from_bytes((out / compiled[0]).read_bytes()[4:8], "little")
    assert flags == 0b01
    source_only = LayerBuild(package_dir=build.package_dir, requirements=(), cache_root=build.cache_root)
    assert build.input_hash() != source_only.input_hash()
    assert build.dependencies_hash() != source_only.dependencies_hash()


def test_the_runtime_python_is_found_by_its_exact_version(monkeypatch: pytest.MonkeyPatch) -> None:
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    monkeypatch.setenv(LAYER_PYTHON_ENV, sys.executable)
    assert runtime_python(here) is not None
    assert runtime_python("2.99") is None  # no such interpreter: the caller warns and ships source


def test_without_the_runtime_python_the_layer_builds_source_only_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lambda_layer, "runtime_python", lambda: None)
    with pytest.warns(MissingBytecodeWarning, match=f"no Python {RUNTIME_PYTHON_VERSION} found"):
        build = shared_layer_build(install_requirements=False, cache_root=tmp_path / "cache")
    assert build.bytecode_python is None
    build.build_into(tmp_path / "out")
    assert not list((tmp_path / "out").rglob("*.pyc"))


FAKE_UV = """
import itertools
import json
import sys
from pathlib import Path
target = Path(sys.argv[sys.argv.index("--target") + 1])
(target / "fakedep").mkdir(parents=True)
(target / "fakedep" / "__init__.py").write_text(" ".join(a for a in sys.argv if "==" in a))
with open(__file__ + ".calls", "a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\\n")
"""


def _fake_uv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "fake_uv.py"
    script.write_text(FAKE_UV)
    monkeypatch.setenv(UV_ENV, f"{sys.executable} {script}")
    return tmp_path / "fake_uv.py.calls"


def _calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_dependencies_are_installed_once_and_the_package_copied_fresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _fake_uv(tmp_path, monkeypatch)
    package = _package(tmp_path)
    build = LayerBuild(package_dir=package, requirements=("dep==1",), cache_root=tmp_path / "cache")
    first = build.build_into(tmp_path / "a")
    (package / "domain" / "chat.py").write_text("# changed")
    assert build.build_into(tmp_path / "b") == first
    assert len(_calls(calls)) == 1
    site = tmp_path / "b" / "python"
    assert (site / "fakedep" / "__init__.py").read_text() == "dep==1"
    assert (site / "llmops" / "domain" / "chat.py").read_text() == "# changed"
    assert (
        build.input_hash()
        != LayerBuild(
            package_dir=_package(tmp_path / "other"), requirements=("dep==1",), cache_root=tmp_path / "cache"
        ).input_hash()
    )

    upgraded = LayerBuild(package_dir=package, requirements=("dep==2",), cache_root=tmp_path / "cache")
    upgraded.build_into(tmp_path / "c")
    assert len(_calls(calls)) == 2
    assert (tmp_path / "c" / "python" / "fakedep" / "__init__.py").read_text() == "dep==2"


def test_uv_installs_arm64_cpython_312_wheels_only_into_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _fake_uv(tmp_path, monkeypatch)
    LayerBuild(package_dir=_package(tmp_path), requirements=("dep==1",), cache_root=tmp_path / "cache").build_into(
        tmp_path / "out"
    )
    ((subcommand, verb, *flags),) = _calls(calls)
    assert (subcommand, verb) == ("pip", "install")
    pairs = dict(itertools.pairwise(flags))
    assert pairs["--python-platform"] == "aarch64-manylinux_2_34"  # Lambda python3.12 on arm64: AL2023, glibc 2.34
    assert pairs["--python-version"] == "3.12"
    assert pairs["--only-binary"] == ":all:"
    assert Path(pairs["--target"]).parent == tmp_path / "cache"
    assert "--no-config" in flags  # the project's own uv settings describe the dev venv, not the layer
    assert flags[-1] == "dep==1"


def test_uv_is_found_without_pip_whichever_python3_is_first_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An activated venv puts a pip-less python3 first on PATH; the build must not need it.
    shadow = tmp_path / "bin"
    shadow.mkdir()
    for name in ("python3", "python", "pip"):
        (shadow / name).write_text("#!/bin/sh\nexit 1\n")
        (shadow / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{shadow}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv(UV_ENV, raising=False)
    (uv,) = uv_command()
    assert Path(uv).name == "uv"
    assert Path(uv).is_file()


def test_without_uv_the_error_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(UV_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "uv", None)  # as if this interpreter had no uv package
    with pytest.raises(LayerBuildError, match="make bootstrap"):
        uv_command()


def test_uv_failure_explains_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(UV_ENV, "false")
    build = LayerBuild(package_dir=_package(tmp_path), requirements=("pydantic==2.9.1",), cache_root=tmp_path / "c")
    with pytest.raises(LayerBuildError, match="bundleDependencies=false"):
        build.build_into(tmp_path / "out")
    assert not [p for p in (tmp_path / "c").iterdir()]


@pytest.mark.slow
def test_real_layer_has_arm64_wheels_and_no_boto(tmp_path: Path) -> None:
    # Downloads from PyPI once; later runs copy the cached build under .cache/lambda-layer.
    out = tmp_path / "layer"
    shared_layer_build(install_requirements=True).build_into(out)
    site = out / "python"
    assert (site / "llmops" / "domain").is_dir()
    assert not (site / "llmops" / "cli").exists()
    assert not (site / "llmops" / "local").exists()
    for package in ("pydantic", "aws_lambda_powertools", "phonenumbers", "aws_xray_sdk", "re2"):
        assert (site / package).is_dir(), package
    for provided in ("boto3", "botocore", "s3transfer", "urllib3", "bin", ".lock"):
        assert not (site / provided).exists(), provided
    (binary,) = (site / "pydantic_core").glob("_pydantic_core*.so")
    assert "cpython-312-aarch64" in binary.name
    (re2_binary,) = (site / "re2").glob("_re2*.so")
    assert "cpython-312-aarch64" in re2_binary.name
