"""Per-target fault injection for the model emulators: latency, throttling, 5xx errors and timeouts.

Streaming calls get two more knobs: a pace of generation (first-token and per-token latency, which
non-streaming calls pay too, all at once, before their answer) and `fault_after_tokens`, which moves
a drawn throttle, error or timeout from before the response to the middle of the stream.

Faults are keyed by what the gateway targets: a Bedrock model id, or a SageMaker "endpoint" or
"endpoint/variant"; "*" applies to every key without a spec of its own. One seeded RNG drives every
decision so a sequential test sees the same sequence of outcomes on every run.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any

__all__ = ["WILDCARD", "FaultDecision", "FaultPlan", "FaultSpec", "Outcome"]

WILDCARD = "*"


class Outcome(StrEnum):
    OK = "ok"
    THROTTLED = "throttled"
    ERROR = "error"
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """What to do to calls for one key. Rates are probabilities per call and must sum to at most 1.

    `timeout_s` is how long a "timeout" call hangs before answering; it must exceed the client's read
    timeout (the default is just above the gateway's default 60 s and SageMaker's own 60 s limit).

    `error_status` picks the error an "error" call gets: 503 is the AWS service being unavailable,
    424 (Bedrock) a model error, anything else a 500-class failure (Bedrock
    InternalServerException; SageMaker ModelError carrying that status as OriginalStatusCode).

    `latency_ms` delays the start of the response (the whole answer, for a non-streaming call).
    `first_token_latency_ms` (prefill) and `token_latency_ms` (before each output token) pace the
    generation: a stream shows them token by token, a non-streaming answer waits for all of them.

    `fault_after_tokens` (None: off) makes a streaming call that drew a throttle, error or timeout
    fail after that many tokens instead of before the response: a modeled exception event in the
    stream, or for a timeout a stream that stops for `timeout_s`. Non-streaming calls ignore it.
    """

    latency_ms: float = 0.0
    throttle_rate: float = 0.0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_s: float = 65.0
    error_status: int = 500
    token_latency_ms: float = 0.0
    first_token_latency_ms: float = 0.0
    fault_after_tokens: int | None = None

    def __post_init__(self) -> None:
        rates = (self.throttle_rate, self.error_rate, self.timeout_rate)
        if any(not 0.0 <= r <= 1.0 for r in rates) or sum(rates) > 1.0 + 1e-9:
            raise ValueError("fault rates must each be in [0, 1] and sum to at most 1")
        if min(self.latency_ms, self.timeout_s, self.token_latency_ms, self.first_token_latency_ms) < 0:
            raise ValueError("latencies and timeout_s cannot be negative")
        if self.fault_after_tokens is not None and self.fault_after_tokens < 0:
            raise ValueError("fault_after_tokens cannot be negative")
        if not 400 <= self.error_status <= 599:
            raise ValueError("error_status must be an HTTP error status")

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> FaultSpec:
        known = {f.name for f in fields(cls)}
        unknown = set(doc) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        try:
            values: dict[str, Any] = {name: _field_value(name, value) for name, value in doc.items()}
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid fault spec: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _field_value(name: str, value: Any) -> Any:
    if name == "error_status":
        return int(value)
    if name == "fault_after_tokens":
        return None if value is None else int(value)
    return float(value)


@dataclass(frozen=True, slots=True)
class FaultDecision:
    key: str  # the key the call is counted under (the most specific one)
    outcome: Outcome
    latency_s: float
    timeout_s: float
    error_status: int
    token_latency_s: float = 0.0
    first_token_latency_s: float = 0.0
    fault_after_tokens: int | None = None

    def generation_s(self, tokens: int) -> float:
        """How long generating `tokens` output tokens takes at this call's pace."""
        return self.first_token_latency_s + tokens * self.token_latency_s if tokens else 0.0

    def fails_mid_stream(self) -> bool:
        """Whether a streaming call's drawn failure strikes after `fault_after_tokens` tokens."""
        return self.outcome is not Outcome.OK and self.fault_after_tokens is not None


class FaultPlan:
    """Thread-safe fault specs and per-key call statistics, shared by an emulator's request threads."""

    def __init__(self, seed: int | None = 0) -> None:
        self._lock = threading.Lock()
        self._specs: dict[str, FaultSpec] = {}
        self._stats: dict[str, Counter[str]] = {}
        self._rng = random.Random(seed)

    def set(self, key: str, spec: FaultSpec) -> None:
        with self._lock:
            self._specs[key] = spec

    def clear(self, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                self._specs.clear()
            else:
                self._specs.pop(key, None)

    def reset(self, seed: int | None = 0) -> None:
        """Clears specs and statistics and reseeds, so a test starts from a known state."""
        with self._lock:
            self._specs.clear()
            self._stats.clear()
            self._rng = random.Random(seed)

    def reseed(self, seed: int | None) -> None:
        """Restarts the sequence of draws; specs and statistics are kept."""
        with self._lock:
            self._rng = random.Random(seed)

    def specs(self) -> dict[str, FaultSpec]:
        with self._lock:
            return dict(self._specs)

    def stats(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {
                key: {"calls": sum(counts.values()), **{o.value: counts[o.value] for o in Outcome}}
                for key, counts in sorted(self._stats.items())
            }

    def decide(self, keys: Sequence[str]) -> FaultDecision:
        """Draws the fate of one call. `keys` go from most to least specific and must not be empty."""
        with self._lock:
            spec = next((self._specs[k] for k in (*keys, WILDCARD) if k in self._specs), FaultSpec())
            draw = self._rng.random()
            if draw < spec.throttle_rate:
                outcome = Outcome.THROTTLED
            elif draw < spec.throttle_rate + spec.error_rate:
                outcome = Outcome.ERROR
            elif draw < spec.throttle_rate + spec.error_rate + spec.timeout_rate:
                outcome = Outcome.TIMEOUT
            else:
                outcome = Outcome.OK
            self._stats.setdefault(keys[0], Counter())[outcome.value] += 1
        return FaultDecision(
            key=keys[0],
            outcome=outcome,
            latency_s=spec.latency_ms / 1000,
            timeout_s=spec.timeout_s,
            error_status=spec.error_status,
            token_latency_s=spec.token_latency_ms / 1000,
            first_token_latency_s=spec.first_token_latency_ms / 1000,
            fault_after_tokens=spec.fault_after_tokens,
        )
