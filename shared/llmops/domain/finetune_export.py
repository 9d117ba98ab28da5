"""Redacted audit records plus user feedback -> chat fine-tuning JSONL.

One line per rated request whose audit record kept the guard-redacted prompt and completion:

    {"messages": [{"role": "system", ...}?, {"role": "user", ...}, {"role": "assistant", ...}],
     "score": 0.0-1.0, "negative": bool, "label": "hallucination" | ... | null,
     "metadata": {"request_id", "alias", "target", "prompt_version"}}

Records that kept only a hash (or nothing), failed, were served from cache or were blocked by a
guard are skipped: there is no text to learn from, or the text is not what the user saw. Feedback
comments are not exported (free text from users is the likeliest place for PII the guard missed).
When one request has several ratings, the latest one counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmops.domain.audit import AuditRecord
from llmops.domain.feedback import Feedback
from llmops.domain.tenancy import TextRetention

__all__ = ["FinetuneExport", "export_finetune_jsonl", "finetune_example"]


@dataclass(frozen=True, slots=True)
class FinetuneExport:
    lines: tuple[str, ...]
    skipped: Mapping[str, int] = field(default_factory=dict)  # reason -> count

    @property
    def count(self) -> int:
        return len(self.lines)

    def jsonl(self) -> str:
        return "".join(f"{line}\n" for line in self.lines)


def _redacted(evidence: Any) -> str | None:
    if evidence is None or evidence.mode is not TextRetention.REDACTED or not evidence.value:
        return None
    return str(evidence.value)


def _skip_reason(record: AuditRecord) -> str | None:
    if record.status >= 400:
        return "failed"
    if record.cache_hit:
        return "cache_hit"
    if any(verdict.action == "block" for verdict in record.guard):
        return "blocked"
    if _redacted(record.prompt) is None or _redacted(record.completion) is None:
        return "no_redacted_text"
    return None


def finetune_example(
    record: AuditRecord, feedback: Feedback | None, system_prompt: str | None = None
) -> dict[str, Any]:
    """The JSONL object for one request; the record must have redacted prompt and completion."""
    prompt, completion = _redacted(record.prompt), _redacted(record.completion)
    if prompt is None or completion is None:
        raise ValueError(f"audit record {record.request_id} kept no redacted text")
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
    return {
        "messages": messages,
        "score": feedback.score.value if feedback else None,
        "negative": feedback.score.negative if feedback else None,
        "label": feedback.label.value if feedback and feedback.label else None,
        "metadata": {
            "request_id": record.request_id,
            "alias": record.alias,
            "target": record.target,
            "prompt_version": record.prompt_version,
        },
    }


def export_finetune_jsonl(
    records: Iterable[AuditRecord],
    feedback: Iterable[Feedback],
    system_prompt: str | None = None,
    min_score: float | None = None,
    include_unrated: bool = False,
) -> FinetuneExport:
    """Joins feedback to audit records by request id.

    `min_score` keeps only examples rated at least that high (e.g. 0.75 for supervised fine-tuning
    on good answers); without it, negative examples stay in with their labels, for preference
    tuning or evaluation sets. `include_unrated` keeps records nobody rated, with a null score.
    """
    latest: dict[str, Feedback] = {}
    for item in feedback:
        current = latest.get(item.request_id)
        if current is None or item.created_at >= current.created_at:
            latest[item.request_id] = item

    lines: list[str] = []
    skipped: dict[str, int] = {}
    for record in records:
        reason = _skip_reason(record)
        rating = latest.get(record.request_id)
        if reason is None and rating is None and (not include_unrated or min_score is not None):
            reason = "unrated"
        if reason is None and rating is not None and min_score is not None and rating.score.value < min_score:
            reason = "below_min_score"
        if reason is not None:
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        lines.append(json.dumps(finetune_example(record, rating, system_prompt), ensure_ascii=False, sort_keys=True))
    return FinetuneExport(lines=tuple(lines), skipped=dict(sorted(skipped.items())))
