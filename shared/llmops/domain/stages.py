"""The stages of the chat request path, by name and in request order.

One vocabulary for everything that names a stage: the chat path that times them
(`llmops.application.chat_endpoint`, `llmops.domain.completions` for the provider stage), the
per-stage duration metric's `stage` dimension (`llmops.observability.emit`), the debug dashboard
(`infra.capabilities.dashboards`) and the audit record's `stage_ms` keys. A stage timed under any
other name would never reach the metric or the dashboard, so the timer accepts only these.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["RequestStage"]


class RequestStage(StrEnum):
    """Values are the `stage` dimension and `stage_ms` keys; changing one renames a published metric."""

    PARSE = "parse"
    INPUT_GUARD = "input_guard"
    ROUTE = "route"
    CACHE_LOOKUP = "cache_lookup"
    QUOTA_RESERVE = "quota_reserve"
    PROVIDER = "provider"
    OUTPUT_GUARD = "output_guard"
    CACHE_STORE = "cache_store"
    RENDER = "render"
    # Last: the settle is written with the audit record, once the answer is out (`ChatEndpoint.record`).
    QUOTA_SETTLE = "quota_settle"
