"""The chat completion request path, stage by stage, as DESIGN.md orders it.

This is where the stages meet: parse -> route -> provider (with fallbacks) -> render. Guard,
quota and audit stages plug in here as they land; each stage's latency is recorded by name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from llmops.application.openai_schema import ChatCompletionRequest
from llmops.application.rendering import chat_completion, sse_stream
from llmops.application.responses import EVENT_STREAM, ApiResponse
from llmops.domain.completions import CompletionResult, CompletionService
from llmops.domain.tenancy import TenantContext

__all__ = ["ChatEndpoint", "provenance_headers"]


def provenance_headers(request_id: str, result: CompletionResult) -> dict[str, str]:
    return {
        "x-request-id": request_id,
        "x-llmops-route": result.route.alias,
        "x-llmops-target": result.target.display,
        "x-llmops-cost-usd": f"{result.cost_usd:.8f}",
        "x-llmops-attempts": str(len(result.attempts)),
    }


@dataclass(slots=True)
class ChatEndpoint:
    completions: CompletionService

    def handle(self, body: ChatCompletionRequest, tenant: TenantContext, request_id: str) -> ApiResponse:
        request = body.to_domain()
        result = self.completions.complete(request, tenant)
        created = int(time.time())
        completion_id = f"chatcmpl-{request_id}"
        headers = provenance_headers(request_id, result)
        if request.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            text = sse_stream(completion_id, created, request.model, result.completion, include_usage)
            return ApiResponse(200, text, EVENT_STREAM, {**headers, "Cache-Control": "no-cache"})
        return ApiResponse.json(
            200, chat_completion(completion_id, created, request.model, result.completion), headers
        )
