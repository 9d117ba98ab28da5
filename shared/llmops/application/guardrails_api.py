"""`POST /v1/guardrails/scan`: the guard engine on one text, answering the contract in docs/architecture.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    # Type only: the engine's detectors load on first use, not in the gateway's cold init.
    from llmops.domain.guard import GuardEngine

__all__ = ["ScanRequest", "scan"]

MAX_CONTEXT_DOCUMENTS = 64


class ScanRequest(BaseModel):
    # Built on the first POST /v1/guardrails/scan, not on every cold start: most containers never serve one.
    model_config = ConfigDict(extra="forbid", defer_build=True)

    text: str
    direction: Literal["input", "output"] = "input"
    context: Annotated[list[str] | None, Field(max_length=MAX_CONTEXT_DOCUMENTS)] = None
    query: str | None = Field(default=None, description="The question the text answers, for RELEVANCE.")


def scan(engine: GuardEngine, body: ScanRequest) -> dict[str, Any]:
    result = engine.scan(body.text, body.direction, body.context or (), query=body.query or "")
    return result.to_dict()
