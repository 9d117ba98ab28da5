"""DynamoDB failures that mean "the store cannot answer now", raised as the domain's
`StoreUnavailableError` so every route answers 503 `<store>_unavailable` with `Retry-After`.

Only availability failures are translated: throttling that outlasted botocore's retries, server
errors, and connection or read failures. Anything else (a validation error, missing permissions,
a missing table) is a defect or a misconfiguration and stays a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError

from llmops.domain.errors import StoreUnavailableError

__all__ = ["error_code", "is_unavailable", "unavailable_as"]

_log = logging.getLogger(__name__)

_UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)


def error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def is_unavailable(exc: Exception) -> bool:
    if isinstance(exc, BotoCoreError):
        return True  # could not connect, or no answer in time
    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return error_code(exc) in _UNAVAILABLE_CODES or status >= 500
    return False


@contextmanager
def unavailable_as(store: str) -> Iterator[None]:
    """Runs DynamoDB calls for `store` (e.g. "quota", "audit"), translating availability failures."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        if not is_unavailable(exc):
            raise
        _log.warning("store unavailable", extra={"store": store, "error": error_code(exc)})
        raise StoreUnavailableError(store) from None
