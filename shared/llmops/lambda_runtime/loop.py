"""The runtime loop: fetch an invocation from the Lambda Runtime API, run the handler, send its answer.

It replaces the managed Python runtime's own loop (see `llmops-runtime`, started through
`AWS_LAMBDA_EXEC_WRAPPER`) because that one cannot stream. The protocol is the documented Runtime
API (`/2018-06-01/runtime/...`):

- `GET invocation/next` blocks until there is an event; its headers carry the request id, the
  deadline, the function ARN and the X-Ray trace id.
- A `StreamingResponse`, and any API Gateway proxy result (a mapping with `statusCode`), is sent
  in the streaming response mode: `POST invocation/{id}/response` with
  `Lambda-Runtime-Function-Response-Mode: streaming`, chunked, of content type
  `application/vnd.awslambda.http-integration-response`: the prelude and delimiter, then each body
  chunk as the producer yields it. The gateway function's integration is STREAM for every route,
  so every answer must have this framing.
- A body that fails mid-stream ends the stream with the error trailers
  (`Lambda-Runtime-Function-Error-Type`, `Lambda-Runtime-Function-Error-Body`, base64 JSON);
  API Gateway then cuts the client's response short.
- A handler exception is `POST invocation/{id}/error`; a handler that cannot be loaded is
  `POST init/error`, after which the process exits, as a runtime must.
- A write that fails (the client went away, or Lambda cut the invocation) closes the body
  iterator, so the producer stops reading its provider and settles and audits what it produced.
- Once the response is fully posted (a stream's terminating chunk sent and Lambda's reply read, or
  the posting failed), the loop runs the response's `after_response` work
  (`llmops.lambda_runtime.after_response`), within the invocation's deadline, and only then asks
  for the next event: the client no longer waits for it, Lambda still runs it.

Exception messages may echo caller input, so only exception type names are logged or sent.
Standard library only. Run as `python -m llmops.lambda_runtime.loop`, with `AWS_LAMBDA_RUNTIME_API`
and `_HANDLER` set (Lambda sets both).
"""

from __future__ import annotations

import base64
import http.client
import importlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from llmops.lambda_runtime.after_response import run_after_response
from llmops.lambda_runtime.response import HTTP_INTEGRATION_RESPONSE, StreamingResponse

__all__ = [
    "ERROR_BODY_TRAILER",
    "ERROR_TYPE_TRAILER",
    "RESPONSE_MODE_HEADER",
    "FunctionIdentity",
    "Handler",
    "Invocation",
    "InvocationContext",
    "RuntimeApiClient",
    "handler_from_env",
    "run",
]

API_PREFIX = "/2018-06-01/runtime"
RESPONSE_MODE_HEADER = "Lambda-Runtime-Function-Response-Mode"
ERROR_TYPE_TRAILER = "Lambda-Runtime-Function-Error-Type"
ERROR_BODY_TRAILER = "Lambda-Runtime-Function-Error-Body"
TRACE_ID_ENV = "_X_AMZN_TRACE_ID"

Handler = Callable[[Any, Any], Any]
_log = logging.getLogger("llmops.lambda_runtime")


@dataclass(frozen=True, slots=True)
class FunctionIdentity:
    """What the context says about the function itself; Lambda sets these variables."""

    name: str
    version: str = "$LATEST"
    memory_mb: int = 128
    log_group_name: str = ""
    log_stream_name: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> FunctionIdentity:
        return cls(
            name=env.get("AWS_LAMBDA_FUNCTION_NAME", "function"),
            version=env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            memory_mb=int(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")),
            log_group_name=env.get("AWS_LAMBDA_LOG_GROUP_NAME", ""),
            log_stream_name=env.get("AWS_LAMBDA_LOG_STREAM_NAME", ""),
        )


@dataclass(frozen=True, slots=True)
class Invocation:
    """One event from `invocation/next` and what its headers say about it."""

    request_id: str
    event: bytes
    deadline_ms: int  # Unix epoch milliseconds
    invoked_function_arn: str
    trace_id: str | None = None


@dataclass(frozen=True, slots=True)
class InvocationContext:
    """The Lambda context object: the attributes Powertools and the deadline logic read."""

    aws_request_id: str
    invoked_function_arn: str
    deadline_ms: int
    function_name: str
    function_version: str
    memory_limit_in_mb: int
    log_group_name: str
    log_stream_name: str
    identity: Any = None
    client_context: Any = None
    # This loop runs a response's `after_response` work once it is sent (after_response.runs_after_response).
    runs_after_response: ClassVar[bool] = True

    @classmethod
    def of(cls, invocation: Invocation, identity: FunctionIdentity) -> InvocationContext:
        return cls(
            aws_request_id=invocation.request_id,
            invoked_function_arn=invocation.invoked_function_arn,
            deadline_ms=invocation.deadline_ms,
            function_name=identity.name,
            function_version=identity.version,
            memory_limit_in_mb=identity.memory_mb,
            log_group_name=identity.log_group_name,
            log_stream_name=identity.log_stream_name,
        )

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))


class RuntimeApiUnavailableError(ConnectionError):
    """The Runtime API cannot be reached: the execution environment is going away."""


def _error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type, "stackTrace": []}).encode("utf-8")


class RuntimeApiClient:
    """The Runtime API at `endpoint` (`host:port`, what `AWS_LAMBDA_RUNTIME_API` holds)."""

    def __init__(self, endpoint: str) -> None:
        host, _, port = endpoint.rpartition(":")
        self._host, self._port = host or "127.0.0.1", int(port)
        self._next_connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        connection = http.client.HTTPConnection(self._host, self._port, timeout=None)
        connection.connect()
        # Each body chunk is one small write that must leave now, not wait for Nagle's algorithm.
        if connection.sock is not None:
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def next_invocation(self) -> Invocation:
        """Blocks until Lambda has an event for this environment."""
        try:
            if self._next_connection is None:
                self._next_connection = self._connect()
            self._next_connection.request("GET", f"{API_PREFIX}/invocation/next")
            answer = self._next_connection.getresponse()
            event = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            self._drop_next_connection()
            raise RuntimeApiUnavailableError(f"invocation/next failed: {type(exc).__name__}") from None
        if answer.status != 200:
            self._drop_next_connection()
            raise RuntimeApiUnavailableError(f"invocation/next answered {answer.status}")
        return Invocation(
            request_id=answer.headers.get("Lambda-Runtime-Aws-Request-Id", ""),
            event=event,
            deadline_ms=int(answer.headers.get("Lambda-Runtime-Deadline-Ms", "0")),
            invoked_function_arn=answer.headers.get("Lambda-Runtime-Invoked-Function-Arn", ""),
            trace_id=answer.headers.get("Lambda-Runtime-Trace-Id"),
        )

    def _drop_next_connection(self) -> None:
        if self._next_connection is not None:
            self._next_connection.close()
            self._next_connection = None

    def send_json(self, request_id: str, result: Any) -> None:
        """A buffered answer, for results that are not HTTP responses."""
        self._post(f"invocation/{request_id}/response", json.dumps(result).encode("utf-8"), {})

    def send_error(self, request_id: str, error_type: str, message: str) -> None:
        self._post(
            f"invocation/{request_id}/error", _error_payload(error_type, message), {ERROR_TYPE_TRAILER: error_type}
        )

    def send_init_error(self, error_type: str, message: str) -> None:
        self._post("init/error", _error_payload(error_type, message), {ERROR_TYPE_TRAILER: error_type})

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        connection = self._connect()
        try:
            connection.request("POST", f"{API_PREFIX}/{path}", body, {"Content-Type": "application/json", **headers})
            connection.getresponse().read()
        finally:
            connection.close()

    def stream(self, request_id: str, response: StreamingResponse) -> bool:
        """Sends `response` in the streaming mode, each chunk as soon as the body yields it.

        Returns False if the connection failed while writing (the body iterator is then closed).
        """
        body: Iterator[bytes] = iter(response.body)
        connection: http.client.HTTPConnection | None = None
        try:
            connection = self._connect()
            connection.putrequest("POST", f"{API_PREFIX}/invocation/{request_id}/response", skip_accept_encoding=True)
            connection.putheader(RESPONSE_MODE_HEADER, "streaming")
            connection.putheader("Transfer-Encoding", "chunked")
            connection.putheader("Content-Type", HTTP_INTEGRATION_RESPONSE)
            connection.putheader("Trailer", f"{ERROR_TYPE_TRAILER}, {ERROR_BODY_TRAILER}")
            connection.endheaders()
            _send_chunk(connection, response.prelude_bytes())
            failure = _relay(body, connection)
            connection.send(b"0\r\n" + _trailers(failure) + b"\r\n")
            connection.getresponse().read()
        except (OSError, http.client.HTTPException) as exc:
            _log.warning("streamed response cut short: %s", type(exc).__name__)
            _close(body)
            return False
        finally:
            if connection is not None:
                connection.close()
        return True


def _send_chunk(connection: http.client.HTTPConnection, data: bytes) -> None:
    connection.send(f"{len(data):X}\r\n".encode("ascii") + data + b"\r\n")


def _relay(body: Iterator[bytes], connection: http.client.HTTPConnection) -> BaseException | None:
    """Writes the body's chunks until it ends (None) or fails (the exception); write errors propagate."""
    while True:
        try:
            chunk = next(body)
        except StopIteration:
            return None
        except Exception as exc:  # the producer failed mid-stream: reported in the trailers
            _log.error("streamed body failed: %s", type(exc).__name__)
            return exc
        if chunk:  # an empty chunk would end the chunked framing
            _send_chunk(connection, chunk)


def _trailers(failure: BaseException | None) -> bytes:
    if failure is None:
        return b""
    error_type = type(failure).__name__
    encoded = base64.b64encode(_error_payload(error_type, "The response stream failed.")).decode("ascii")
    return f"{ERROR_TYPE_TRAILER}: {error_type}\r\n{ERROR_BODY_TRAILER}: {encoded}\r\n".encode("ascii")


def _close(body: Iterator[bytes]) -> None:
    close: Callable[[], object] | None = getattr(body, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception as exc:  # the producer's cleanup failing must not end the loop
        _log.error("closing the streamed body failed: %s", type(exc).__name__)


def handler_from_env(env: Mapping[str, str] = os.environ) -> Handler:
    """The function `_HANDLER` names (`module.function`), imported from the task root like Lambda does."""
    module_name, _, function_name = env.get("_HANDLER", "").rpartition(".")
    if not module_name:
        raise ValueError("_HANDLER must name module.function")
    task_root = env.get("LAMBDA_TASK_ROOT", "/var/task")
    if task_root not in sys.path:
        sys.path.insert(0, task_root)
    module = importlib.import_module(module_name.replace("/", "."))
    handler: Handler = getattr(module, function_name)
    return handler


def _init_error_type(error: Exception) -> str:
    if isinstance(error, ImportError):
        return "Runtime.ImportModuleError"
    if isinstance(error, AttributeError):
        return "Runtime.HandlerNotFound"
    return "Runtime.InitError"


def _set_trace_id(trace_id: str | None) -> None:
    # Where the X-Ray SDK (and Powertools' tracer) look for the invocation's trace, as Lambda's runtime sets it.
    if trace_id:
        os.environ[TRACE_ID_ENV] = trace_id
    else:
        os.environ.pop(TRACE_ID_ENV, None)


def _answer(client: RuntimeApiClient, invocation: Invocation, result: Any) -> None:
    if isinstance(result, StreamingResponse):
        try:
            client.stream(invocation.request_id, result)
        finally:
            # Posted (or failed to be): the client waits no more; the invocation's own work goes on.
            run_after_response(result.after_response, invocation.deadline_ms, on_failures=result.after_response_failed)
    elif isinstance(result, Mapping) and "statusCode" in result:
        client.stream(invocation.request_id, StreamingResponse.from_proxy_result(result))
    else:
        client.send_json(invocation.request_id, result)


def run(
    endpoint: str,
    load_handler: Callable[[], Handler] = handler_from_env,
    *,
    identity: FunctionIdentity | None = None,
    max_invocations: int | None = None,
) -> bool:
    """Serves invocations one at a time until the Runtime API goes away (or `max_invocations`).

    Returns False after an init error (reported to `init/error`), True otherwise.
    """
    client = RuntimeApiClient(endpoint)
    identity = identity or FunctionIdentity.from_env()
    try:
        handler = load_handler()
    except Exception as exc:
        _log.error("the handler could not be loaded: %s", type(exc).__name__)
        client.send_init_error(_init_error_type(exc), f"{type(exc).__name__}: {exc}")
        return False
    served = 0
    while max_invocations is None or served < max_invocations:
        try:
            invocation = client.next_invocation()
        except RuntimeApiUnavailableError:
            return True
        served += 1
        _set_trace_id(invocation.trace_id)
        try:
            result = handler(json.loads(invocation.event), InvocationContext.of(invocation, identity))
        except Exception as exc:
            _log.error("the handler failed: %s", type(exc).__name__)
            client.send_error(invocation.request_id, type(exc).__name__, "The handler failed.")
            continue
        try:
            _answer(client, invocation, result)
        except (OSError, http.client.HTTPException) as exc:
            _log.error("the answer could not be sent: %s", type(exc).__name__)
    return True


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    endpoint = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not endpoint:
        sys.exit("AWS_LAMBDA_RUNTIME_API is not set: this runs inside a Lambda execution environment")
    sys.exit(0 if run(endpoint) else 1)


if __name__ == "__main__":
    main()
