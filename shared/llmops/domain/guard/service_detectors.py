"""Service-backed guard detectors: the port the engine calls, and each policy's settings for them.

Two managed services can join a tenant's guard, each named by an object in its guard policy:

* ``bedrock_guardrail`` - Amazon Bedrock ApplyGuardrail with a guardrail id and version, on the
  input, the output or both. The guardrail's own verdict decides: what it masks (ANONYMIZED) is
  redacted with a placeholder, what it blocks (BLOCKED) blocks, what it only detects is logged.
  For Bedrock targets the same guardrail also goes on the Converse call (``guardrailConfig``), so
  accounts whose IAM requires ``bedrock:GuardrailIdentifier`` on InvokeModel serve the request.
* ``comprehend`` - Amazon Comprehend DetectPiiEntities: entities of the listed types (renamed to
  the gateway's finding types) at or above a score; the policy's actions decide, as for built-ins.

Each call is bounded by the policy's ``timeout_s`` and by what the request has left, and each
policy chooses what an unavailable service means (``fail_mode``): ``closed`` blocks the text with
a ``DETECTOR_UNAVAILABLE`` finding (the caller gets 503 ``guard_unavailable``), ``open`` lets it
through with that finding logged. Either way the failure is counted (``GuardDetectorFailures``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final, Protocol, runtime_checkable

from llmops.domain.errors import GatewayError
from llmops.domain.guard import safe_regex
from llmops.domain.guard.findings import Action, BlockedBy, Direction, Finding

__all__ = [
    "BEDROCK_GUARDRAIL",
    "COMPREHEND",
    "SERVICE_DETECTORS",
    "BatchServiceDetector",
    "BedrockGuardrailSettings",
    "ComprehendSettings",
    "Detection",
    "DetectorUnavailableError",
    "FailMode",
    "GuardUnavailableError",
    "ServiceDetector",
    "ServiceSettings",
    "parse_service_settings",
]

BEDROCK_GUARDRAIL: Final = "bedrock_guardrail"
COMPREHEND: Final = "comprehend"
SERVICE_DETECTORS: Final = frozenset({BEDROCK_GUARDRAIL, COMPREHEND})

MAX_TIMEOUT_S: Final = 10.0
DEFAULT_TIMEOUT_S: Final = 2.0
# A guardrail id (10-ish lower-case alphanumerics) or its ARN; versions are DRAFT or a number.
_GUARDRAIL_ID = safe_regex.compile(
    r"^(?:[a-z0-9]{1,64}|arn:aws[a-z-]*:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:guardrail/[a-z0-9]{1,64})$"
)
_GUARDRAIL_VERSION = safe_regex.compile(r"^(?:DRAFT|[1-9][0-9]{0,7})$")
_LANGUAGE = safe_regex.compile(r"^[a-z]{2}(?:-[A-Z]{2,4})?$")
_TYPE_NAME = safe_regex.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_COMMON_KEYS = frozenset({"stages", "timeout_s", "fail_mode"})
_GUARDRAIL_KEYS = _COMMON_KEYS | {"guardrail_id", "version", "converse"}
_COMPREHEND_KEYS = _COMMON_KEYS | {"language", "entity_types", "min_score"}


class FailMode(StrEnum):
    """What an unavailable service (error, throttle, timeout) means for the text it should have checked."""

    OPEN = "open"  # allow it; the DETECTOR_UNAVAILABLE finding is logged and counted
    CLOSED = "closed"  # block it: 503 guard_unavailable


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    stages: frozenset[Direction] = frozenset({Direction.INPUT, Direction.OUTPUT})
    timeout_s: float = DEFAULT_TIMEOUT_S  # per call, further bounded by the request's deadline
    fail_mode: FailMode = FailMode.CLOSED  # a guard does not fail open unless the tenant says so

    def to_mapping(self) -> dict[str, Any]:
        """The policy document's object for this detector (`GuardPolicy.to_mapping`)."""
        return self.common_mapping()

    def common_mapping(self) -> dict[str, Any]:
        return {
            "stages": sorted(s.value for s in self.stages),
            "timeout_s": self.timeout_s,
            "fail_mode": self.fail_mode.value,
        }


@dataclass(frozen=True, slots=True)
class BedrockGuardrailSettings(ServiceSettings):
    guardrail_id: str = ""
    version: str = "DRAFT"
    converse: bool = True  # also send it as Converse's guardrailConfig on Bedrock targets

    def to_mapping(self) -> dict[str, Any]:
        return {
            "guardrail_id": self.guardrail_id,
            "version": self.version,
            "converse": self.converse,
            **self.common_mapping(),
        }


@dataclass(frozen=True, slots=True)
class ComprehendSettings(ServiceSettings):
    language: str = "en"
    # Comprehend's PiiEntityType -> the gateway's finding type; empty: every type, default names.
    entity_types: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    min_score: float = 0.5

    def to_mapping(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "entity_types": dict(sorted(self.entity_types.items())),
            "min_score": self.min_score,
            **self.common_mapping(),
        }


@dataclass(frozen=True, slots=True)
class Detection:
    """What a service found in one text. `actions` is the service's own verdict on some findings
    (a guardrail's ANONYMIZED/BLOCKED), which wins over the policy's; the rest get the policy's."""

    findings: tuple[Finding, ...] = ()
    actions: Mapping[Finding, Action] = field(default_factory=lambda: MappingProxyType({}))


class DetectorUnavailableError(Exception):
    """The service could not check the text (error, throttle, timeout, access denied).

    `reason` is a short code (``timeout``, ``throttled``, ``AccessDeniedException``...), never text
    from the request."""

    def __init__(self, detector: str, reason: str) -> None:
        super().__init__(f"the {detector} detector is unavailable ({reason})")
        self.detector = detector
        self.reason = reason


class ServiceDetector(Protocol):
    """A detector that calls a service. Offsets are into the text given; raises `DetectorUnavailableError`."""

    @property
    def name(self) -> str: ...

    def detect(self, text: str, direction: Direction) -> Detection: ...


@runtime_checkable
class BatchServiceDetector(ServiceDetector, Protocol):
    """A service that checks several texts in one call (ApplyGuardrail takes a list of text blocks):
    one `Detection` per text, in order, offsets into each; raises `DetectorUnavailableError` for all."""

    def detect_many(self, texts: Sequence[str], direction: Direction) -> Sequence[Detection]: ...


class GuardUnavailableError(GatewayError):
    """503 `guard_unavailable`: a fail-closed detector could not check the text. Retryable."""

    status = 503
    error_type = "api_error"
    code = "guard_unavailable"

    def __init__(self, blocked_by: BlockedBy) -> None:
        where = "request" if blocked_by.direction is Direction.INPUT else "completion"
        super().__init__(
            f"The {where} could not be checked: the '{blocked_by.detector}' guard detector is unavailable "
            "and the guard policy fails closed. Retry shortly.",
            retry_after_s=1,
        )
        self.blocked_by = blocked_by


def _number(value: Any, where: str, low: float, high: float, errors: list[str], *, open_low: bool) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and (value > high or value < low or (open_low and value == low)):
        ok = False
    if not ok:
        bound = f"above {low:g} and at most {high:g}" if open_low else f"from {low:g} to {high:g}"
        errors.append(f"{where}: must be a number {bound}, got {value!r}")
        return None
    return float(value)


def _common(data: Mapping[str, Any], name: str, errors: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "stages" in data:
        stages = data["stages"]
        choices = {d.value for d in Direction}
        if not isinstance(stages, list) or not stages or not all(isinstance(s, str) and s in choices for s in stages):
            errors.append(f"{name}.stages: must be a non-empty list of input, output, got {stages!r}")
        else:
            values["stages"] = frozenset(Direction(s) for s in stages)
    if "timeout_s" in data:
        timeout = _number(data["timeout_s"], f"{name}.timeout_s", 0.0, MAX_TIMEOUT_S, errors, open_low=True)
        if timeout is not None:
            values["timeout_s"] = timeout
    if "fail_mode" in data:
        try:
            values["fail_mode"] = FailMode(data["fail_mode"])
        except ValueError:
            errors.append(f"{name}.fail_mode: must be open or closed, got {data['fail_mode']!r}")
    return values


def _unknown(data: Mapping[str, Any], name: str, allowed: frozenset[str], errors: list[str]) -> None:
    unknown = sorted(set(data) - allowed, key=str)
    if unknown:
        listed = ", ".join(f"'{k}'" for k in unknown)
        errors.append(f"{name}: unknown field {listed} (allowed: {', '.join(sorted(allowed))})")


def _guardrail(data: Mapping[str, Any], errors: list[str]) -> BedrockGuardrailSettings | None:
    name = BEDROCK_GUARDRAIL
    _unknown(data, name, _GUARDRAIL_KEYS, errors)
    values = _common(data, name, errors)
    guardrail_id = data.get("guardrail_id")
    if not isinstance(guardrail_id, str) or not _GUARDRAIL_ID.match(guardrail_id):
        errors.append(f"{name}.guardrail_id: required, a guardrail id (lower-case letters and digits) or its ARN")
    else:
        values["guardrail_id"] = guardrail_id
    if "version" in data:
        version = data["version"]
        if not isinstance(version, str) or not _GUARDRAIL_VERSION.match(version):
            errors.append(f'{name}.version: must be "DRAFT" or a version number as a string, got {version!r}')
        else:
            values["version"] = version
    if "converse" in data:
        if isinstance(data["converse"], bool):
            values["converse"] = data["converse"]
        else:
            errors.append(f"{name}.converse: must be true or false, got {data['converse']!r}")
    return BedrockGuardrailSettings(**values) if "guardrail_id" in values else None


def _comprehend(data: Mapping[str, Any], errors: list[str]) -> ComprehendSettings:
    name = COMPREHEND
    _unknown(data, name, _COMPREHEND_KEYS, errors)
    values = _common(data, name, errors)
    if "language" in data:
        language = data["language"]
        if not isinstance(language, str) or not _LANGUAGE.match(language):
            errors.append(f"{name}.language: must be a language code such as en, got {language!r}")
        else:
            values["language"] = language
    if "entity_types" in data:
        types = data["entity_types"]
        if (
            not isinstance(types, Mapping)
            or not types
            or not all(isinstance(k, str) and _TYPE_NAME.match(k) for k in types)
            or not all(isinstance(v, str) and _TYPE_NAME.match(v) for v in types.values())
        ):
            errors.append(
                f"{name}.entity_types: must be a non-empty object of Comprehend type -> finding type, "
                'both UPPER_SNAKE_CASE (e.g. {"NAME": "PERSON"})'
            )
        else:
            values["entity_types"] = MappingProxyType(dict(types))
    if "min_score" in data:
        score = _number(data["min_score"], f"{name}.min_score", 0.0, 1.0, errors, open_low=False)
        if score is not None:
            values["min_score"] = score
    return ComprehendSettings(**values)


def parse_service_settings(data: Mapping[str, Any], errors: list[str]) -> dict[str, ServiceSettings]:
    """The service detectors a policy document configures (its `bedrock_guardrail` and `comprehend`
    objects), by detector name; problems are appended to `errors`, each naming its field."""
    out: dict[str, ServiceSettings] = {}
    for name, parse in ((BEDROCK_GUARDRAIL, _guardrail), (COMPREHEND, _comprehend)):
        if name not in data:
            continue
        value = data[name]
        if not isinstance(value, Mapping):
            errors.append(f"{name}: must be an object")
            continue
        settings = parse(value, errors)
        if settings is not None:
            out[name] = settings
    return out
