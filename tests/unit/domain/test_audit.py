import dataclasses
import hashlib
import json
from collections import Counter

import pytest

from llmops.domain.audit import (
    GENESIS_HASH,
    AuditRecord,
    ChainEntry,
    GuardVerdict,
    ProblemKind,
    ShardHead,
    StoredEntry,
    canonical_json,
    chain_entry,
    shard_for,
    text_evidence,
    verify_shard,
)
from llmops.domain.tenancy import TextRetention

NOW = 1_800_000_000.0


def record(request_id: str, tenant: str = "acme", started_at: float = NOW, **kw: object) -> AuditRecord:
    return AuditRecord(
        request_id=request_id,
        tenant_id=tenant,
        key_prefix="abcd1234",
        started_at=started_at,
        finished_at=started_at + 0.25,
        status=200,
        **kw,  # type: ignore[arg-type]
    )


def build_chain(n: int, shard: int = 3, **kw: object) -> tuple[list[ChainEntry], ShardHead]:
    entries: list[ChainEntry] = []
    head: ShardHead | None = None
    for i in range(n):
        entry = chain_entry(record(f"req-{i}", **kw), shard, head)  # type: ignore[arg-type]
        entries.append(entry)
        head = entry.head
    assert head is not None
    return entries, head


def stored(entry: ChainEntry, **changes: object) -> StoredEntry:
    base = StoredEntry(
        seq=entry.seq,
        sort_key=f"r#{entry.seq:012d}",
        body=entry.body,
        hash=entry.hash,
        request_id=entry.record.request_id,
        tenant_id=entry.record.tenant_id,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def kinds(problems: list) -> list[ProblemKind]:  # type: ignore[type-arg]
    return [p.kind for p in problems]


def test_canonical_json_is_order_independent_and_compact() -> None:
    assert canonical_json({"b": 1, "a": [1, "é"]}) == canonical_json({"a": [1, "é"], "b": 1}) == '{"a":[1,"é"],"b":1}'
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_shards_are_stable_in_range_and_spread() -> None:
    assert shard_for("req-1") == shard_for("req-1")
    counts = Counter(shard_for(f"req-{i}") for i in range(1600))
    assert set(counts) == set(range(16))
    assert min(counts.values()) > 50


def test_entries_chain_by_sequence_and_previous_hash() -> None:
    entries, head = build_chain(3)
    first, second, third = entries
    assert [e.seq for e in entries] == [1, 2, 3]
    assert json.loads(first.body)["prev_hash"] == GENESIS_HASH
    assert json.loads(second.body)["prev_hash"] == first.hash
    assert json.loads(third.body)["prev_expires_at"] == second.record.expires_at
    assert first.hash == hashlib.sha256(first.body.encode()).hexdigest()
    assert head == ShardHead(3, third.hash, third.record.expires_at)


def test_an_intact_chain_verifies() -> None:
    entries, head = build_chain(5)
    problems, expired = verify_shard("acme", 3, [stored(e) for e in entries], head, NOW)
    assert problems == [] and expired == 0


def test_an_edited_record_is_detected() -> None:
    entries, head = build_chain(5)
    rows = [stored(e) for e in entries]
    rows[2] = dataclasses.replace(rows[2], body=rows[2].body.replace('"status":200', '"status":500'))
    problems, _ = verify_shard("acme", 3, rows, head, NOW)
    assert kinds(problems) == [ProblemKind.ALTERED]
    assert problems[0].seq == 3


def test_an_edited_record_with_a_recomputed_hash_breaks_the_next_link() -> None:
    entries, head = build_chain(5)
    rows = [stored(e) for e in entries]
    forged = rows[1].body.replace('"status":200', '"status":500')
    rows[1] = dataclasses.replace(rows[1], body=forged, hash=hashlib.sha256(forged.encode()).hexdigest())
    problems, _ = verify_shard("acme", 3, rows, head, NOW)
    assert kinds(problems) == [ProblemKind.ALTERED]
    assert problems[0].seq == 2


def test_moving_a_record_to_another_tenant_or_request_id_is_detected() -> None:
    entries, head = build_chain(3)
    rows = [stored(e) for e in entries]
    rows[0] = dataclasses.replace(rows[0], request_id="someone-else")
    problems, _ = verify_shard("acme", 3, rows, head, NOW)
    assert kinds(problems) == [ProblemKind.ALTERED]
    problems, _ = verify_shard("other", 3, [stored(e) for e in entries], head, NOW)
    assert ProblemKind.ALTERED in kinds(problems)


def test_a_deleted_middle_record_is_detected() -> None:
    entries, head = build_chain(5)
    rows = [stored(e) for i, e in enumerate(entries) if i != 2]
    problems, _ = verify_shard("acme", 3, rows, head, NOW)
    assert kinds(problems) == [ProblemKind.DELETED]
    assert "3..3" in problems[0].detail


def test_a_deleted_tail_record_is_caught_by_the_head() -> None:
    entries, head = build_chain(5)
    problems, _ = verify_shard("acme", 3, [stored(e) for e in entries[:-1]], head, NOW)
    assert kinds(problems) == [ProblemKind.DELETED]


def test_a_deleted_head_is_detected() -> None:
    entries, _ = build_chain(2)
    problems, _ = verify_shard("acme", 3, [stored(e) for e in entries], None, NOW)
    assert kinds(problems) == [ProblemKind.DELETED]


def test_a_record_appended_without_the_head_is_an_insertion() -> None:
    entries, head = build_chain(4)
    stale_head = entries[2].head
    problems, _ = verify_shard("acme", 3, [stored(e) for e in entries], stale_head, NOW)
    assert kinds(problems) == [ProblemKind.INSERTED]
    assert head.seq == 4


def test_a_record_at_a_non_chain_position_is_an_insertion() -> None:
    entries, head = build_chain(3)
    rows = [stored(e) for e in entries]
    rows.append(dataclasses.replace(rows[1], seq=None, sort_key="r#000000000002a"))
    problems, _ = verify_shard("acme", 3, rows, head, NOW)
    assert kinds(problems) == [ProblemKind.INSERTED]


def test_gaps_left_by_retention_ttl_are_not_deletions() -> None:
    entries, head = build_chain(4, started_at=NOW - 400 * 86400, retention_days=365)
    problems, expired = verify_shard("acme", 3, [stored(e) for e in entries[2:]], head, NOW)
    assert problems == [] and expired == 1
    problems, expired = verify_shard("acme", 3, [], head, NOW)
    assert problems == [] and expired == 1


def test_gaps_before_retention_ends_are_deletions() -> None:
    entries, head = build_chain(4)
    problems, _ = verify_shard("acme", 3, [stored(e) for e in entries[2:]], head, NOW)
    assert kinds(problems) == [ProblemKind.DELETED]


def test_text_evidence_follows_the_tenant_policy() -> None:
    assert text_evidence("hi [EMAIL]", TextRetention.NONE, "p") is None
    assert text_evidence(None, TextRetention.REDACTED, "p") is None
    redacted = text_evidence("hi [EMAIL]", TextRetention.REDACTED, "p")
    assert redacted is not None and redacted.value == "hi [EMAIL]"
    hashed = text_evidence("hi [EMAIL]", TextRetention.HASH, "p")
    assert hashed is not None and hashed.value.startswith("hmac-sha256:") and "hi" not in hashed.value
    other = text_evidence("hi [EMAIL]", TextRetention.HASH, "q")
    assert other is not None and other.value != hashed.value
    with pytest.raises(ValueError, match="pepper"):
        text_evidence("x", TextRetention.HASH, "")


def test_records_round_trip_through_their_dict_form() -> None:
    original = record(
        "req-9",
        alias="chat",
        target="bedrock:m",
        variant="candidate",
        prompt_version="support@3",
        guard=(GuardVerdict("input", "redact", {"EMAIL": 2}),),
        input_tokens=10,
        output_tokens=5,
        cost_usd=0.000123,
        stage_ms={"provider": 120.5, "guard_in": 1.25},
        cache_hit=True,
        prompt=text_evidence("x", TextRetention.HASH, "p"),
        error_code=None,
    )
    assert AuditRecord.from_dict(json.loads(canonical_json(original.to_dict()))) == original
    assert original.expires_at == int(NOW + 365 * 86400)
