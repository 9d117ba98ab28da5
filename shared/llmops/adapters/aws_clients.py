"""boto3 clients built once per Lambda container, with explicit timeouts and standard retries.

Endpoints are not configured here on purpose: botocore already honours `AWS_ENDPOINT_URL` and
`AWS_ENDPOINT_URL_<SERVICE_ID>` (e.g. `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`,
`AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`), which is how the local stack points these unchanged clients
at moto and the model emulators.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, cast

import botocore.session
import urllib3.exceptions
from botocore.config import Config
from botocore.eventstream import ParserError as EventStreamParserError
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)

from llmops.adapters.provider_errors import ServiceErrorTable, provider_error, service_error
from llmops.domain.errors import ProviderError, ProviderFailureKind

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

__all__ = [
    "bedrock_runtime",
    "call_timeouts",
    "clear_client_cache",
    "client",
    "provider_call",
    "provider_client",
    "sagemaker_runtime",
    "transport_failure_kind",
]

_CacheKey = tuple[str, float, float, int, "str | None", "str | None", "str | None"]
_clients: dict[_CacheKey, BaseClient] = {}
_lock = threading.Lock()


_botocore_session: botocore.session.Session | None = None


def _session() -> botocore.session.Session:
    # botocore directly rather than boto3: the clients are the same objects, but `import boto3`
    # also loads s3transfer and its resource layer, about 0.2 s of Lambda cold start we never use.
    global _botocore_session  # noqa: PLW0603 - one session per container, like boto3's default
    if _botocore_session is None:
        _botocore_session = botocore.session.get_session()
    return _botocore_session


def _endpoint_env(service: str) -> tuple[str | None, str | None]:
    # Part of the cache key so a process that re-points the endpoint (tests, `llmops serve` restarts)
    # never reuses a client bound to the old address.
    service_var = "AWS_ENDPOINT_URL_" + service.upper().replace("-", "_").replace(" ", "_")
    return os.environ.get(service_var), os.environ.get("AWS_ENDPOINT_URL")


def client(
    service: str,
    *,
    connect_timeout_s: float,
    read_timeout_s: float,
    max_attempts: int,
    region: str | None = None,
) -> BaseClient:
    """A cached boto3 client for `service`; the same settings return the same client object.

    `max_attempts` is the total number of calls including the first (1 disables retries).
    """
    endpoint, any_endpoint = _endpoint_env(service)
    settings = (connect_timeout_s, read_timeout_s, max_attempts)
    key: _CacheKey = (service, *settings, region, endpoint, any_endpoint)
    with _lock:
        cached = _clients.get(key)
        if cached is not None:
            return cached
        config = Config(
            # total_max_attempts counts the first call; botocore's `max_attempts` key would mean
            # *retries* and silently add one more call than the setting says.
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            tcp_keepalive=True,
        )
        created: BaseClient = _session().create_client(service, region_name=region, config=config)
        _clients[key] = created
        return created


def call_timeouts(budget_s: float | None, *, connect_timeout_s: float, read_timeout_s: float) -> tuple[float, float]:
    """(connect, read) timeouts for one provider call that must be over within `budget_s` (None: no limit).

    A call can spend its connect timeout and then its read timeout, so the read timeout is what the
    budget leaves after connecting. It is cut to whole seconds (at least 1): the client cache then
    holds at most one client per second of the configured read timeout, not one per request.
    """
    if budget_s is None or budget_s >= connect_timeout_s + read_timeout_s:
        return connect_timeout_s, read_timeout_s
    return connect_timeout_s, float(max(1, math.floor(budget_s - connect_timeout_s)))


def provider_client(
    service: str,
    *,
    budget_s: float | None,
    connect_timeout_s: float,
    read_timeout_s: float,
    region: str | None = None,
) -> BaseClient:
    """A model runtime client for one call within `budget_s`, making exactly one attempt.

    botocore does not retry here: `CompletionService` retries across attempts and targets, and
    only while the request's deadline leaves time (botocore's own retries would not know it).
    """
    connect, read = call_timeouts(budget_s, connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s)
    return client(service, connect_timeout_s=connect, read_timeout_s=read, max_attempts=1, region=region)


def bedrock_runtime(
    *, connect_timeout_s: float, read_timeout_s: float, max_attempts: int, region: str | None = None
) -> BedrockRuntimeClient:
    return cast(
        "BedrockRuntimeClient",
        client(
            "bedrock-runtime",
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
            max_attempts=max_attempts,
            region=region,
        ),
    )


def sagemaker_runtime(
    *, connect_timeout_s: float, read_timeout_s: float, max_attempts: int, region: str | None = None
) -> SageMakerRuntimeClient:
    return cast(
        "SageMakerRuntimeClient",
        client(
            "sagemaker-runtime",
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
            max_attempts=max_attempts,
            region=region,
        ),
    )


def clear_client_cache() -> None:
    with _lock:
        _clients.clear()


def transport_failure_kind(exc: BaseException) -> ProviderFailureKind | None:
    """The failure kind of a botocore transport or client-side error, or None for anything else.

    Order matters: ConnectTimeoutError is a subclass of EndpointConnectionError. While an event
    stream is read, botocore does not wrap urllib3's errors or its own framing errors, so those count
    as transport failures too.
    """
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError | urllib3.exceptions.TimeoutError):
        return ProviderFailureKind.TIMEOUT
    if isinstance(exc, EndpointConnectionError | ConnectionClosedError | urllib3.exceptions.HTTPError):
        return ProviderFailureKind.UNAVAILABLE
    if isinstance(exc, EventStreamParserError):
        return ProviderFailureKind.UNAVAILABLE
    if isinstance(exc, ParamValidationError):
        return ProviderFailureKind.INVALID_REQUEST
    return None


@contextmanager
def provider_call(service: str, errors: ServiceErrorTable, *, target_id: str) -> Iterator[None]:
    """Runs one model runtime call of `service` ("Bedrock", "SageMaker"), raising `ProviderError`
    for botocore's exceptions: service answers by `errors` (`provider_errors`), transport failures
    by `transport_failure_kind`. Nothing from the request or the service's message is kept.

    A streaming call reads its event stream inside it too: a modeled exception in the stream is
    botocore's EventStreamError, a ClientError whose code is the exception's event name."""
    try:
        yield
    except ClientError as exc:
        raise provider_error(service, service_error(exc.response), errors, target_id=target_id) from exc
    except (BotoCoreError, urllib3.exceptions.HTTPError, EventStreamParserError) as exc:
        name = type(exc).__name__
        kind = transport_failure_kind(exc) or ProviderFailureKind.UNAVAILABLE
        raise ProviderError(kind, f"{service} call failed: {name}", target_id=target_id, error_code=name) from exc
