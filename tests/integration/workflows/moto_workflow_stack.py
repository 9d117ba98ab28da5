"""moto with its Step Functions interpreter on, provisioned like `llmops serve` does it (fixture in conftest).

The state machines are created by `provision_workflows` from the real ASL files; the Routes and
Prompts tables come from the shared table definitions, and Routes is seeded from routes.json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto import mock_aws

from llmops.adapters.dynamodb.prompt_store import DynamoPromptStore
from llmops.adapters.dynamodb.provisioning import create_tables
from llmops.adapters.dynamodb.route_items import table_items
from llmops.adapters.dynamodb.route_source import load_route_document
from llmops.adapters.stepfunctions_canary import AwsCanaryControlPlane
from llmops.config.env import EnvVar
from llmops.domain.prompts import LabelState, PromptDraft
from llmops.local.workflows import provision_workflows

REGION = "us-east-1"
ROUTES_TABLE = "llmops-test-Routes"
PROMPTS_TABLE = "llmops-test-Prompts"
GATES = ("llmops-candidate-error-rate", "llmops-candidate-p99-latency")


@dataclass
class WorkflowStack:
    outputs: dict[str, str]
    routes_table: str
    queue_url: str
    clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        # Creating a boto3 client costs ~0.2 s; the tests poll, so build each one once.
        if service not in self.clients:
            self.clients[service] = boto3.client(service, region_name=REGION)  # type: ignore[call-overload]
        return self.clients[service]

    def control_plane(self) -> AwsCanaryControlPlane:
        """What `llmops canary approve|abort` operates the canary through, over this stack's clients."""
        return AwsCanaryControlPlane(self.client("stepfunctions"), self.client("dynamodb"), self.client("sagemaker"))

    def run(self, workflow_output: str, document: Mapping[str, Any], name: str) -> str:
        sfn = self.client("stepfunctions")
        started = sfn.start_execution(
            stateMachineArn=self.outputs[workflow_output], name=name, input=json.dumps(document)
        )
        return str(started["executionArn"])

    def wait(self, execution_arn: str, timeout_s: float = 30.0) -> dict[str, Any]:
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout_s
        while True:
            described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING" or time.monotonic() > deadline:
                return described
            time.sleep(0.05)

    def wait_until(self, predicate: Any, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached in time")
            time.sleep(0.02)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return list(self.client("stepfunctions").get_execution_history(executionArn=execution_arn)["events"])

    def route_weights(self, alias: str) -> dict[str, float]:
        item = self.client("dynamodb").get_item(
            TableName=self.routes_table, Key={"pk": {"S": "route"}, "sk": {"S": alias}}, ConsistentRead=True
        )["Item"]
        return {target: float(value["N"]) for target, value in item["weights"]["M"].items()}

    def variant_weights(self, endpoint: str) -> dict[str, float]:
        described = self.client("sagemaker").describe_endpoint(EndpointName=endpoint)
        return {
            v["VariantName"]: float(v.get("CurrentWeight", v.get("InitialVariantWeight", 0.0)))
            for v in described["ProductionVariants"]
        }

    def notifications(self) -> list[dict[str, Any]]:
        sqs = self.client("sqs")
        messages: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return messages
            messages.extend(json.loads(m["Body"]) for m in batch)

    def prompts(self) -> DynamoPromptStore:
        return DynamoPromptStore(self.client("dynamodb"), PROMPTS_TABLE)

    def seed_prompt(self, prompt_id: str, label: str, versions: int, label_at: int) -> None:
        """`versions` versions of `prompt_id` and `label` pointing at version `label_at`."""
        store = self.prompts()
        for n in range(1, versions + 1):
            store.push(PromptDraft(prompt_id, f"Answer briefly ({n}): {{{{question}}}}", ("question",)), now=1.0)
        store.set_label(prompt_id, label, label_at, now=2.0, actor="seed")

    def prompt_label(self, prompt_id: str, label: str) -> LabelState:
        state = self.prompts().get_label(prompt_id, label)
        assert state is not None
        return state

    def reset(self) -> None:
        """Puts routes, variant weights, alarms and the on-call queue back to their seeded state."""
        dynamodb = self.client("dynamodb")
        for item in table_items(load_route_document()):
            dynamodb.put_item(TableName=self.routes_table, Item=item)
        for gate in GATES:
            self.set_alarm(gate, "OK", reason="reset")
        self.client("sagemaker").update_endpoint_weights_and_capacities(
            EndpointName="llmops-llama3-8b",
            DesiredWeightsAndCapacities=[
                {"VariantName": "primary", "DesiredWeight": 100.0},
                {"VariantName": "candidate", "DesiredWeight": 0.0},
            ],
        )
        self.notifications()

    def set_alarm(self, name: str, state: str, reason: str = "test") -> None:
        self.client("cloudwatch").set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)


def moto_workflow_stack() -> Iterator[WorkflowStack]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        clients: dict[str, Any] = {}

        def factory(service: str) -> Any:
            if service not in clients:
                clients[service] = boto3.client(service, region_name=REGION)  # type: ignore[call-overload]
            return clients[service]

        dynamodb = factory("dynamodb")
        create_tables(dynamodb, {"Routes": ROUTES_TABLE, "Prompts": PROMPTS_TABLE})
        document = load_route_document()
        for item in table_items(document):
            dynamodb.put_item(TableName=ROUTES_TABLE, Item=item)
        outputs = provision_workflows(
            factory,
            {EnvVar.ROUTES_TABLE.value: ROUTES_TABLE, EnvVar.PROMPTS_TABLE.value: PROMPTS_TABLE},
            routes_document=document,
        )

        cloudwatch = factory("cloudwatch")
        for gate in GATES:
            cloudwatch.put_metric_alarm(
                AlarmName=gate,
                Namespace="LLMOps",
                MetricName="CandidateErrors",
                Statistic="Sum",
                Period=60,
                EvaluationPeriods=1,
                Threshold=1,
                ComparisonOperator="GreaterThanThreshold",
            )
        # SNS -> SQS so the tests can read what on-call would have received.
        sqs = factory("sqs")
        queue_url = sqs.create_queue(QueueName="oncall")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        factory("sns").subscribe(TopicArn=outputs["NotificationTopicArn"], Protocol="sqs", Endpoint=queue_arn)
        yield WorkflowStack(outputs=outputs, routes_table=ROUTES_TABLE, queue_url=queue_url, clients=clients)
