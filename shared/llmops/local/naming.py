"""Names the local stack gives its resources, shared by `llmops serve` and the CLI commands."""

from __future__ import annotations

__all__ = ["LOCAL_REGION", "LOCAL_STATE_FILE", "local_resource_name", "local_table_name"]

LOCAL_STATE_FILE = "local.json"
LOCAL_REGION = "us-east-1"


def local_resource_name(name: str) -> str:
    return f"llmops-local-{name}"


def local_table_name(logical_name: str) -> str:
    return local_resource_name(logical_name)
