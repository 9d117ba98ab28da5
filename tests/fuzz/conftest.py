"""Fuzzing fixtures: the gateway's OpenAPI document and one `llmops serve` subprocess per worker.

The stack runs in a subprocess because `LocalStack.start()` rewrites `os.environ` (AWS endpoints,
table names) and would leak into every other test sharing this worker.

How many examples each fuzz test runs: see fuzz_settings.py (`LLMOPS_FUZZ_EXAMPLES`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis

from llmops.application.openapi import openapi_document
from llmops.local.lambda_runtime import load_handler_module
from tests.local_stack_process import start_llmops_serve, stop_llmops_serve

# Powertools emits OpenAPI 3.1, which schemathesis 3.x supports behind this switch (it then
# validates responses with JSON Schema draft 2020-12, as 3.1 specifies).
schemathesis.experimental.OPEN_API_3_1.enable()


@pytest.fixture(scope="session")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    process, state = start_llmops_serve(tmp_path_factory.mktemp("fuzz-stack"))
    yield state
    stop_llmops_serve(process)


@pytest.fixture(scope="session")
def gateway_openapi() -> dict[str, Any]:
    return openapi_document(load_handler_module("gateway").app)


@pytest.fixture(scope="session")
def auth_headers(fuzz_stack: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {fuzz_stack['api_key']}"}
