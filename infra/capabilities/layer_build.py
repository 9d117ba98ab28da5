"""Builds the shared Lambda layer directory without Docker: uv for arm64 wheels plus the llmops package.

The layer holds the runtime dependencies from pyproject.toml (minus what the Lambda Python runtime
already ships) and `shared/llmops` without the CLI and the local stack. The installed
dependencies are cached by a hash of the pinned requirements and the target platform, so repeated
synths copy a directory instead of calling uv; the package itself is copied fresh each time.

uv rather than pip: the project venv is made by uv and has no pip, while uv is a dev dependency in
it, so the build works whichever `python3` is first on PATH (an activated venv included).

Bytecode: Lambda extracts a layer read-only and the runtime cannot write a `__pycache__`, so a
layer without `.pyc` files makes every cold start compile every module it imports from source
(about a second for the gateway). The layer is therefore compiled with an interpreter of the
runtime's exact version (`runtime_python`: `$LLMOPS_LAYER_PYTHON`, `python3.12` on PATH, or a
pyenv install), with `--invalidation-mode unchecked-hash`: the runtime then loads each `.pyc`
without comparing it against the source's mtime (which a zip does not keep), and the files are
the same bytes on every build. Without such an interpreter the synth still works, with a warning,
and the layer has no bytecode.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

__all__ = [
    "LAMBDA_PLATFORM_ARGS",
    "LAYER_PYTHON_ENV",
    "RUNTIME_PROVIDED",
    "RUNTIME_PYTHON_VERSION",
    "LayerBuild",
    "LayerBuildError",
    "MissingBytecodeWarning",
    "compile_bytecode",
    "locked_versions",
    "python_version",
    "runtime_python",
    "runtime_requirements",
]

# Bump when the layout or the build steps change, so old cache entries stop matching.
_BUILD_FORMAT = "4"

# The Lambda runtime's Python (`lambda_.Runtime.PYTHON_3_12` in python_function.py and lambda_layer.py).
RUNTIME_PYTHON_VERSION = "3.12"

# The python3.12 runtime is Amazon Linux 2023 on arm64 (glibc 2.34). uv accepts every manylinux tag up
# to the one named, so manylinux2014 wheels and those published only for manylinux_2_26/2_28 (google-re2
# on aarch64) both resolve. Wheels only: nothing is compiled for the wrong machine.
LAMBDA_PLATFORM_ARGS: tuple[str, ...] = (
    "--python-platform",
    "aarch64-manylinux_2_34",
    "--python-version",
    RUNTIME_PYTHON_VERSION,
    "--only-binary",
    ":all:",
)

# The python3.12 runtime ships boto3 and its dependency tree. Copies in the layer would shadow
# them (/opt/python precedes /var/runtime on sys.path) and could pair a new botocore with the
# runtime's boto3; aws-xray-sdk drags botocore in, so these are pruned after install.
RUNTIME_PROVIDED = frozenset(
    canonicalize_name(name)
    for name in ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
)

# Tooling that runs on a workstation or in CI, never in a Lambda: kept out of the bundle.
_PACKAGE_EXCLUDES = frozenset({"cli", "local", "bench", "evaluation", "__pycache__"})

# A new entry per change of requirements; keep the most recent few (one is ~17 MB).
_CACHE_ENTRIES_KEPT = 4


class LayerBuildError(RuntimeError):
    """The layer could not be built; the message says what to do about it."""


class MissingBytecodeWarning(UserWarning):
    """The layer is built without bytecode: every Lambda cold start compiles its modules from source."""


LAYER_PYTHON_ENV = "LLMOPS_LAYER_PYTHON"


def python_version(executable: str) -> str | None:
    """`major.minor` of `executable`, or None if it does not run (a pyenv shim of another version fails)."""
    try:
        # argv: an interpreter path found below or named by the user, and a fixed script.
        result = subprocess.run(  # noqa: S603
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def runtime_python(version: str = RUNTIME_PYTHON_VERSION) -> Path | None:
    """An interpreter of exactly `version` to compile the layer's bytecode with, or None.

    Looked for in `$LLMOPS_LAYER_PYTHON`, this interpreter, `python<version>` on PATH, then pyenv's
    installs (`$PYENV_ROOT` or ~/.pyenv), newest patch release first. Bytecode is the same within a
    minor version, so any 3.12.x compiles for the python3.12 runtime.
    """
    candidates: list[str] = []
    override = os.environ.get(LAYER_PYTHON_ENV)
    if override:
        candidates.append(override)
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        candidates.append(sys.executable)
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(on_path)
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    installs = sorted(pyenv_root.glob(f"versions/{version}.*/bin/python{version}"), key=_patch_level, reverse=True)
    candidates.extend(str(path) for path in installs)
    for candidate in dict.fromkeys(candidates):
        if python_version(candidate) == version:
            return Path(candidate)
    return None


def _patch_level(interpreter: Path) -> tuple[int, ...]:
    # .../versions/3.12.1/bin/python3.12 -> (3, 12, 1); a non-numeric suffix (3.12.1t) sorts first.
    name = interpreter.parents[1].name
    return tuple(int(part) if part.isdigit() else -1 for part in name.split("."))


# Where Lambda puts a layer's python/ directory: the file names the bytecode records (tracebacks).
_LAYER_SITE_DIR = "/opt/python"


def compile_bytecode(python: Path, directory: Path, site_dir: Path) -> None:
    """Compiles every module under `directory` (inside the layer's `site_dir`) with `python`, for a
    read-only bundle (see the module doc), recording the paths the modules have in Lambda.

    A file that does not compile (a package's Python 2 leftovers) keeps no `.pyc` and is named in a
    warning; the rest are compiled.
    """
    command = [
        str(python),
        "-m",
        "compileall",
        "-q",
        "-j",
        "0",
        "--invalidation-mode",
        "unchecked-hash",
        "-s",
        str(site_dir),
        "-p",
        _LAYER_SITE_DIR,
        str(directory),
    ]
    # argv: the interpreter found by `runtime_python` and fixed flags.
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)  # noqa: S603
    if result.returncode != 0:
        detail = (result.stdout + result.stderr).strip()[-1500:]
        warnings.warn(
            f"some modules under {directory} did not compile to bytecode and will compile at cold start:\n{detail}",
            MissingBytecodeWarning,
            stacklevel=2,
        )


def locked_versions(uv_lock: Path) -> dict[str, str]:
    if not uv_lock.is_file():
        return {}
    lock = tomllib.loads(uv_lock.read_text(encoding="utf-8"))
    return {canonicalize_name(pkg["name"]): str(pkg["version"]) for pkg in lock.get("package", [])}


def runtime_requirements(pyproject: Path, uv_lock: Path | None = None) -> tuple[str, ...]:
    """`[project].dependencies` minus runtime-provided packages, pinned to uv.lock when it has them.

    Pinning the top-level packages keeps the layer on the versions the tests ran against
    (pydantic pins pydantic-core exactly, so the compiled part follows).
    """
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    locked = locked_versions(uv_lock) if uv_lock is not None else {}
    pinned: list[str] = []
    for spec in project.get("dependencies", []):
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        if name in RUNTIME_PROVIDED:
            continue
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        version = locked.get(name)
        pinned.append(f"{req.name}{extras}=={version}" if version else str(req))
    return tuple(sorted(pinned))


def _package_files(package_dir: Path) -> list[Path]:
    files: list[Path] = []
    for path in sorted(package_dir.rglob("*")):
        relative = path.relative_to(package_dir)
        if any(part in _PACKAGE_EXCLUDES for part in relative.parts) or path.suffix == ".pyc":
            continue
        if path.is_file():
            files.append(path)
    return files


UV_ENV = "LLMOPS_UV"


def uv_command() -> list[str]:
    """The uv executable: `$LLMOPS_UV` if set, else the one installed with this interpreter's `uv`
    package (the project venv's), else `uv` on PATH."""
    override = os.environ.get(UV_ENV)
    if override:
        return shlex.split(override)
    try:
        from uv import find_uv_bin  # noqa: PLC0415 - optional: only the dev environment has it

        return [find_uv_bin()]
    except (ImportError, FileNotFoundError):
        pass
    found = shutil.which("uv")
    if found:
        return [found]
    raise LayerBuildError(
        f"no uv found to build the Lambda layer: run 'make bootstrap' (it installs uv into .venv), "
        f"'python3 -m pip install uv', or set {UV_ENV}; or synth with -c bundleDependencies=false "
        "for a template-only check"
    )


def _prune_non_layer_files(site_dir: Path) -> None:
    """Drops what the runtime already provides (see RUNTIME_PROVIDED), console scripts and uv's lock."""
    for dist in distributions(path=[str(site_dir)]):
        if canonicalize_name(dist.metadata["Name"]) not in RUNTIME_PROVIDED:
            continue
        for record in dist.files or ():
            target = site_dir / record
            if target.is_file():
                target.unlink()
    for leftover in [p for p in site_dir.iterdir() if p.is_dir()]:
        if not any(f.is_file() for f in leftover.rglob("*")):
            shutil.rmtree(leftover)
    shutil.rmtree(site_dir / "bin", ignore_errors=True)
    (site_dir / ".lock").unlink(missing_ok=True)  # uv's lock on the target directory, not layer content


@dataclass(frozen=True, slots=True)
class LayerBuild:
    """Everything that determines the layer's content; `build_into` is deterministic in it."""

    package_dir: Path
    requirements: tuple[str, ...]
    cache_root: Path
    install_requirements: bool = True
    platform_args: tuple[str, ...] = field(default=LAMBDA_PLATFORM_ARGS)
    # An executable put at the layer's root (/opt/<name> in the function): the gateway's
    # AWS_LAMBDA_EXEC_WRAPPER, which starts our streaming runtime loop (llmops.lambda_runtime).
    exec_wrapper: Path | None = None
    # The interpreter that compiles the layer's bytecode (`runtime_python`); None ships source only.
    bytecode_python: Path | None = None

    def _bytecode_tag(self) -> str:
        # The version, not the path: the same bytes whichever 3.12.x or wherever it is installed.
        return f"bytecode:{RUNTIME_PYTHON_VERSION}" if self.bytecode_python is not None else "source-only"

    def dependencies_hash(self) -> str:
        digest = hashlib.sha256()
        for part in (_BUILD_FORMAT, self._bytecode_tag(), *self.platform_args, *self.requirements):
            digest.update(part.encode() + b"\0")
        return digest.hexdigest()

    def input_hash(self) -> str:
        """Changes whenever the layer's content would: the CDK asset hash."""
        digest = hashlib.sha256()
        digest.update(f"{self.install_requirements}:{self._bytecode_tag()}:{self.dependencies_hash()}".encode())
        if self.exec_wrapper is not None:
            digest.update(b"exec-wrapper\0" + hashlib.sha256(self.exec_wrapper.read_bytes()).digest())
        for path in _package_files(self.package_dir):
            digest.update(path.relative_to(self.package_dir).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()

    def build_into(self, output_dir: Path) -> Path | None:
        """Fill `output_dir` with `python/...`; returns the dependency cache entry used, if any."""
        site_dir = output_dir / "python"
        site_dir.mkdir(parents=True, exist_ok=True)
        dependencies: Path | None = None
        if self.install_requirements and self.requirements:
            dependencies = self._cached_dependencies()
            shutil.copytree(dependencies, site_dir, dirs_exist_ok=True)
        # The package is copied fresh every time: it is small and changes with every edit.
        self._copy_package(site_dir / self.package_dir.name)
        if self.bytecode_python is not None:
            # The dependencies were compiled into their cache entry; only the package is new.
            compile_bytecode(self.bytecode_python, site_dir / self.package_dir.name, site_dir)
        if self.exec_wrapper is not None:
            wrapper = output_dir / self.exec_wrapper.name
            shutil.copyfile(self.exec_wrapper, wrapper)
            wrapper.chmod(0o755)  # Lambda refuses a wrapper it cannot execute; the asset zip keeps the mode
        return dependencies

    def _cached_dependencies(self) -> Path:
        cached = self.cache_root / f"deps-{self.dependencies_hash()}"
        if cached.is_dir():
            return cached
        self.cache_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="building-", dir=self.cache_root))
        try:
            self._install(staging, self.requirements)
            _prune_non_layer_files(staging)
            if self.bytecode_python is not None:
                compile_bytecode(self.bytecode_python, staging, staging)
            try:
                staging.rename(cached)
            except OSError:
                # Another synth (e.g. a parallel test worker) finished the same entry first.
                if not cached.is_dir():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._evict_old_entries(keep=cached)
        return cached

    def _evict_old_entries(self, keep: Path) -> None:
        entries = sorted(
            (p for p in self.cache_root.glob("deps-*") if p.is_dir()),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for stale in entries[_CACHE_ENTRIES_KEPT:]:
            if stale != keep:
                shutil.rmtree(stale, ignore_errors=True)

    def _install(self, site_dir: Path, requirements: Iterable[str]) -> None:
        command = [
            *uv_command(),
            "pip",
            "install",
            # The project's pyproject.toml describes the dev environment, not the layer: ignore it.
            "--no-config",
            "--quiet",
            *self.platform_args,
            "--target",
            str(site_dir),
            *requirements,
        ]
        # argv built from fixed flags and this repository's own pyproject.toml / uv.lock.
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)  # noqa: S603
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip()[-2000:]
            raise LayerBuildError(
                "uv could not build the Lambda layer (is the package registry reachable?). "
                "Synth with -c bundleDependencies=false to check templates offline.\n"
                f"command: {' '.join(command)}\n{detail}"
            )

    def _copy_package(self, destination: Path) -> None:
        for source in _package_files(self.package_dir):
            target = destination / source.relative_to(self.package_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
