"""The Powertools environment of a Lambda function: defined once, for CDK, the local stack and the benchmarks.

CDK sets it on every function (`infra.capabilities.python_function`); the local stack and the
benchmarks set the same variables in the processes that run the handlers, so a handler behaves
alike in all three. What differs on a workstation is named by a parameter: the log level, and
switching off tracing (there is no X-Ray daemon) and EMF output (it would bury the terminal).
"""

from __future__ import annotations

from enum import StrEnum

from llmops.observability.metrics import NAMESPACE

__all__ = ["PowertoolsVar", "powertools_environment"]


class PowertoolsVar(StrEnum):
    SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
    METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
    LOG_LEVEL = "POWERTOOLS_LOG_LEVEL"
    LOGGER_LOG_EVENT = "POWERTOOLS_LOGGER_LOG_EVENT"
    TRACER_CAPTURE_RESPONSE = "POWERTOOLS_TRACER_CAPTURE_RESPONSE"
    TRACER_CAPTURE_ERROR = "POWERTOOLS_TRACER_CAPTURE_ERROR"
    TRACE_DISABLED = "POWERTOOLS_TRACE_DISABLED"
    METRICS_DISABLED = "POWERTOOLS_METRICS_DISABLED"


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
    }
    if not tracing:
        environment[PowertoolsVar.TRACE_DISABLED.value] = "true"
    if not emf_output:
        environment[PowertoolsVar.METRICS_DISABLED.value] = "true"
    return environment
