"""`llmops serve`: moto, the model runtime emulators and the front door, wired like the cloud stack.

Everything a deployed stack gets from CDK (tables, env vars, seeded routes, a dev tenant and key)
comes from the same definitions here, so the handlers cannot tell the difference.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmops.adapters import aws_clients
from llmops.adapters.dynamodb.provisioning import create_tables
from llmops.adapters.dynamodb.route_items import table_items
from llmops.adapters.dynamodb.route_source import DEFAULT_ROUTES_FILE, load_route_document
from llmops.config.env import EnvVar
from llmops.config.tables import TABLES
from llmops.config.timeouts import GATEWAY_TIMEOUT_S, RESERVATION_SWEEP_SCHEDULE_MINUTES
from llmops.domain.keys import generate_api_key
from llmops.domain.routing import RouteTable
from llmops.local.alarms import LOCAL_STAGE, LocalAlarms, load_alarm_context
from llmops.local.aws_emulation import MotoService
from llmops.local.emulators import BedrockRuntimeEmulator, OpenAICompatibleForwarder, SageMakerRuntimeEmulator
from llmops.local.emulators.guardrail_services import GuardrailServicesEmulator
from llmops.local.front_door import FrontDoor
from llmops.local.front_door_workers import FrontDoorWorkers
from llmops.local.metric_store import EMF_ECHO_VAR, EMF_FILE_VAR, MetricStore, emf_file, install_emf_capture
from llmops.local.naming import LOCAL_REGION, LOCAL_STATE_FILE, local_resource_name, local_table_name
from llmops.local.workflows import OUTPUT_RETRAINING_ARN, provision_workflows
from llmops.local.wsgi_server import LoopbackServer, ensure_port_free
from llmops.observability.metrics import GATEWAY_SERVICE
from llmops.observability.powertools_env import PowertoolsVar, powertools_environment

__all__ = ["DEV_TENANT", "LocalStack", "LocalStackOptions"]

DEV_TENANT = "dev"
log = logging.getLogger("llmops.local")


@dataclass(slots=True)
class LocalStackOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    state_dir: Path = Path(".llmops")
    routes_file: Path = DEFAULT_ROUTES_FILE
    forward_url: str | None = None  # an OpenAI-compatible server the emulators forward to
    config_ttl_s: float = 2.0
    authorizer_cache_ttl_s: float = 60.0
    workers: int = 1  # front-door processes, each one "Lambda container"
    gateway_timeout_s: float = GATEWAY_TIMEOUT_S  # the gateway function's timeout, as deployed
    # How often expired quota reservations are released, as the deployed EventBridge rule does.
    sweep_interval_s: float = RESERVATION_SWEEP_SCHEDULE_MINUTES * 60.0
    extra_env: dict[str, str] = field(default_factory=dict)
    emit_metrics: bool = False  # echo the EMF lines to stdout as well
    # Every alarm's evaluation period, in seconds, instead of the deployed ones (None: as deployed).
    alarm_period_s: float | None = None
    # CDK context values (`-c key=value`) over cdk.json's, for the alarms' thresholds.
    context: dict[str, str] = field(default_factory=dict)


def local_environment(
    options: LocalStackOptions, moto_url: str, bedrock_url: str, sagemaker_url: str
) -> dict[str, str]:
    """The environment the front door runs the handlers in: what CDK sets on the functions, pointed at
    moto and the emulators."""
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_REGION": LOCAL_REGION,
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": bedrock_url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": sagemaker_url,
        "AWS_ENDPOINT_URL_COMPREHEND": bedrock_url,
        # The gateway function's Powertools settings, with the workstation switch: no X-Ray daemon
        # here. EMF lines are written as in Lambda and go to the local metric store, which the alarm
        # evaluator reads (llmops.local.metric_store); the terminal sees them with --emit-metrics.
        **powertools_environment(
            GATEWAY_SERVICE, log_level=os.environ.get(PowertoolsVar.LOG_LEVEL, "WARNING"), tracing=False
        ),
        EMF_FILE_VAR: str(emf_file(options.state_dir).resolve()),
        EMF_ECHO_VAR: "1" if options.emit_metrics else "0",
        EnvVar.STAGE: "local",
        EnvVar.CONFIG_TTL_S: str(options.config_ttl_s),
        EnvVar.KEY_PEPPER: secrets.token_hex(16),
        # A timeout fault in the emulators must surface as a timeout, not a minute-long hang.
        EnvVar.PROVIDER_READ_TIMEOUT_S: "5",
        EnvVar.PROVIDER_CONNECT_TIMEOUT_S: "1",
    }
    env.update({spec.env_var: local_table_name(spec.logical_name) for spec in TABLES})
    if options.alarm_period_s is not None:
        # Time runs faster for the alarms, so for the breaker too: as deployed, a target it skips is
        # probed twice per 1-minute gate period, and a broken canary keeps failing in every period.
        env[EnvVar.BREAKER_COOLDOWN_S] = str(options.alarm_period_s / 2)
    env.update(options.extra_env)
    return env


def _local_client(service: str) -> Any:
    """A client for moto; call only after `local_environment` has pointed the AWS endpoints at it."""
    return aws_clients.client(service, connect_timeout_s=2, read_timeout_s=10, max_attempts=3)


class LocalStack:
    def __init__(self, options: LocalStackOptions) -> None:
        self.options = options
        table = RouteTable.from_document(load_route_document(options.routes_file))
        forwarder = OpenAICompatibleForwarder(options.forward_url) if options.forward_url else None
        self._moto = MotoService()
        # One server answers Bedrock Runtime (Converse, ApplyGuardrail) and Comprehend's
        # DetectPiiEntities, so the pluggable guard detectors work locally too.
        self._bedrock = LoopbackServer(
            GuardrailServicesEmulator(fallback=BedrockRuntimeEmulator.from_route_table(table, forwarder=forwarder))
        )
        self._sagemaker = LoopbackServer(SageMakerRuntimeEmulator.from_route_table(table, forwarder=forwarder))
        self._front: LoopbackServer | None = None
        self._workers: FrontDoorWorkers | None = None
        self._stopping = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._alarms: LocalAlarms | None = None
        self._stdout = sys.stdout
        self.state: dict[str, Any] = {}

    def start(self) -> dict[str, Any]:
        ensure_port_free(self.options.host, self.options.port)  # before anything starts: nothing to undo
        self._moto.start()
        self._bedrock.start()
        self._sagemaker.start()
        os.environ.update(local_environment(self.options, self._moto.url, self._bedrock.url, self._sagemaker.url))
        self._provision()
        os.environ[EnvVar.AUDIT_DLQ_URL] = self._create_audit_dead_letter_queue()
        workflows = provision_workflows(_local_client, os.environ, load_route_document(self.options.routes_file))
        api_key = self._seed_dev_key()
        self._start_sweeper()
        self._start_alarms(workflows[OUTPUT_RETRAINING_ARN])
        front = FrontDoor(
            authorizer_cache_ttl_s=self.options.authorizer_cache_ttl_s, gateway_timeout_s=self.options.gateway_timeout_s
        )
        many = self.options.workers > 1
        self._front = LoopbackServer(front, host=self.options.host, port=self.options.port, reuse_port=many)
        self._front.start()
        if many:
            # The environment above is inherited, so every worker talks to the same moto and emulators.
            self._workers = FrontDoorWorkers(
                self.options.host,
                self._front.port,
                self.options.workers - 1,
                self.options.authorizer_cache_ttl_s,
                self.options.gateway_timeout_s,
            )
            self._workers.start()
        self.state = {
            "base_url": f"{self._front.url}/v1",
            "api_key": api_key,
            "tenant": DEV_TENANT,
            "aws_endpoint_url": self._moto.url,
            "bedrock_runtime_url": self._bedrock.url,
            "sagemaker_runtime_url": self._sagemaker.url,
            "pid": os.getpid(),
            # The admin CLI needs these to hash new keys and drain the audit DLQ of this stack.
            "key_pepper": os.environ[EnvVar.KEY_PEPPER],
            "audit_dlq_url": os.environ[EnvVar.AUDIT_DLQ_URL],
            "workflows": workflows,
            # Evaluated from EMF by the local alarm evaluator (llmops.local.alarms).
            "alarms": {"stage": LOCAL_STAGE, "period_s": self.options.alarm_period_s},
        }
        self.options.state_dir.mkdir(parents=True, exist_ok=True)
        state_file = self.options.state_dir / LOCAL_STATE_FILE
        # Written whole, then renamed: whoever waits for the file (the CLI, tests) never reads it
        # half-written, and it is private from the start since it holds a working API key.
        partial_file = state_file.with_suffix(".json.partial")
        partial_file.write_text(json.dumps(self.state, indent=2))
        partial_file.chmod(0o600)
        os.replace(partial_file, state_file)
        return self.state

    def _provision(self) -> None:
        dynamodb = _local_client("dynamodb")
        create_tables(dynamodb, {spec.logical_name: local_table_name(spec.logical_name) for spec in TABLES})
        routes_table = local_table_name("Routes")
        for item in table_items(load_route_document(self.options.routes_file)):
            dynamodb.put_item(TableName=routes_table, Item=item)

    def _create_audit_dead_letter_queue(self) -> str:
        sqs = _local_client("sqs")
        return str(sqs.create_queue(QueueName=local_resource_name("audit-dlq"))["QueueUrl"])

    def _seed_dev_key(self) -> str:
        from llmops.application.wiring import build_key_store  # noqa: PLC0415
        from llmops.config.env import Settings  # noqa: PLC0415

        raw_key = generate_api_key()
        build_key_store(Settings.from_env()).seed(raw_key, DEV_TENANT, time.time())
        return raw_key

    def _start_sweeper(self) -> None:
        from llmops.application.reservation_sweeper import build_sweeper_ledger, sweep_expired_reservations  # noqa: PLC0415
        from llmops.config.env import Settings  # noqa: PLC0415

        ledger = build_sweeper_ledger(Settings.from_env())

        def run() -> None:
            while not self._stopping.wait(self.options.sweep_interval_s):
                try:
                    report = sweep_expired_reservations(ledger, time.time())
                except Exception as exc:  # the timer outlives a failed sweep, as the schedule does
                    log.warning("reservation sweep failed: %s", type(exc).__name__)
                    continue
                if report.released:
                    log.warning("released %d expired quota reservations", report.released)

        self._sweeper = threading.Thread(target=run, name="reservation-sweeper", daemon=True)
        self._sweeper.start()

    def _start_alarms(self, retraining_arn: str) -> None:
        """The catalogue's alarms in moto, evaluated from the handlers' EMF records (llmops.local.alarms)."""
        path = emf_file(self.options.state_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")  # a fresh stack starts with no metrics, as a fresh account does
        # This process hosts the first front-door container; the workers capture their own.
        install_emf_capture(path, echo=self.options.emit_metrics)
        self._alarms = LocalAlarms(
            _local_client,
            MetricStore(path),
            load_route_document(self.options.routes_file),
            retraining_arn=retraining_arn,
            context=load_alarm_context(self.options.context),
            period_s=self.options.alarm_period_s,
        )
        self._alarms.provision()
        self._alarms.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._alarms is not None:
            self._alarms.stop()
        if self._sweeper is not None:
            self._sweeper.join(timeout=10)
        if self._workers is not None:
            self._workers.stop()
        for server in (self._front, self._sagemaker, self._bedrock):
            if server is not None:
                server.stop()
        self._moto.stop()
        sys.stdout = self._stdout
        state_file = self.options.state_dir / LOCAL_STATE_FILE
        if state_file.exists():
            state_file.unlink()
