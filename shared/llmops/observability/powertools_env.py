"""The Powertools environment of a Lambda function: defined once, for CDK, the local stack and the benchmarks.

CDK sets it on every function (`infra.capabilities.python_function`); the local stack and the
benchmarks set the same variables in the processes that run the handlers, so a handler behaves
alike in all three. What differs on a workstation is named by a parameter: the log level, and
switching off tracing (there is no X-Ray daemon) and EMF output (it would bury the terminal).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum

from llmops.observability.metrics import NAMESPACE

__all__ = ["PowertoolsVar", "powertools_environment", "tracing_enabled"]


class PowertoolsVar(StrEnum):
    SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
    METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
    LOG_LEVEL = "POWERTOOLS_LOG_LEVEL"
    LOGGER_LOG_EVENT = "POWERTOOLS_LOGGER_LOG_EVENT"
    TRACER_CAPTURE_RESPONSE = "POWERTOOLS_TRACER_CAPTURE_RESPONSE"
    TRACER_CAPTURE_ERROR = "POWERTOOLS_TRACER_CAPTURE_ERROR"
    TRACE_DISABLED = "POWERTOOLS_TRACE_DISABLED"
    METRICS_DISABLED = "POWERTOOLS_METRICS_DISABLED"
    # Not Powertools', but set alike on every function: pydantic otherwise scans every installed
    # distribution's entry points for plugins on its first model (tens of ms of cold init); a
    # Lambda bundle has no pydantic plugins.
    PYDANTIC_DISABLE_PLUGINS = "PYDANTIC_DISABLE_PLUGINS"


_TRUTHY = frozenset({"1", "true", "yes", "on", "y", "t"})
# Set by Lambda in a function's environment; SAM's and Chalice's local emulators set the others.
_LAMBDA_TASK_ROOT = "LAMBDA_TASK_ROOT"
_LOCAL_EMULATORS = ("AWS_SAM_LOCAL", "AWS_CHALICE_CLI_MODE")


def powertools_environment(
    service: str, *, log_level: str = "INFO", tracing: bool = True, emf_output: bool = True
) -> dict[str, str]:
    """The variables for one function. `service` is its logger's service and the traces' name (the
    metrics' `service` dimension is fixed by the catalogue instead); the keyword arguments are the
    workstation switches, and at their defaults nothing is set beyond what Lambda needs."""
    environment = {
        PowertoolsVar.SERVICE_NAME.value: service,
        PowertoolsVar.METRICS_NAMESPACE.value: NAMESPACE,
        PowertoolsVar.LOG_LEVEL.value: log_level,
        # Events, responses and exception messages can carry prompt or completion text (pydantic
        # errors echo their input); logs and traces must never hold either.
        PowertoolsVar.LOGGER_LOG_EVENT.value: "false",
        PowertoolsVar.TRACER_CAPTURE_RESPONSE.value: "false",
        PowertoolsVar.TRACER_CAPTURE_ERROR.value: "false",
        PowertoolsVar.PYDANTIC_DISABLE_PLUGINS.value: "__all__",
    }
    if not tracing:
        environment[PowertoolsVar.TRACE_DISABLED.value] = "true"
    if not emf_output:
        environment[PowertoolsVar.METRICS_DISABLED.value] = "true"
    return environment


def tracing_enabled(env: Mapping[str, str] = os.environ) -> bool:
    """Whether Powertools' Tracer would trace here: in Lambda, not under a local emulator, and not
    switched off with `POWERTOOLS_TRACE_DISABLED` (the same rule as `Tracer` itself).

    Decided without building a `Tracer`: building one imports the X-Ray SDK (about 100 ms of cold
    start) even when it then does nothing, so a function builds it only when this says so.
    """
    if env.get(PowertoolsVar.TRACE_DISABLED.value, "false").strip().lower() in _TRUTHY:
        return False
    return bool(env.get(_LAMBDA_TASK_ROOT)) and not any(env.get(name) for name in _LOCAL_EMULATORS)
