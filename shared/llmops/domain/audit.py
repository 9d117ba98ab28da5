"""The audit trail: one record per request, hash-chained per shard so tampering shows.

Chaining. Records of a tenant are spread over `shards` chains (shard = sha256(request_id) mod N),
so concurrent requests rarely contend for the same chain head and the trail never serializes all
traffic. Within a shard each entry gets the next sequence number and stores

    body = canonical JSON of {record fields, shard, seq, prev_hash, prev_expires_at}
    hash = sha256(body)

where `prev_hash` is the previous entry's hash (`GENESIS_HASH` for the first). A per-shard head
holds the last (seq, hash); the adapter moves it with a write conditional on the old hash, in the
same transaction as the entry, so two writers cannot both extend the same predecessor.

`verify_shard` then detects:
- an altered entry (its hash no longer matches its body, or its successor links elsewhere),
- an inserted entry (a sequence number past the head, or one that is not a chain position),
- a deleted entry (a gap in the sequence; a missing tail is caught by the head).
Gaps whose predecessor had passed its retention (`prev_expires_at`, itself hashed) are counted as
expired, not as deletions, because DynamoDB's TTL deletes old entries.

Limits: sha256 has no secret, so someone who can rewrite the table and the heads can recompute a
consistent chain; exporting shard heads elsewhere (a log, S3 object lock) anchors them.

Text: prompts and completions are kept only as the tenant's policy allows (`text_evidence`): a
keyed hash by default, the guard-redacted text if the policy says so, never raw text.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from llmops.domain.tenancy import TextRetention

__all__ = [
    "DEFAULT_SHARDS",
    "GENESIS_HASH",
    "PROVIDER_GUARD_STAGE",
    "AuditLog",
    "AuditRecord",
    "AuditWriteOutcome",
    "ChainEntry",
    "ChainProblem",
    "GuardVerdict",
    "OutputScan",
    "ProblemKind",
    "ShardHead",
    "StoredEntry",
    "TextEvidence",
    "VerifyReport",
    "canonical_json",
    "chain_entry",
    "provider_filter_verdict",
    "shard_for",
    "text_evidence",
    "verify_shard",
]

DEFAULT_SHARDS = 16
GENESIS_HASH = "0" * 64
_DAY_S = 86400


def canonical_json(value: Any) -> str:
    """One byte sequence per value: sorted keys, no whitespace, UTF-8, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def shard_for(request_id: str, shards: int = DEFAULT_SHARDS) -> int:
    return int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big") % shards


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    """What a guard decided: its action and how many findings of each type. Never the values."""

    stage: str  # "input" | "output" (the gateway's guards) | "provider" (the model provider's own filter)
    action: str  # "allow" | "redact" | "block"; "intervened" for the provider's filter
    findings: Mapping[str, int] = field(default_factory=dict)
    # Service detectors (bedrock_guardrail, comprehend) that could not check the text, by name:
    # their DETECTOR_UNAVAILABLE findings, for the GuardDetectorFailures metric's detector dimension.
    unavailable: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "stage": self.stage,
            "action": self.action,
            "findings": dict(sorted(self.findings.items())),
        }
        if self.unavailable:  # only when there were failures: older records keep their exact shape
            out["unavailable"] = dict(sorted(self.unavailable.items()))
        return out


PROVIDER_GUARD_STAGE = "provider"


def provider_filter_verdict() -> GuardVerdict:
    """The provider's own content filter ended the answer (Bedrock's stopReason `guardrail_intervened`:
    the guardrail on the Converse call blocked or masked; a SageMaker model's `content_filter`), which
    the caller sees as finish_reason `content_filter`. Which entries it found is the provider's to say."""
    return GuardVerdict(stage=PROVIDER_GUARD_STAGE, action="intervened")


@dataclass(frozen=True, slots=True)
class TextEvidence:
    mode: TextRetention  # HASH or REDACTED
    value: str

    def to_dict(self) -> dict[str, str]:
        return {"mode": self.mode.value, "value": self.value}


def text_evidence(redacted_text: str | None, policy: TextRetention, pepper: str) -> TextEvidence | None:
    """What the audit record may keep of a prompt or completion under the tenant's policy.

    Callers pass the guard-redacted text; HASH keeps only HMAC-SHA256(pepper, text), which proves
    that a text presented later is the one that was sent without the trail revealing it.
    """
    if redacted_text is None or policy is TextRetention.NONE:
        return None
    if policy is TextRetention.REDACTED:
        return TextEvidence(TextRetention.REDACTED, redacted_text)
    if not pepper:
        raise ValueError("hashing audit text needs a pepper")
    digest = hmac.new(pepper.encode(), redacted_text.encode(), hashlib.sha256).hexdigest()
    return TextEvidence(TextRetention.HASH, f"hmac-sha256:{digest}")


@dataclass(frozen=True, slots=True)
class OutputScan:
    """What the output guard scanned of a streamed completion: counts, never text.

    `chars` arrived from the model; `scanned` went through the engine while streaming (look-behind
    included; the final whole-text pass, whose verdict is the record's output verdict, is not);
    `window` is the guard's look-behind (characters); `max_held` the most characters received but
    not yet released at any moment; `buffered_reason` says why nothing streamed, if so; `diverged`:
    the final pass disagreed with text already sent, so the stream was cut.
    """

    chars: int
    scanned: int
    scans: int
    window: int
    max_held: int = 0
    buffered_reason: str | None = None
    diverged: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "chars": self.chars,
            "scanned": self.scanned,
            "scans": self.scans,
            "window": self.window,
            "max_held": self.max_held,
            "buffered_reason": self.buffered_reason,
            "diverged": self.diverged,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutputScan:
        return cls(
            chars=int(data["chars"]),
            scanned=int(data["scanned"]),
            scans=int(data["scans"]),
            window=int(data["window"]),
            max_held=int(data.get("max_held", 0)),
            buffered_reason=data.get("buffered_reason"),
            diverged=bool(data.get("diverged", False)),
        )


@dataclass(frozen=True, slots=True)
class AuditRecord:
    request_id: str
    tenant_id: str
    key_prefix: str
    started_at: float  # epoch seconds
    finished_at: float
    status: int
    error_code: str | None = None
    alias: str = ""
    target: str = ""
    variant: str = ""
    prompt_version: str | None = None
    guard: tuple[GuardVerdict, ...] = ()
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    stage_ms: Mapping[str, float] = field(default_factory=dict)
    cache_hit: bool = False
    streamed: bool = False
    prompt: TextEvidence | None = None
    completion: TextEvidence | None = None
    settle_pending: bool = False  # quota settle was dead-lettered; see PendingSettlement
    retention_days: int = 365
    output_scan: OutputScan | None = None  # streamed answers that reached the output guard
    embedding_inputs: int | None = None  # POST /v1/embeddings: how many texts (never the texts)
    # Counts only, never contents or tool names: the request's part types over all its messages
    # ({"text": 3, "image": 1, "tool_call": 2, "tool_result": 2}), the tools it offered, and the
    # tool calls in the answer.
    parts: Mapping[str, int] = field(default_factory=dict)
    tools_offered: int = 0
    tool_calls: int = 0

    @property
    def expires_at(self) -> int:
        return int(self.started_at + self.retention_days * _DAY_S)

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "tenant_id": self.tenant_id,
            "key_prefix": self.key_prefix,
            "started_at": round(self.started_at, 6),
            "finished_at": round(self.finished_at, 6),
            "status": self.status,
            "error_code": self.error_code,
            "alias": self.alias,
            "target": self.target,
            "variant": self.variant,
            "prompt_version": self.prompt_version,
            "guard": [g.to_dict() for g in self.guard],
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": round(self.cost_usd, 9),
            "stage_ms": {k: round(v, 3) for k, v in sorted(self.stage_ms.items())},
            "cache_hit": self.cache_hit,
            "streamed": self.streamed,
            "prompt": self.prompt.to_dict() if self.prompt else None,
            "completion": self.completion.to_dict() if self.completion else None,
            "settle_pending": self.settle_pending,
            "retention_days": self.retention_days,
            # Only on streamed answers, so every other record keeps its canonical body.
            **({"output_scan": self.output_scan.to_dict()} if self.output_scan else {}),
            # Only on embedding requests, for the same reason.
            **({"embedding_inputs": self.embedding_inputs} if self.embedding_inputs is not None else {}),
            # Only when there is something to count, for the same reason (a refused request has no parts).
            **({"parts": dict(sorted(self.parts.items()))} if self.parts else {}),
            **({"tools_offered": self.tools_offered} if self.tools_offered else {}),
            **({"tool_calls": self.tool_calls} if self.tool_calls else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditRecord:
        def evidence(value: Any) -> TextEvidence | None:
            if not value:
                return None
            return TextEvidence(TextRetention(value["mode"]), str(value["value"]))

        return cls(
            request_id=str(data["request_id"]),
            tenant_id=str(data["tenant_id"]),
            key_prefix=str(data["key_prefix"]),
            started_at=float(data["started_at"]),
            finished_at=float(data["finished_at"]),
            status=int(data["status"]),
            error_code=data.get("error_code"),
            alias=str(data.get("alias", "")),
            target=str(data.get("target", "")),
            variant=str(data.get("variant", "")),
            prompt_version=data.get("prompt_version"),
            guard=tuple(
                GuardVerdict(str(g["stage"]), str(g["action"]), {str(k): int(v) for k, v in g["findings"].items()})
                for g in data.get("guard", ())
            ),
            input_tokens=int(data.get("input_tokens", 0)),
            output_tokens=int(data.get("output_tokens", 0)),
            cost_usd=float(data.get("cost_usd", 0.0)),
            stage_ms={str(k): float(v) for k, v in data.get("stage_ms", {}).items()},
            cache_hit=bool(data.get("cache_hit", False)),
            streamed=bool(data.get("streamed", False)),
            prompt=evidence(data.get("prompt")),
            completion=evidence(data.get("completion")),
            settle_pending=bool(data.get("settle_pending", False)),
            retention_days=int(data.get("retention_days", 365)),
            output_scan=OutputScan.from_dict(data["output_scan"]) if data.get("output_scan") else None,
            embedding_inputs=None if data.get("embedding_inputs") is None else int(data["embedding_inputs"]),
            parts={str(k): int(v) for k, v in data.get("parts", {}).items()},
            tools_offered=int(data.get("tools_offered", 0)),
            tool_calls=int(data.get("tool_calls", 0)),
        )


@dataclass(frozen=True, slots=True)
class ShardHead:
    seq: int
    hash: str
    expires_at: int | None  # of the entry at `seq`


@dataclass(frozen=True, slots=True)
class ChainEntry:
    """A record placed in its shard's chain, ready to store."""

    record: AuditRecord
    shard: int
    seq: int
    body: str
    hash: str

    @property
    def head(self) -> ShardHead:
        return ShardHead(self.seq, self.hash, self.record.expires_at)


def chain_entry(record: AuditRecord, shard: int, head: ShardHead | None) -> ChainEntry:
    """The entry that extends `head` (None: the shard's first entry)."""
    seq = 1 if head is None else head.seq + 1
    body = canonical_json(
        {
            "record": record.to_dict(),
            "shard": shard,
            "seq": seq,
            "prev_hash": GENESIS_HASH if head is None else head.hash,
            "prev_expires_at": None if head is None else head.expires_at,
        }
    )
    return ChainEntry(record, shard, seq, body, hashlib.sha256(body.encode()).hexdigest())


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """An entry as read back, before any of it is trusted."""

    seq: int | None  # from the sort key; None when the key is not a chain position
    sort_key: str
    body: str
    hash: str
    request_id: str
    tenant_id: str


class ProblemKind(StrEnum):
    ALTERED = "altered"
    INSERTED = "inserted"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class ChainProblem:
    shard: int
    seq: int | None
    kind: ProblemKind
    detail: str


@dataclass(slots=True)
class VerifyReport:
    tenant_id: str
    shards: int = 0
    records: int = 0
    expired_gaps: int = 0
    problems: list[ChainProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _parse_body(body: str) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) and isinstance(value.get("record"), dict) else None


def verify_shard(
    tenant_id: str, shard: int, entries: Sequence[StoredEntry], head: ShardHead | None, now: float
) -> tuple[list[ChainProblem], int]:
    """Checks one shard's chain; returns the problems and the number of gaps explained by TTL."""
    problems: list[ChainProblem] = []
    expired_gaps = 0

    def problem(seq: int | None, kind: ProblemKind, detail: str) -> None:
        problems.append(ChainProblem(shard, seq, kind, detail))

    positioned = sorted((e for e in entries if e.seq is not None), key=lambda e: e.seq or 0)
    for entry in entries:
        if entry.seq is None:
            problem(None, ProblemKind.INSERTED, f"entry {entry.sort_key!r} is not a chain position")

    prev: StoredEntry | None = None
    for entry in positioned:
        seq = entry.seq or 0
        body = _parse_body(entry.body)
        if body is None or hashlib.sha256(entry.body.encode()).hexdigest() != entry.hash:
            problem(seq, ProblemKind.ALTERED, "content does not match its hash")
        elif (
            body.get("seq") != seq
            or body.get("shard") != shard
            or body["record"].get("tenant_id") != tenant_id
            or body["record"].get("request_id") != entry.request_id
            or entry.tenant_id != tenant_id
        ):
            problem(seq, ProblemKind.ALTERED, "stored keys disagree with the hashed content")
        expected = 1 if prev is None else (prev.seq or 0) + 1
        if seq > expected:
            prev_expired = body is not None and (body.get("prev_expires_at") or now + 1) <= now
            if prev_expired:
                expired_gaps += 1
            else:
                problem(seq, ProblemKind.DELETED, f"entries {expected}..{seq - 1} are missing")
        elif body is not None:
            linked = GENESIS_HASH if prev is None else prev.hash
            if body.get("prev_hash") != linked:
                problem(
                    seq - 1 if prev is not None else seq,
                    ProblemKind.ALTERED,
                    f"entry {seq} links to a different predecessor",
                )
        prev = entry

    if head is None:
        if positioned:
            problem(None, ProblemKind.DELETED, "the shard head is missing")
        return problems, expired_gaps
    last_seq = (prev.seq or 0) if prev is not None else 0
    tail_expired = head.expires_at is not None and head.expires_at <= now
    if head.seq > last_seq:
        if tail_expired:
            expired_gaps += 1
        else:
            problem(head.seq, ProblemKind.DELETED, f"entries {last_seq + 1}..{head.seq} at the tail are missing")
    elif head.seq < last_seq:
        problem(
            last_seq,
            ProblemKind.INSERTED,
            f"entries after the head ({head.seq}) were added outside the chain",
        )
    elif prev is not None and prev.hash != head.hash:
        problem(last_seq, ProblemKind.ALTERED, "the last entry does not match the shard head")
    return problems, expired_gaps


class AuditWriteOutcome(StrEnum):
    WRITTEN = "written"
    DUPLICATE = "duplicate"  # this request id was already recorded: nothing written
    DEAD_LETTERED = "dead_lettered"  # the table write failed; the record is in the DLQ


class AuditLog(Protocol):
    def write(self, record: AuditRecord) -> AuditWriteOutcome: ...

    def get(self, tenant_id: str, request_id: str) -> AuditRecord | None:
        """Only the caller tenant's record; another tenant's request id reads as missing."""
        ...

    def verify(self, tenant_id: str, now: float) -> VerifyReport: ...
