"""`python -X importtime` output, summed into the packages that cost a cold init its time.

Pure: the cold-start benchmark runs the child and hands its stderr here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

__all__ = ["ImportCost", "ModuleImport", "package_costs", "parse_importtime"]

_PREFIX = "import time:"


@dataclass(frozen=True, slots=True)
class ModuleImport:
    name: str
    self_us: int
    cumulative_us: int
    depth: int  # 1 for what the script imported itself, +1 per level of nesting


@dataclass(frozen=True, slots=True)
class ImportCost:
    package: str
    self_ms: float  # the summed self time of its modules: what the package costs, wherever imported
    modules: int


def parse_importtime(stderr: str) -> list[ModuleImport]:
    """The lines `-X importtime` writes (`import time: self | cumulative | <indent>name`), in order."""
    imports: list[ModuleImport] = []
    for line in stderr.splitlines():
        if not line.startswith(_PREFIX):
            continue
        fields = line[len(_PREFIX) :].split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue  # the header line
        name = fields[2].rstrip()
        indent = len(name) - len(name.lstrip(" "))
        imports.append(ModuleImport(name.strip(), int(fields[0]), int(fields[1]), depth=indent // 2 + 1))
    return imports


def _package_of(module: str, split_llmops: int) -> str:
    parts = module.split(".")
    # Our own package is one tree: name its subpackages (llmops.domain.guard) instead.
    keep = split_llmops if parts[0] == "llmops" else 1
    return ".".join(parts[:keep])


def package_costs(imports: list[ModuleImport], *, llmops_depth: int = 3) -> list[ImportCost]:
    """Self time summed per top-level package (per `llmops.<a>.<b>` for ours), dearest first."""
    self_us: dict[str, int] = defaultdict(int)
    modules: dict[str, int] = defaultdict(int)
    for entry in imports:
        package = _package_of(entry.name, llmops_depth)
        self_us[package] += entry.self_us
        modules[package] += 1
    costs = [ImportCost(name, us / 1000, modules[name]) for name, us in self_us.items()]
    return sorted(costs, key=lambda cost: (-cost.self_ms, cost.package))
