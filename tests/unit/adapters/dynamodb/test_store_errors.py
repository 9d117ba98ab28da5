"""Which DynamoDB failures mean "the store is unavailable" (a 503 naming it) and which stay defects."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from llmops.adapters.dynamodb.store_errors import is_unavailable, unavailable_as
from llmops.domain.errors import StoreUnavailableError


def _client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.mark.parametrize(
    "error",
    [
        _client_error("ProvisionedThroughputExceededException"),
        _client_error("ThrottlingException"),
        _client_error("RequestLimitExceeded"),
        _client_error("InternalServerError", 500),
        _client_error("SomethingNew", 503),
        EndpointConnectionError(endpoint_url="http://localhost:1"),
        ReadTimeoutError(endpoint_url="http://localhost:1"),
    ],
)
def test_availability_failures_become_store_unavailable(error: Exception) -> None:
    assert is_unavailable(error)
    with pytest.raises(StoreUnavailableError) as caught, unavailable_as("quota"):
        raise error
    refusal = caught.value
    assert (refusal.status, refusal.code, refusal.retry_after_s, refusal.store) == (
        503,
        "quota_unavailable",
        1,
        "quota",
    )
    assert refusal.error_type == "api_error"
    assert caught.value.__cause__ is None, "the botocore error stays out of the refusal"


@pytest.mark.parametrize(
    "error",
    [
        _client_error("ValidationException"),
        _client_error("ConditionalCheckFailedException"),
        _client_error("AccessDeniedException"),
        _client_error("ResourceNotFoundException"),
    ],
)
def test_defects_and_misconfiguration_are_not_translated(error: ClientError) -> None:
    assert not is_unavailable(error)
    with pytest.raises(ClientError), unavailable_as("audit"):
        raise error


def test_the_message_names_the_store_and_nothing_else() -> None:
    refusal = StoreUnavailableError("audit")
    assert refusal.message == "The audit store is temporarily unavailable. Retry shortly."
