"""One mapping from a model runtime's error answer to the gateway's `ProviderError` (pure, no botocore).

Every provider adapter answers the same two questions about a failed call: what the router should
do (`ProviderFailureKind`: back off, fall back, or tell the caller their request is wrong) and what
may be said about it. The rule is shared; only the table of service error codes is per service
(`ServiceErrorTable`, e.g. `bedrock.transformation.ERROR_TABLE`):

1. codes whose answer relays another server's status (SageMaker's ModelError carries the container's
   `OriginalStatusCode`) are classified by that status;
2. codes that sometimes blame the target rather than the request (a retired model id, a deleted
   endpoint) are UNAVAILABLE when the service message says so, so the router falls back;
3. known codes map through the table;
4. anything else falls back to its HTTP status class: 429 throttled, 408 timeout, other 4xx the
   request's fault, the rest unavailable.

Service messages are only matched against, never kept: they can quote the request (a Bedrock
ValidationException names the offending text; a container's ModelError may echo the prompt), and
a `ProviderError`'s message reaches logs and, for a rejected request, the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from llmops.domain.errors import ProviderError, ProviderFailureKind, safe_error_code
from llmops.domain.guard import safe_regex

__all__ = [
    "ServiceError",
    "ServiceErrorTable",
    "failure_kind",
    "kind_for_status",
    "provider_error",
    "service_error",
]


@dataclass(frozen=True, slots=True)
class ServiceError:
    """The parts of a service's error answer (botocore's `ClientError.response`) the mapping reads."""

    code: str
    http_status: int | None = None
    message: str = ""  # matched against, never echoed
    original_status: int | None = None  # the status a relayed server answered (SageMaker ModelError)


@dataclass(frozen=True, slots=True)
class ServiceErrorTable:
    """One service's error codes; the shared rule in `failure_kind` does the rest."""

    kinds: Mapping[str, ProviderFailureKind]
    # Code -> message pattern meaning the target, not the request, is at fault (fall back).
    target_faults: Mapping[str, safe_regex.Pattern[str]] = field(default_factory=lambda: MappingProxyType({}))
    # Codes whose `original_status` is the status to classify by.
    relayed_status_codes: frozenset[str] = frozenset()


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def service_error(response: Mapping[str, Any]) -> ServiceError:
    """Unpacks botocore's `ClientError.response` (a plain dict, so this needs no botocore).

    A code not shaped like an error code becomes "Unknown": codes go into messages that may reach
    the caller, and a misbehaving server could put anything in that header.
    """
    error = response.get("Error") or {}
    return ServiceError(
        code=safe_error_code(error.get("Code") or "Unknown"),
        http_status=_int_or_none((response.get("ResponseMetadata") or {}).get("HTTPStatusCode")),
        message=str(error.get("Message") or ""),
        original_status=_int_or_none(response.get("OriginalStatusCode")),
    )


def kind_for_status(http_status: int | None) -> ProviderFailureKind:
    """The failure kind an HTTP status class implies when no error code says more."""
    if http_status == 429:
        return ProviderFailureKind.THROTTLED
    if http_status == 408:
        return ProviderFailureKind.TIMEOUT
    if http_status is not None and 400 <= http_status < 500:
        return ProviderFailureKind.INVALID_REQUEST
    return ProviderFailureKind.UNAVAILABLE


def failure_kind(error: ServiceError, table: ServiceErrorTable) -> ProviderFailureKind:
    """What the router should do about `error`, by the rule in the module docstring."""
    if error.code in table.relayed_status_codes:
        return kind_for_status(error.original_status)
    target_fault = table.target_faults.get(error.code)
    if target_fault is not None and target_fault.search(error.message):
        return ProviderFailureKind.UNAVAILABLE
    known = table.kinds.get(error.code)
    if known is not None:
        return known
    return kind_for_status(error.http_status)


def provider_error(service: str, error: ServiceError, table: ServiceErrorTable, *, target_id: str) -> ProviderError:
    """The `ProviderError` for `error`: its kind, and a message of the code and statuses only."""
    relayed = f" (container HTTP {error.original_status})" if error.original_status is not None else ""
    return ProviderError(
        failure_kind(error, table),
        f"{service} returned {error.code} (HTTP {error.http_status}){relayed}",
        target_id=target_id,
        error_code=error.code,
    )
