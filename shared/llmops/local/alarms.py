"""CloudWatch alarms for the local stack: created from the alarm catalogue, evaluated from EMF.

moto stores alarms but never evaluates them. `LocalAlarms` does what CloudWatch does on AWS:

- creates, in moto, every metric alarm over gateway metrics that CDK deploys
  (`llmops.observability.alarm_catalogue.catalogue_alarms`: the SLO burn-rate windows, latency and
  TTFT per alias, gateway rates, cost, the canary gates per target and the retraining triggers per
  retrainable alias), with the same names, thresholds, periods, statistics, M of N and missing-data
  treatment, and the retraining triggers' EventBridge rules with the same pattern and run input
  (not the two availability composites: moto has no composite alarms);
- evaluates them from the EMF records the handlers write (`llmops.local.metric_store`) with
  CloudWatch's rules (`llmops.local.alarm_evaluation`) every `interval_s`;
- on a change, sets the state in moto (`SetAlarmState`, so `DescribeAlarms`, the canary state
  machine's gates and `llmops alarms` see it) and publishes the "CloudWatch Alarm State Change"
  event through `LocalEventBus`, so the rules fire locally as they do in AWS.

Short periods for a workstation: `period_s` replaces every alarm's period (e.g. 2 s instead of
1 minute, 5 minutes, 1 hour or 1 day), keeping each alarm's M of N. Without it the deployed periods
apply and a canary gate needs minutes of traffic to fire, as in AWS.

Thresholds come from CDK context, as in CDK: `cdk.json`'s `context` overlaid with the `--context`
values `llmops serve` was given.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from llmops.local.alarm_evaluation import (
    AlarmState,
    evaluate,
    evaluation_range,
    evaluation_times,
    expression_values,
    timestamp,
)
from llmops.local.event_bus import LocalEventBus, alarm_state_change_event
from llmops.local.metric_store import MetricStore
from llmops.observability.alarm_catalogue import (
    AlarmDefinition,
    AlarmSettings,
    RetrainingTriggerSettings,
    alarm_state_change_pattern,
    catalogue_alarms,
    metric_alarm_request,
)
from llmops.workflows.retraining_input import retrainable_aliases, retraining_trigger_input

__all__ = [
    "CDK_CONTEXT_FILE",
    "LOCAL_INFERENCE_IMAGE",
    "LOCAL_STAGE",
    "AlarmContext",
    "LocalAlarms",
    "load_alarm_context",
]

log = logging.getLogger("llmops.local")
ClientFactory = Callable[[str], Any]
Change = tuple[str, AlarmState, AlarmState]  # alarm name, old state, new state

LOCAL_STAGE = "local"  # alarm names are llmops-local-<runbook>[-<qualifier>]
CDK_CONTEXT_FILE = Path(__file__).resolve().parents[3] / "cdk.json"
# The retraining triggers start runs locally too (CDK only with `retrainingInferenceImage` set): the
# image is registered with the model package in moto, never pulled.
LOCAL_INFERENCE_IMAGE = "local/emulated-inference:latest"
_MIN_INTERVAL_S = 0.2
_MAX_INTERVAL_S = 10.0


@dataclass(frozen=True, slots=True)
class AlarmContext:
    """CDK context as the alarms read it."""

    values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> AlarmSettings:
        return AlarmSettings.model_validate(dict(self.values))

    @property
    def triggers(self) -> RetrainingTriggerSettings:
        return RetrainingTriggerSettings.model_validate(dict(self.values))

    @property
    def inference_image(self) -> str:
        return str(self.values.get("retrainingInferenceImage") or LOCAL_INFERENCE_IMAGE)


def _parse(value: str) -> Any:
    """A `-c key=value` value: JSON when it parses (numbers, booleans), else the string, as CDK does."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def load_alarm_context(overrides: Mapping[str, str] | None = None, path: Path = CDK_CONTEXT_FILE) -> AlarmContext:
    """cdk.json's context (when the file is there) with `overrides` on top; invalid values are
    refused naming the key, as `cdk synth` does."""
    values: dict[str, Any] = {}
    if path.is_file():
        values.update(json.loads(path.read_text()).get("context", {}))
    values.update({key: _parse(value) for key, value in (overrides or {}).items()})
    context = AlarmContext(values)
    try:
        context.settings  # noqa: B018 - validates
        context.triggers  # noqa: B018
    except ValueError as exc:
        raise ValueError(f"invalid alarm context: {exc}") from None
    return context


class LocalAlarms:
    def __init__(
        self,
        client_factory: ClientFactory,
        store: MetricStore,
        routes_document: Mapping[str, Any],
        *,
        retraining_arn: str | None,
        context: AlarmContext | None = None,
        period_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._factory = client_factory
        self._cloudwatch = client_factory("cloudwatch")
        self._store = store
        self._context = context or AlarmContext()
        self._period_s = period_s
        self._clock = clock
        self._retraining_arn = retraining_arn
        self._retrainable = retrainable_aliases(routes_document)
        # moto has no composite alarms (PutCompositeAlarm is not implemented): the availability
        # composites are AWS-only; their window alarms are created and evaluated here.
        self.alarms, _composites = catalogue_alarms(
            LOCAL_STAGE,
            routes_document,
            self._context.settings,
            retrainable=self._retrainable,
            triggers=self._context.triggers,
            retraining_starts_runs=retraining_arn is not None,
        )
        self.bus = LocalEventBus(client_factory)
        self._horizon_s = max(self.period_of(d) * (evaluation_range(d) + 1) for d in self.alarms)
        self._described: dict[str, dict[str, Any]] = {}
        self._states: dict[str, AlarmState] = {}
        self._last: dict[str, dict[str, str]] = {}  # the state each alarm's next event names as previous
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def interval_s(self) -> float:
        shortest = self._period_s or min(d.period_s for d in self.alarms)
        return max(_MIN_INTERVAL_S, min(_MAX_INTERVAL_S, shortest / 4))

    def period_of(self, definition: AlarmDefinition) -> float:
        return self._period_s or definition.period_s

    def provision(self) -> dict[str, str]:
        """Creates the alarms and the trigger rules in moto; returns alarm name -> ARN."""
        for definition in self.alarms:
            # The stored alarm keeps the deployed periods (CloudWatch accepts 10, 30 or multiples of
            # 60 s); a short local period is the evaluator's alone (`period_of`).
            self._cloudwatch.put_metric_alarm(**metric_alarm_request(definition))
            # CloudWatch creates alarms in INSUFFICIENT_DATA (moto in OK); the first evaluation moves them.
            self._cloudwatch.set_alarm_state(
                AlarmName=definition.name,
                StateValue="INSUFFICIENT_DATA",
                StateReason="Unchecked: Initial alarm creation",
            )
        self._refresh_described()
        self._add_trigger_rules()
        return {name: str(alarm["AlarmArn"]) for name, alarm in self._described.items()}

    def _refresh_described(self) -> None:
        names = [d.name for d in self.alarms]
        for start in range(0, len(names), 100):
            page = self._cloudwatch.describe_alarms(AlarmNames=names[start : start + 100])
            for alarm in page.get("MetricAlarms", []):
                self._described[str(alarm["AlarmName"])] = alarm
                self._states[str(alarm["AlarmName"])] = AlarmState(alarm.get("StateValue", "INSUFFICIENT_DATA"))

    def _add_trigger_rules(self) -> None:
        if self._retraining_arn is None:
            return
        events = self._factory("events")
        for definition in self.alarms:
            if "retraining-trigger" not in definition.tags or definition.qualifier is None:
                continue
            trigger: Literal["drift", "feedback"] = "drift" if "drift" in definition.tags else "feedback"
            alias = definition.qualifier.removeprefix(f"{trigger}-")
            document = retraining_trigger_input(trigger, alias, self._retrainable[alias], self._context.inference_image)
            pattern = alarm_state_change_pattern(str(self._described[definition.name]["AlarmArn"]))
            rule = f"{definition.name}-starts"[:64]
            events.put_rule(
                Name=rule,
                EventPattern=json.dumps(pattern),
                State="ENABLED",
                Description=f"{definition.name} in ALARM: start a retraining run for {alias}.",
            )
            events.put_targets(
                Rule=rule, Targets=[{"Id": "retraining", "Arn": self._retraining_arn, "Input": json.dumps(document)}]
            )

    def evaluate_once(self) -> list[Change]:
        """Reads new EMF records and evaluates every alarm; returns the changes (name, old, new)."""
        self._store.refresh()
        now = self._clock()
        # A long-running stack keeps only what the longest evaluation range reads (deployed: 3 days).
        self._store.prune(now - self._horizon_s)
        changes: list[Change] = []
        for definition in self.alarms:
            period = self.period_of(definition)
            periods = evaluation_times(now, period, evaluation_range(definition))
            values = expression_values(self._store, definition.expression, periods)
            current = self._states.get(definition.name, AlarmState.INSUFFICIENT_DATA)
            verdict = evaluate(
                values,
                threshold=definition.threshold,
                comparison=definition.comparison,
                evaluation_periods=definition.evaluation_periods,
                datapoints_to_alarm=definition.datapoints_to_alarm,
                treat_missing=definition.treat_missing,
                current=current,
            )
            if verdict.state is not current:
                data = {"version": "1.0", "evaluatedDatapoints": verdict.evaluated, "period": period}
                self._change(definition.name, current, verdict.state, verdict.reason, data, now)
                changes.append((definition.name, current, verdict.state))
        return changes

    def _change(
        self, name: str, previous: AlarmState, state: AlarmState, reason: str, data: dict[str, Any], now: float
    ) -> None:
        self._cloudwatch.set_alarm_state(
            AlarmName=name, StateValue=state.value, StateReason=reason[:1023], StateReasonData=json.dumps(data)
        )
        alarm = self._described[name]
        before = self._last.get(name) or {"value": previous.value, "reason": "", "timestamp": timestamp(now)}
        after = {"value": state.value, "reason": reason, "reasonData": json.dumps(data), "timestamp": timestamp(now)}
        self._last[name] = after
        self._states[name] = state
        event = alarm_state_change_event(alarm, previous=before, state=after, time_iso=timestamp(now))
        reached = self.bus.publish(event)
        targets = f" ({reached} targets)" if reached else ""
        level = logging.WARNING if state is AlarmState.ALARM or reached else logging.INFO
        log.log(level, "alarm %s: %s -> %s%s", name, previous.value, state.value, targets)

    def start(self) -> None:
        def run() -> None:
            while not self._stopping.wait(self.interval_s):
                try:
                    self.evaluate_once()
                except Exception as exc:  # the evaluator outlives a failed round, as CloudWatch does
                    log.warning("alarm evaluation failed: %s: %s", type(exc).__name__, exc)

        self._thread = threading.Thread(target=run, name="alarm-evaluator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
