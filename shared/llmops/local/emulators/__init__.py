"""Local Bedrock Runtime and SageMaker Runtime emulators that speak the real wire protocols.

Unchanged boto3 clients reach them through `endpoint_url` or `AWS_ENDPOINT_URL_BEDROCK_RUNTIME` /
`AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`. Answers are deterministic; latency, throttling, errors and
timeouts are injected per model, endpoint or variant through `FaultPlan` or the `/_emulator/` admin
routes; a forwarder can hand the text generation to an OpenAI-compatible server.
"""

from llmops.local.emulators.answers import Generation, generate_answer
from llmops.local.emulators.base import EmulatorApp
from llmops.local.emulators.bedrock_runtime import BedrockRuntimeEmulator
from llmops.local.emulators.faults import FaultDecision, FaultPlan, FaultSpec, Outcome
from llmops.local.emulators.forwarding import ForwardingError, OpenAICompatibleForwarder
from llmops.local.emulators.sagemaker_runtime import EndpointConfig, SageMakerRuntimeEmulator

__all__ = [
    "BedrockRuntimeEmulator",
    "EmulatorApp",
    "EndpointConfig",
    "FaultDecision",
    "FaultPlan",
    "FaultSpec",
    "ForwardingError",
    "Generation",
    "OpenAICompatibleForwarder",
    "Outcome",
    "SageMakerRuntimeEmulator",
    "generate_answer",
]
