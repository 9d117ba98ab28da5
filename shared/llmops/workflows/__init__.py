"""Step Functions workflows: the ASL files and the inputs they expect.

The ASL files are package data so CDK (`DefinitionBody.from_string` plus substitutions), the local
stack and the tests all load the very same definitions. Resources bound at deploy time (table
names, topic ARNs, buckets) are `${Placeholder}`s in the file; anything chosen per run comes in the
execution input (see `canary_input` and `retraining_input`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

__all__ = ["APPROVAL", "CANARY", "RETRAINING", "asl_path", "load_definition", "placeholders"]

CANARY = "canary"
RETRAINING = "retraining"
# Model package approved -> canary started (the EventBridge rule's target; see approval.asl.json).
APPROVAL = "approval"

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z][A-Za-z0-9_]*)\}")


def asl_path(name: str) -> Path:
    """Path of the ASL file for workflow `name` (`canary`, `retraining` or `approval`)."""
    path = Path(str(resources.files(__package__).joinpath(f"{name}.asl.json")))
    if not path.is_file():
        raise FileNotFoundError(f"no workflow definition named {name!r} at {path}")
    return path


def placeholders(name: str) -> frozenset[str]:
    """The `${Placeholder}` names the definition expects; CDK must substitute every one."""
    return frozenset(_PLACEHOLDER.findall(asl_path(name).read_text()))


def load_definition(name: str, substitutions: Mapping[str, str]) -> str:
    """The definition with every `${Placeholder}` replaced, as CDK's `substitutions` would.

    Missing substitutions raise rather than leave a literal `${...}` for Step Functions to reject
    at deploy time (or, worse, accept as a resource name).
    """
    text = asl_path(name).read_text()
    missing = set(_PLACEHOLDER.findall(text)) - set(substitutions)
    if missing:
        raise KeyError(f"{name}.asl.json needs substitutions for: {', '.join(sorted(missing))}")
    return _PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], text)
