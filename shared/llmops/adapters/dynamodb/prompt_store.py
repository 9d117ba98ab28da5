"""The prompt registry on the Prompts table, and the gateway's cached resolver in front of it.

`DynamoPromptStore` is the registry store (`registry_store`: conditional writes, immutable
versions, labels with history) with the prompt kind and its items (`prompt_items`), plus what only
prompts have: listing by tenant and resolving a request's reference in one scope.

The store names prompts by scoped id (`team-a/support`, or `support` for a shared template; see
`llmops.domain.prompts`). The gateway resolves a tenant's references through
`CachedPromptResolver`: versions are immutable and cached for the container's life, labels (and
whether a tenant has its own template of an id) for `ttl_s` (the config TTL), so a `label set`,
`rollback` or first push takes effect within that TTL without a redeploy.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from llmops.adapters.dynamodb.prompt_items import PROMPT_CODEC
from llmops.adapters.dynamodb.registry_store import DynamoRegistryStore
from llmops.domain.prompts import (
    PROMPT_NOT_FOUND,
    PROMPTS,
    LabelState,
    PromptNotFoundError,
    PromptRef,
    PromptSource,
    PromptVersion,
    ResolvedPrompt,
    render,
    scoped_prompt_id,
    split_scoped_prompt_id,
)
from llmops.domain.registry import PushResult, SubjectSummary
from llmops.domain.revalidating_cache import Defer, RevalidatingCache

__all__ = ["CachedPromptResolver", "DynamoPromptStore", "PromptSummary", "PushResult", "prompt_summaries"]

_MAX_NEGATIVE_AND_LABEL_ENTRIES = 4096


@dataclass(frozen=True, slots=True)
class PromptSummary(SubjectSummary):
    """A prompt as a listing shows it; `subject` is its scoped id."""

    @property
    def scoped_id(self) -> str:
        return self.subject

    @property
    def prompt_id(self) -> str:
        """The bare id."""
        return split_scoped_prompt_id(self.subject)[1]

    @property
    def tenant_id(self) -> str | None:
        """The owning tenant; None: shared."""
        return split_scoped_prompt_id(self.subject)[0]


def prompt_summaries(subjects: Iterable[SubjectSummary]) -> list[PromptSummary]:
    """The registry's listing as prompts: by tenant (shared first), then id."""
    summaries = [PromptSummary(s.subject, s.latest_version, s.latest_created_at, s.labels) for s in subjects]
    return sorted(summaries, key=lambda s: (s.tenant_id or "", s.prompt_id))


class DynamoPromptStore(DynamoRegistryStore[PromptVersion]):
    """`client` is a boto3 DynamoDB client (standard retries); `table` the Prompts table name.
    Subjects are scoped ids."""

    def __init__(self, client: Any, table: str) -> None:
        super().__init__(client, table, PROMPTS, PROMPT_CODEC)

    def list_prompts(self) -> list[PromptSummary]:
        """Every prompt (shared and every tenant's) with its latest version and labels."""
        return prompt_summaries(self.list_subjects())

    def resolve_version(self, ref: PromptRef, tenant_id: str | None = None) -> PromptVersion:
        """Uncached: the version a reference points at now, in exactly one scope (`tenant_id`'s
        own templates, or the shared ones when None)."""
        selector = ref.version if ref.version is not None else str(ref.label)
        found = self.resolve(scoped_prompt_id(ref.prompt_id, tenant_id), selector)
        if found is None:
            raise PromptNotFoundError(f"No prompt {ref.selector}.", param="prompt")
        return found


class CachedPromptResolver:
    """The gateway's view of the registry: `resolve(ref, tenant_id)` -> (version, rendered messages).

    A reference resolves in the tenant's own scope when the tenant has a template of that id, else
    in the shared scope; another tenant's templates are never read, so they answer exactly as a
    missing one does. Versions are immutable, so they are cached without expiry (bounded, least
    recently used out). Labels, whether a tenant has its own template of an id, and lookups that
    found nothing, are cached for `ttl_s`; in the TTL's last quarter a request defers the re-read
    of a label or scope entry until after its response (`defer`, `llmops.domain.revalidating_cache`).
    If the table is unreachable, the stale entry keeps serving and is tried again a TTL later.
    """

    def __init__(
        self,
        source: PromptSource,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_versions: int = 512,
        defer: Defer | None = None,
    ) -> None:
        self._source = source
        self._ttl_s = ttl_s
        self._clock = clock
        self._max_versions = max_versions
        self._lock = threading.Lock()
        self._versions: OrderedDict[tuple[str, int], PromptVersion] = OrderedDict()
        self._labels: RevalidatingCache[tuple[str, str], LabelState | None] = RevalidatingCache(
            ttl_s, defer=defer, clock=clock, max_entries=_MAX_NEGATIVE_AND_LABEL_ENTRIES
        )
        self._missing_versions: dict[tuple[str, int], float] = {}
        # scoped id -> whether the tenant has versions of it
        self._owned: RevalidatingCache[str, bool] = RevalidatingCache(
            ttl_s, defer=defer, clock=clock, max_entries=_MAX_NEGATIVE_AND_LABEL_ENTRIES
        )

    def resolve(self, ref: PromptRef, tenant_id: str | None = None) -> ResolvedPrompt:
        """Raises `PromptNotFoundError` (404) or `BadRequestError` (400, bad variables).
        `tenant_id` None resolves among shared templates only."""
        version = self.version_for(ref, tenant_id)
        return ResolvedPrompt(version, render(version, ref.variables))

    def version_for(self, ref: PromptRef, tenant_id: str | None = None) -> PromptVersion:
        subject = self._subject(ref.prompt_id, tenant_id)
        number = ref.version if ref.version is not None else self._label_version(subject, str(ref.label))
        found = self._version(subject, number) if number is not None else None
        if found is None:
            raise PromptNotFoundError(PROMPT_NOT_FOUND, param="prompt")
        return found

    def _subject(self, prompt_id: str, tenant_id: str | None) -> str:
        """The tenant's own template of `prompt_id` if it has one (it shadows a shared template of
        the same id as a whole, so versions and labels never mix scopes), else the shared one."""
        if tenant_id is None:
            return prompt_id
        own = scoped_prompt_id(prompt_id, tenant_id)
        owned = self._owned.get(own, partial(self._source.has_versions, own))
        return own if owned else prompt_id

    def _label_version(self, prompt_id: str, label: str) -> int | None:
        # A stale label beats an outage; with nothing cached the caller gets the error.
        state = self._labels.get((prompt_id, label), partial(self._source.get_label, prompt_id, label))
        return state.version if state else None

    def _version(self, prompt_id: str, number: int) -> PromptVersion | None:
        key = (prompt_id, number)
        now = self._clock()
        with self._lock:
            if key in self._versions:
                self._versions.move_to_end(key)
                return self._versions[key]
            missed_at = self._missing_versions.get(key)
        if missed_at is not None and now - missed_at < self._ttl_s:
            return None
        found = self._source.get_version(prompt_id, number)
        with self._lock:
            if found is None:
                if len(self._missing_versions) >= _MAX_NEGATIVE_AND_LABEL_ENTRIES:
                    self._missing_versions.clear()
                self._missing_versions[key] = now
                return None
            self._missing_versions.pop(key, None)
            self._versions[key] = found
            while len(self._versions) > self._max_versions:
                self._versions.popitem(last=False)
        return found
