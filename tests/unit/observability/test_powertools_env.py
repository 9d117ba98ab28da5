"""The Powertools environment every function gets, and the workstation switches."""

from __future__ import annotations

from llmops.observability.metrics import NAMESPACE
from llmops.observability.powertools_env import PowertoolsVar, powertools_environment, tracing_enabled


def test_a_deployed_function_logs_at_info_traced_and_never_captures_text() -> None:
    assert powertools_environment("gateway") == {
        "POWERTOOLS_SERVICE_NAME": "gateway",
        "POWERTOOLS_METRICS_NAMESPACE": NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_LOGGER_LOG_EVENT": "false",
        "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
        "POWERTOOLS_TRACER_CAPTURE_ERROR": "false",
        "PYDANTIC_DISABLE_PLUGINS": "__all__",
    }


def test_the_workstation_switches_only_add_or_change_their_own_variables() -> None:
    deployed = powertools_environment("gateway")
    local = powertools_environment("gateway", log_level="WARNING", tracing=False, emf_output=False)
    assert local[PowertoolsVar.TRACE_DISABLED] == "true"
    assert local[PowertoolsVar.METRICS_DISABLED] == "true"
    assert local[PowertoolsVar.LOG_LEVEL] == "WARNING"
    changed = {k for k in local if deployed.get(k) != local[k]}
    assert changed == {PowertoolsVar.TRACE_DISABLED, PowertoolsVar.METRICS_DISABLED, PowertoolsVar.LOG_LEVEL}


def test_tracing_is_enabled_only_in_lambda_and_not_when_switched_off() -> None:
    in_lambda = {"LAMBDA_TASK_ROOT": "/var/task"}
    assert tracing_enabled(in_lambda)
    assert not tracing_enabled({})  # a workstation: no X-Ray daemon
    assert not tracing_enabled({**in_lambda, "POWERTOOLS_TRACE_DISABLED": "true"})
    assert not tracing_enabled({**in_lambda, "AWS_SAM_LOCAL": "true"})
    assert tracing_enabled({**in_lambda, "POWERTOOLS_TRACE_DISABLED": "false"})
