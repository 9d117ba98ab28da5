"""The service guard detectors a tenant's policy names, built per policy and bounded in time.

`ServiceDetectors(policy)` is what `GuardPolicies` hands each engine: one adapter per detector the
policy configures (`bedrock_guardrail`, `comprehend`), each wrapped in `TimedDetector`, which
bounds every call by the policy's `timeout_s` and by what the request has left (the deadline the
chat and embeddings endpoints bind with `bound_deadline`). The botocore client's own connect/read
timeouts are the policy's too (one attempt), so a call that outlives its wait does not linger long.

Inside `batched_service_calls(texts)` (the chat and embeddings endpoints put a request's input
guard there), a detector that can check several texts at once (`BatchServiceDetector`: the
Bedrock guardrail, whose ApplyGuardrail takes a list of text blocks) checks them all the first time
the engine asks about one, within one timeout, and answers the engine's later questions from that;
a failure is then every text's failure, each text getting its fail-mode finding as before.

A call that fails or times out raises `DetectorUnavailableError`; the engine applies the policy's
fail mode, the request's audit record counts the failure and `GuardDetectorFailures` publishes it.
The guardrail id named in a policy must be one the stack grants (CDK context `bedrockGuardrails`,
which CDK also hands the gateway as `LLMOPS_GRANTED_GUARDRAILS`): another is never called (IAM
would deny it) and is unavailable from the start, reason `not_granted`, so its fail mode applies.
Comprehend likewise without `comprehendPiiDetection` (`LLMOPS_COMPREHEND_GRANTED=false`).
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Final, NoReturn, TypeVar

from llmops.adapters.bedrock_guardrails import BedrockGuardrailDetector, default_bedrock_runtime_client
from llmops.adapters.comprehend import ComprehendPiiDetector, default_comprehend_client
from llmops.domain.chat import ChatRequest
from llmops.domain.deadline import Deadline
from llmops.domain.guard import Direction, GuardPolicy
from llmops.domain.guard.normalization import normalize
from llmops.domain.guard.service_detectors import (
    BEDROCK_GUARDRAIL,
    COMPREHEND,
    BatchServiceDetector,
    BedrockGuardrailSettings,
    ComprehendSettings,
    Detection,
    DetectorUnavailableError,
    ServiceDetector,
    ServiceSettings,
)

__all__ = [
    "ServiceDetectors",
    "TimedDetector",
    "batched_service_calls",
    "bound_deadline",
    "converse_guardrail_config",
    "guardrail_key",
    "parse_granted",
    "with_policy_guardrail",
]

_log = logging.getLogger(__name__)

_deadline: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("llmops_guard_deadline", default=None)
_batch: contextvars.ContextVar[_Batch | None] = contextvars.ContextVar("llmops_guard_batch", default=None)
_MAX_WORKERS: Final = 8
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


@contextmanager
def bound_deadline(deadline: Deadline) -> Iterator[None]:
    """Service detector calls made inside this block stop at `deadline` (the request's)."""
    token = _deadline.set(deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


@dataclass(slots=True)
class _Batch:
    """One guard pass's texts and what each batch detector answered for them (or its failure)."""

    texts: Sequence[str]
    direction: Direction
    _folded: tuple[str, ...] | None = None
    # By the detector's identity (detectors need not be hashable); a batch lives for one guard pass.
    answers: dict[int, dict[str, Detection] | DetectorUnavailableError] = field(default_factory=dict)

    def folded(self) -> tuple[str, ...]:
        """The texts as the engine hands them to detectors (normalized), blank ones left out, once each."""
        if self._folded is None:
            folded = (normalize(t).text for t in self.texts)
            self._folded = tuple(dict.fromkeys(t for t in folded if t.strip()))
        return self._folded


@contextmanager
def batched_service_calls(texts: Sequence[str], direction: Direction = Direction.INPUT) -> Iterator[None]:
    """Batch detectors asked inside this block about one of `texts` (in `direction`) check them all
    in one go; see the module docstring."""
    token = _batch.set(_Batch(texts, direction))
    try:
        yield
    finally:
        _batch.reset(token)


_Answer = TypeVar("_Answer")
_Text = TypeVar("_Text", str, Sequence[str])


def _pool() -> ThreadPoolExecutor:
    # Made on the first call, not at import: a gateway whose policies name no service never has one.
    global _executor  # noqa: PLW0603 - one pool per process, shared by every policy's detectors
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=_MAX_WORKERS, thread_name_prefix="guard-detector")
        return _executor


@dataclass(frozen=True, slots=True)
class TimedDetector:
    """A service detector whose every call ends within `min(settings.timeout_s, the deadline's usable
    time)`; anything else than an answer in time (an error, a timeout, a bug mapping the answer)
    is `DetectorUnavailableError`, so the policy's fail mode always decides."""

    inner: ServiceDetector
    settings: ServiceSettings
    margin_s: float = 0.0

    @property
    def name(self) -> str:
        return self.inner.name

    def timeout_s(self) -> float:
        deadline = _deadline.get()
        if deadline is None:
            return self.settings.timeout_s
        return min(self.settings.timeout_s, deadline.usable_s(self.margin_s))

    def detect(self, text: str, direction: Direction) -> Detection:
        batch = _batch.get()
        inner = self.inner
        if batch is None or batch.direction is not direction or not isinstance(inner, BatchServiceDetector):
            return self._timed(inner.detect, text, direction)
        answer = batch.answers.get(id(self))
        if answer is None:
            texts = batch.folded()
            if text not in texts:  # not one of the batch's texts: asked on its own
                return self._timed(inner.detect, text, direction)
            try:
                detections = self._timed(inner.detect_many, texts, direction)
                if len(detections) != len(texts):
                    self._failed("malformed_answer", direction)
                answer = dict(zip(texts, detections, strict=True))
            except DetectorUnavailableError as exc:
                answer = exc  # logged once (`_failed`); every text of the batch gets the fail mode
            batch.answers[id(self)] = answer
        if isinstance(answer, DetectorUnavailableError):
            raise DetectorUnavailableError(answer.detector, answer.reason)
        found = answer.get(text)
        return found if found is not None else self._timed(inner.detect, text, direction)

    def _timed(self, call: Callable[[_Text, Direction], _Answer], texts: _Text, direction: Direction) -> _Answer:
        timeout = self.timeout_s()
        if timeout <= 0:
            self._failed("deadline", direction)
        future = _pool().submit(call, texts, direction)
        try:
            return future.result(timeout=timeout)
        except FutureTimeoutError:
            future.cancel()  # if it has not started; a running call ends at its client's read timeout
            self._failed("timeout", direction)
        except DetectorUnavailableError as exc:
            self._failed(exc.reason, direction)
        except Exception as exc:
            self._failed(type(exc).__name__, direction)

    def _failed(self, reason: str, direction: Direction) -> NoReturn:
        # Names and codes only: the text the detector was given is never logged.
        _log.warning(
            "guard detector unavailable",
            extra={"detector": self.name, "reason": reason, "direction": direction.value},
        )
        raise DetectorUnavailableError(self.name, reason)


def guardrail_key(guardrail: str) -> str:
    """A guardrail's id, whether given as the id or its ARN (`...:guardrail/<id>`)."""
    return guardrail.rsplit("/", 1)[-1]


def parse_granted(value: str | None) -> frozenset[str] | None:
    """`LLMOPS_GRANTED_GUARDRAILS` as guardrail ids: None (unset) allows any; "none" allows none."""
    if value is None:
        return None
    return frozenset(guardrail_key(g.strip()) for g in value.split(",") if g.strip() and g.strip() != "none")


@dataclass(frozen=True, slots=True)
class _NotGranted:
    """A guardrail the stack does not grant: calling it would only be denied."""

    name: str

    def detect(self, text: str, direction: Direction) -> Detection:
        raise DetectorUnavailableError(self.name, "not_granted")


def _guardrail(settings: BedrockGuardrailSettings) -> ServiceDetector:
    timeout = settings.timeout_s
    return BedrockGuardrailDetector(
        lambda: default_bedrock_runtime_client(timeout),
        guardrail_id=settings.guardrail_id,
        version=settings.version,
    )


def _comprehend(settings: ComprehendSettings) -> ServiceDetector:
    timeout = settings.timeout_s
    return ComprehendPiiDetector(
        lambda: default_comprehend_client(connect_timeout_s=min(1.0, timeout), read_timeout_s=timeout),
        language=settings.language,
        min_score=settings.min_score,
        entity_types=settings.entity_types,
    )


@dataclass(frozen=True, slots=True)
class ServiceDetectors:
    """`policy -> detectors` for `GuardPolicies`: nothing is called until a scan needs it."""

    margin_s: float = 0.0  # kept back from the request's deadline for the stages after the guard
    granted: frozenset[str] | None = None  # guardrail ids the stack grants; None: any (local stack)
    comprehend_granted: bool = True  # the stack grants comprehend:DetectPiiEntities

    def __call__(self, policy: GuardPolicy) -> Sequence[ServiceDetector]:
        built: list[ServiceDetector] = []
        for name, settings in sorted(policy.services.items()):
            if not policy.detector_enabled(name):
                continue
            if name == BEDROCK_GUARDRAIL and isinstance(settings, BedrockGuardrailSettings):
                inner = _guardrail(settings)
                if self.granted is not None and guardrail_key(settings.guardrail_id) not in self.granted:
                    # Configuration, not request text: the id is safe to log, and worth it once.
                    _log.warning(
                        "guard policy names a guardrail the stack does not grant",
                        extra={"guardrail_id": settings.guardrail_id, "fail_mode": settings.fail_mode.value},
                    )
                    inner = _NotGranted(name)
                built.append(TimedDetector(inner, settings, self.margin_s))
            elif name == COMPREHEND and isinstance(settings, ComprehendSettings):
                if self.comprehend_granted:
                    built.append(TimedDetector(_comprehend(settings), settings, self.margin_s))
                else:
                    _log.warning("guard policy uses Comprehend, which the stack does not grant")
                    built.append(TimedDetector(_NotGranted(name), settings, self.margin_s))
        return tuple(built)


def converse_guardrail_config(policy: GuardPolicy, *, stream: bool) -> dict[str, str] | None:
    """Converse's `guardrailConfig` for a Bedrock target when the policy's guardrail asks for it.

    Set by the gateway, so it replaces a caller's pass-through `guardrailConfig`: the tenant's
    guardrail is the one its policy names. Streams process the guardrail synchronously: a chunk
    reaches the gateway only once the guardrail has passed it."""
    settings = policy.service_settings(BEDROCK_GUARDRAIL)
    if (
        not isinstance(settings, BedrockGuardrailSettings)
        or not settings.converse
        or not policy.detector_enabled(BEDROCK_GUARDRAIL)
    ):
        return None
    config = {"guardrailIdentifier": settings.guardrail_id, "guardrailVersion": settings.version}
    if stream:
        config["streamProcessingMode"] = "sync"
    return config


def with_policy_guardrail(
    request: ChatRequest, policy: GuardPolicy, *, granted: frozenset[str] | None = None
) -> ChatRequest:
    """`request` with the policy's guardrail as its Converse `guardrailConfig` (Bedrock targets read
    `provider_options`; SageMaker ones ignore them), replacing any the caller passed through.

    Not for a guardrail outside `granted` (None: any): Bedrock would deny the whole call, while the
    policy's fail mode already decided what its absence means (see `ServiceDetectors`)."""
    config = converse_guardrail_config(policy, stream=request.stream)
    if config is None:
        return request
    if granted is not None and guardrail_key(config["guardrailIdentifier"]) not in granted:
        return request
    return replace(request, provider_options={**request.provider_options, "guardrailConfig": config})
