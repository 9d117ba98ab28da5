"""Structured output (`response_format`), checked on the way back: the gateway promises the caller
JSON of the asked-for shape, whichever model and mapping (Bedrock's structured output, a forced tool)
produced it.

`json_object` answers must parse to a JSON object; `json_schema` answers must also be valid against
the schema, by the project's one JSON Schema validator (`prompts.json_schema.minimal_schema_errors`,
the one prompt output checks use). Only a finished answer (`stop`) is checked: one cut by
`max_tokens` (`length`) says so in its finish reason, and one that calls tools has no text to check.

A failed check answers 502 `invalid_structured_output` (the model, not the caller, got it wrong; a
retry may succeed). The message names neither the answer's content nor its keys: both are model
output, which may carry anything.
"""

from __future__ import annotations

import json

from llmops.domain.chat import Completion, FinishReason, ResponseFormat
from llmops.domain.errors import GatewayError
from llmops.domain.prompts.json_schema import minimal_schema_errors

__all__ = ["InvalidStructuredOutputError", "check_structured_output", "structured_output_problem"]


class InvalidStructuredOutputError(GatewayError):
    status = 502
    error_type = "api_error"
    code = "invalid_structured_output"


def structured_output_problem(text: str, response_format: ResponseFormat) -> str | None:
    """What is wrong with `text` as an answer in `response_format` (None: nothing), without its content."""
    if response_format.kind not in ("json_object", "json_schema"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return "is not valid JSON"
    if not isinstance(value, dict):
        return "is not a JSON object"
    if response_format.kind == "json_schema" and response_format.schema is not None:
        errors = minimal_schema_errors(value, response_format.schema)
        if errors:
            return f"does not match the JSON schema ({len(errors)} problem{'s' if len(errors) > 1 else ''})"
    return None


def check_structured_output(completion: Completion, response_format: ResponseFormat | None) -> None:
    """Raises `InvalidStructuredOutputError` when a finished answer is not what `response_format` asks."""
    if response_format is None or completion.finish_reason is not FinishReason.STOP or completion.tool_calls:
        return
    problem = structured_output_problem(completion.text, response_format)
    if problem is not None:
        raise InvalidStructuredOutputError(
            f"The model's answer {problem} for response_format '{response_format.kind}'. Retry the request.",
            param="response_format",
        )
