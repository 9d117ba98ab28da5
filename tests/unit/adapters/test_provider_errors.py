"""The one provider error mapping both model runtimes use: unpacking, the status-class rule, messages."""

from __future__ import annotations

import pytest

from llmops.adapters.bedrock.transformation import ERROR_TABLE as BEDROCK_ERRORS
from llmops.adapters.provider_errors import (
    ServiceError,
    ServiceErrorTable,
    failure_kind,
    kind_for_status,
    provider_error,
    service_error,
)
from llmops.adapters.sagemaker.transformation import ERROR_TABLE as SAGEMAKER_ERRORS
from llmops.domain.errors import ProviderFailureKind

SECRET_PROMPT = "my card is 4111 1111 1111 1111"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (429, ProviderFailureKind.THROTTLED),
        (408, ProviderFailureKind.TIMEOUT),
        (400, ProviderFailureKind.INVALID_REQUEST),
        (409, ProviderFailureKind.INVALID_REQUEST),
        (499, ProviderFailureKind.INVALID_REQUEST),
        (500, ProviderFailureKind.UNAVAILABLE),
        (502, ProviderFailureKind.UNAVAILABLE),
        (None, ProviderFailureKind.UNAVAILABLE),
    ],
)
def test_unknown_codes_fall_back_to_their_status_class_in_every_service(
    status: int | None, expected: ProviderFailureKind
) -> None:
    assert kind_for_status(status) is expected
    for table in (BEDROCK_ERRORS, SAGEMAKER_ERRORS):
        assert failure_kind(ServiceError("SomethingNew", status), table) is expected


def test_a_relayed_status_wins_over_the_code_and_the_outer_status() -> None:
    table = ServiceErrorTable(kinds={}, relayed_status_codes=frozenset({"Relayed"}))
    assert failure_kind(ServiceError("Relayed", 424, original_status=429), table) is ProviderFailureKind.THROTTLED
    assert failure_kind(ServiceError("Relayed", 424), table) is ProviderFailureKind.UNAVAILABLE


def test_service_error_unpacks_botocore_client_error_responses() -> None:
    response = {
        "Error": {"Code": "ModelError", "Message": SECRET_PROMPT},
        "ResponseMetadata": {"HTTPStatusCode": 424},
        "OriginalStatusCode": "429",
    }
    assert service_error(response) == ServiceError("ModelError", 424, SECRET_PROMPT, 429)
    assert service_error({}) == ServiceError("Unknown")


def test_a_code_that_is_not_an_identifier_is_not_repeated() -> None:
    error = service_error({"Error": {"Code": f"echo {SECRET_PROMPT}"}, "ResponseMetadata": {"HTTPStatusCode": 400}})
    assert error.code == "Unknown"


def test_provider_errors_carry_code_and_statuses_but_never_the_service_message() -> None:
    error = ServiceError("ModelError", 424, f'Received client error (400) with message "{SECRET_PROMPT}"', 400)
    raised = provider_error("SageMaker", error, SAGEMAKER_ERRORS, target_id="sm")
    assert raised.kind is ProviderFailureKind.INVALID_REQUEST
    assert raised.message == "SageMaker returned ModelError (HTTP 424) (container HTTP 400)"
    assert (raised.error_code, raised.target_id) == ("ModelError", "sm")
    assert SECRET_PROMPT not in str(raised)
