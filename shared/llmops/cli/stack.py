"""Where CLI commands act: the local stack (via its state dir) or a deployed CloudFormation stack.

Every admin command takes `--state-dir` or `--stack`; this module turns either into table names and
boto3 clients so commands never care which one they talk to.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from llmops.config.env import Settings
from llmops.config.tables import TABLES
from llmops.local.naming import LOCAL_REGION, LOCAL_STATE_FILE, local_table_name

__all__ = ["StackConnection", "connect"]


@dataclass(slots=True)
class StackConnection:
    settings: Settings
    region: str
    endpoint_url: str | None = None  # set for the local stack only
    local_state: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if self.endpoint_url is None:
            return boto3.client(service, region_name=self.region)  # type: ignore[call-overload]
        return boto3.client(  # type: ignore[call-overload]
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto accepts any credentials
        )


def _local(state_dir: Path) -> StackConnection:
    state_file = state_dir / LOCAL_STATE_FILE
    if not state_file.exists():
        raise FileNotFoundError(
            f"No local stack state at {state_file}. Start one with `llmops serve --state-dir {state_dir}`."
        )
    state = json.loads(state_file.read_text())
    names = {spec.env_var.removeprefix("LLMOPS_").lower(): local_table_name(spec.logical_name) for spec in TABLES}
    return StackConnection(
        settings=Settings.model_validate(names),
        region=LOCAL_REGION,
        endpoint_url=str(state["aws_endpoint_url"]),
        local_state=state,
    )


def _deployed(stack_name: str, region: str | None) -> StackConnection:
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or LOCAL_REGION
    cfn = boto3.client("cloudformation", region_name=region)
    stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    # The CDK stack outputs each table as `<LogicalName>TableName` (infra/stacks/gateway_stack.py).
    names: dict[str, str] = {
        spec.env_var.removeprefix("LLMOPS_").lower(): outputs[f"{spec.logical_name}TableName"]
        for spec in TABLES
        if f"{spec.logical_name}TableName" in outputs
    }
    if "AuditDeadLetterQueueUrl" in outputs:
        names["audit_dlq_url"] = outputs["AuditDeadLetterQueueUrl"]
    if "KeyPepperSecretArn" in outputs:
        names["key_pepper_secret_arn"] = outputs["KeyPepperSecretArn"]
    return StackConnection(settings=Settings.model_validate(names), region=region)


def connect(state_dir: Path | None = None, stack: str | None = None, region: str | None = None) -> StackConnection:
    if stack:
        return _deployed(stack, region)
    return _local(state_dir or Path(".llmops"))
