"""The shared layer build: what goes in, what stays out, caching, and a clear error when pip fails."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from infra.capabilities.lambda_layer import shared_layer_build
from infra.capabilities.layer_build import LayerBuild, LayerBuildError, runtime_requirements

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


FAKE_PIP = """
import sys
from pathlib import Path
target = Path(sys.argv[sys.argv.index("--target") + 1])
(target / "fakedep").mkdir(parents=True)
(target / "fakedep" / "__init__.py").write_text(" ".join(a for a in sys.argv if "==" in a))
with open(__file__ + ".calls", "a") as calls:
    calls.write("x")
"""


def _fake_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "fake_pip.py"
    script.write_text(FAKE_PIP)
    monkeypatch.setenv("LLMOPS_PIP", f"{sys.executable} {script}")
    return tmp_path / "fake_pip.py.calls"


def test_dependencies_are_installed_once_and_the_package_copied_fresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _fake_pip(tmp_path, monkeypatch)
    package = _package(tmp_path)
    build = LayerBuild(package_dir=package, requirements=("dep==1",), cache_root=tmp_path / "cache")
    first = build.build_into(tmp_path / "a")
    (package / "domain" / "chat.py").write_text("# changed")
    assert build.build_into(tmp_path / "b") == first
    assert calls.read_text() == "x"
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
    assert calls.read_text() == "xx"
    assert (tmp_path / "c" / "python" / "fakedep" / "__init__.py").read_text() == "dep==2"


def test_pip_failure_explains_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMOPS_PIP", "false")
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
    for provided in ("boto3", "botocore", "s3transfer", "urllib3"):
        assert not (site / provided).exists(), provided
    (binary,) = (site / "pydantic_core").glob("_pydantic_core*.so")
    assert "cpython-312-aarch64" in binary.name
    (re2_binary,) = (site / "re2").glob("_re2*.so")
    assert "cpython-312-aarch64" in re2_binary.name
