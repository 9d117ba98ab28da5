"""`POST /v1/feedback`: users rate a response by its request id; the rating joins its audit record."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from llmops.domain.feedback import (
    MAX_USERS_PER_KEY_PER_REQUEST,
    AuditSummary,
    Feedback,
    FeedbackStore,
    submit_feedback,
)
from llmops.domain.tenancy import TenantContext

if TYPE_CHECKING:
    # Type only: the adapter imports botocore, which the gateway's cold init should not pay for.
    from llmops.adapters.dynamodb.audit_log import DynamoAuditLog
    from llmops.domain.guard import GuardEngine

__all__ = ["AuditRecordLookup", "FeedbackRequest", "record_feedback"]


class FeedbackRequest(BaseModel):
    """The schema documented in OpenAPI; `submit_feedback` applies the product rules."""

    # Built on the first POST /v1/feedback, not on every cold start: most containers never serve one.
    model_config = ConfigDict(extra="forbid", defer_build=True)

    request_id: Annotated[str, Field(min_length=1, max_length=256)]
    score: StrictBool | StrictInt | StrictStr = Field(
        description="'up'/'down' (or true/false), or an integer rating 1-5."
    )
    label: str | None = Field(default=None, description="hallucination, unsafe, unhelpful, wrong_format, good, other")
    comment: Annotated[str | None, Field(max_length=4000)] = None
    user: Annotated[str | None, Field(max_length=256)] = Field(
        default=None,
        description="The end user of this key who rates; narrows the rater (key id + '/' + user), never "
        f"names another key. At most {MAX_USERS_PER_KEY_PER_REQUEST} users per key per request.",
    )


class AuditRecordLookup:
    """Implements the feedback AuditLookup port on the audit trail's `by-request` index."""

    def __init__(self, audit: DynamoAuditLog) -> None:
        self._audit = audit

    def find(self, request_id: str) -> AuditSummary | None:
        records = self._audit.find_any_tenant(request_id)
        if not records:
            return None
        record = records[0]
        return AuditSummary(
            request_id=record.request_id,
            tenant_id=record.tenant_id,
            target_id=record.target,
            alias=record.alias,
            prompt_version=record.prompt_version,
            cache_hit=record.cache_hit,
        )


def record_feedback(
    body: FeedbackRequest, tenant: TenantContext, audit: AuditRecordLookup, store: FeedbackStore, guard: GuardEngine
) -> Feedback:
    return submit_feedback(
        body.model_dump(exclude_none=True),
        tenant,
        audit,
        store,
        # Comments are free text from end users: stored only after the guard's redaction.
        redact=lambda text: guard.scan(text, "input").redacted_text,
        now=time.time(),
    )
