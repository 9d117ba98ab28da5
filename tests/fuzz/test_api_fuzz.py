"""schemathesis against a live `llmops serve`: every documented operation, valid and invalid input.

Promises checked on every generated request (authenticated with the dev key):
- no 5xx, ever (`not_a_server_error`);
- the status is one the document lists for the operation, the content type is a documented one,
  and the body validates against the documented schema, which for every 4xx/5xx is the OpenAI
  error shape (`status_code_conformance`, `content_type_conformance`, `response_schema_conformance`);
- required headers are present (`response_headers_conformance`: provenance on chat, Retry-After on
  429/503);
- invalid input is refused with a 4xx (`negative_data_rejection`), and the same request without the
  key is refused (`ignored_auth`).

Example count: `LLMOPS_FUZZ_EXAMPLES` per operation and generation method (see conftest.py).
Set `LLMOPS_FUZZ_REPORT=<path>` to get a JSON of the statuses seen per operation.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fuzz_settings import FUZZ_REPORT_ENV, fuzz_examples  # type: ignore[import-not-found]
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import DataGenerationMethod
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("fuzz")]

CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    ignored_auth,
)

_seen: dict[str, Counter[str]] = defaultdict(Counter)


@pytest.fixture(scope="module")
def api_schema(gateway_openapi: dict[str, Any], fuzz_stack: dict[str, Any]) -> Any:
    return schemathesis.from_dict(
        gateway_openapi,
        base_url=fuzz_stack["front_door_url"],
        data_generation_methods=[DataGenerationMethod.positive, DataGenerationMethod.negative],
    )


@pytest.fixture(scope="module", autouse=True)
def status_report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield
    target = os.environ.get(FUZZ_REPORT_ENV)
    path = Path(target) if target else tmp_path_factory.mktemp("fuzz-report") / "fuzz_statuses.json"
    report = {
        "examples_per_operation": fuzz_examples(),
        "operations": {op: dict(sorted(counts.items())) for op, counts in sorted(_seen.items())},
        "requests": sum(sum(c.values()) for c in _seen.values()),
    }
    path.write_text(json.dumps(report, indent=2))
    print(f"\nfuzz status report: {path}")


FUZZ_SETTINGS = settings(
    max_examples=fuzz_examples(),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)

valid_input = schemathesis.from_pytest_fixture("api_schema", data_generation_methods=[DataGenerationMethod.positive])
# Negative cases need something to break: for operations without parameters or a body schemathesis
# can only add unknown headers, which are valid, so those get positive cases only.
invalid_input = schemathesis.from_pytest_fixture(
    "api_schema", data_generation_methods=[DataGenerationMethod.negative]
).include(method="POST")


# Most schema-valid chat bodies name a model that does not exist or ask for a feature the gateway
# refuses (tools, n > 1, image parts), so they never reach a provider. This third run keeps every
# other generated field but routes the request: a known alias, text-only parts, a user turn.
routed_chat = schemathesis.from_pytest_fixture(
    "api_schema", data_generation_methods=[DataGenerationMethod.positive]
).include(path="/v1/chat/completions")

ROUTED_ALIASES = ("chat-default", "nova-lite", "llama3-8b", "mistral-7b")
# Refused on purpose (unsupported features), or needing state the fuzzer cannot know (`prompt`
# names a registered template).
UNROUTABLE_FIELDS = (
    "n",
    "tools",
    "tool_choice",
    "functions",
    "function_call",
    "response_format",
    "reasoning_effort",
    "parallel_tool_calls",
    "logprobs",
    "prompt",
    # Bedrock pass-through fields: refused unless the tenant's content policy allows them.
    "guardrailConfig",
    "serviceTier",
    "performanceConfig",
    "additionalModelRequestFields",
)
# Message fields that need the conversation's tool-call bookkeeping to be right (checked on parse),
# and `audio`, which the gateway refuses unless it is null (a 400 naming it, tested in the schema tests).
UNROUTABLE_MESSAGE_FIELDS = ("tool_calls", "tool_call_id", "thinking_blocks", "function_call", "audio")
ROUTED_REFUSALS = {"content_blocked", "context_length_exceeded"}


def _text(value: Any) -> str:
    # Bedrock refuses empty text blocks (see test_hostile_input.PROVIDER_REFUSED).
    return str(value or "") or "Hello."


def _routed(body: Any, alias: str) -> Any:
    if not isinstance(body, dict):
        return body
    routed = {k: v for k, v in body.items() if k not in UNROUTABLE_FIELDS}
    routed["model"] = alias
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Hello."}]  # Bedrock: user speaks first
    for message in routed.get("messages") or []:
        if message.get("role") == "tool":
            continue
        kept = {k: v for k, v in message.items() if k not in UNROUTABLE_MESSAGE_FIELDS}
        content = kept.get("content")
        if isinstance(content, list):
            content = [{"type": "text", "text": _text(part.get("text"))} for part in content] or "Hello."
        else:
            content = _text(content)
        messages.append({**kept, "content": content})
    routed["messages"] = [*messages, {"role": "user", "content": "And one more question?"}]
    for name in ("max_tokens", "max_completion_tokens"):
        if isinstance(routed.get(name), int):
            routed[name] = min(routed[name], 1024)
    return routed


@routed_chat.hook
def before_generate_body(context: Any, strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.tuples(strategy, st.sampled_from(ROUTED_ALIASES)).map(lambda pair: _routed(*pair))


def _call_and_check(case: Any, auth_headers: dict[str, str]) -> Any:
    # Headers go through call_and_validate so `ignored_auth` knows they are the caller's own key.
    response = case.call_and_validate(headers=auth_headers, checks=CHECKS, timeout=30)
    outcome = str(response.status_code)
    if response.status_code >= 400:
        outcome += f" {(response.json().get('error') or {}).get('code')}"
    _seen[f"{case.method} {case.path}"][outcome] += 1
    return response


@valid_input.parametrize()
@FUZZ_SETTINGS
def test_valid_input_keeps_the_contract(case: Any, auth_headers: dict[str, str]) -> None:
    _call_and_check(case, auth_headers)


@routed_chat.parametrize()
@FUZZ_SETTINGS
def test_routed_chat_answers_or_refuses_by_policy(case: Any, auth_headers: dict[str, str]) -> None:
    response = _call_and_check(case, auth_headers)
    if response.status_code != 200:
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] in ROUTED_REFUSALS, response.text


@invalid_input.parametrize()
@FUZZ_SETTINGS
def test_invalid_input_is_refused_in_openai_shape(case: Any, auth_headers: dict[str, str]) -> None:
    _call_and_check(case, auth_headers)
