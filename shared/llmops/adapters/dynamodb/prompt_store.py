"""The prompt registry on the Prompts table, and the gateway's cached resolver in front of it.

Writes are conditional so concurrent admins cannot corrupt the registry:
- a version is put with `attribute_not_exists(sk)`: versions are immutable and two pushes racing
  for the same number cannot both win (the loser re-reads and takes the next number);
- a label moves only if it still holds what the writer read (`version` and `size(history)`).

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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from llmops.adapters.dynamodb.prompt_items import (
    LABEL_SK_PREFIX,
    PROMPT_PK_PREFIX,
    VERSION_SK_PREFIX,
    label_from_item,
    label_item,
    label_sk,
    prompt_id_from_pk,
    prompt_pk,
    version_from_item,
    version_item,
    version_sk,
)
from llmops.domain.prompts import (
    PROMPT_NOT_FOUND,
    LabelState,
    PromptDraft,
    PromptNotFoundError,
    PromptRef,
    PromptSource,
    PromptVersion,
    ResolvedPrompt,
    render,
    scoped_prompt_id,
    split_scoped_prompt_id,
    validate_label,
    validate_scoped_prompt_id,
)

__all__ = ["CachedPromptResolver", "DynamoPromptStore", "PromptSummary", "PushResult"]

_MAX_WRITE_ATTEMPTS = 5
_MAX_LABEL_HISTORY = 50
_MAX_NEGATIVE_AND_LABEL_ENTRIES = 4096


def _conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


@dataclass(frozen=True, slots=True)
class PushResult:
    version: PromptVersion
    created: bool  # False: the latest version already had this content, nothing was written


@dataclass(frozen=True, slots=True)
class PromptSummary:
    prompt_id: str  # the bare id (or a guard policy's name)
    latest_version: int = 0
    latest_created_at: float = 0.0
    labels: dict[str, int] = field(default_factory=dict)
    tenant_id: str | None = None  # the owning tenant; None: shared

    @property
    def scoped_id(self) -> str:
        return scoped_prompt_id(self.prompt_id, self.tenant_id)


class DynamoPromptStore:
    """`client` is a boto3 DynamoDB client (standard retries); `table` the Prompts table name.

    `pk_prefix` is the key namespace: prompts by default; the guard policy registry reuses the
    label and listing operations under `guard#` (`llmops.adapters.dynamodb.guard_policy_store`).
    """

    def __init__(self, client: Any, table: str, pk_prefix: str = PROMPT_PK_PREFIX) -> None:
        self._client = client
        self._table = table
        self._pk_prefix = pk_prefix

    def _pk(self, subject_id: str) -> str:
        return prompt_pk(subject_id, self._pk_prefix)

    # -- raw items (shared with other namespaces' version formats) --------------------------------

    def get_raw_item(self, subject_id: str, sk: str, projection: str | None = None) -> dict[str, Any] | None:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"pk": {"S": self._pk(subject_id)}, "sk": {"S": sk}},
            "ConsistentRead": True,
        }
        if projection is not None:
            kwargs["ProjectionExpression"] = projection
        item: dict[str, Any] | None = self._client.get_item(**kwargs).get("Item")
        return item

    def latest_raw_version(self, subject_id: str) -> dict[str, Any] | None:
        items: list[dict[str, Any]] = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :v)",
            ExpressionAttributeValues={":pk": {"S": self._pk(subject_id)}, ":v": {"S": VERSION_SK_PREFIX}},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        ).get("Items", [])
        return items[0] if items else None

    def put_new_version_item(self, item: dict[str, Any]) -> bool:
        """Puts a version item unless its number is taken (False: someone else took it)."""
        try:
            self._client.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(sk)")
        except ClientError as exc:
            if _conditional_failure(exc):
                return False
            raise
        return True

    # -- reads (PromptSource) --------------------------------------------------------------------

    def get_version(self, prompt_id: str, version: int) -> PromptVersion | None:
        item = self.get_raw_item(prompt_id, version_sk(version))
        return version_from_item(item) if item else None

    def version_exists(self, prompt_id: str, version: int) -> bool:
        return self.get_raw_item(prompt_id, version_sk(version), projection="pk") is not None

    def has_versions(self, prompt_id: str) -> bool:
        return self.latest_raw_version(prompt_id) is not None

    def get_label(self, prompt_id: str, label: str) -> LabelState | None:
        item = self.get_raw_item(prompt_id, label_sk(label))
        return label_from_item(item) if item else None

    def latest_version(self, prompt_id: str) -> PromptVersion | None:
        item = self.latest_raw_version(prompt_id)
        return version_from_item(item) if item else None

    def list_versions(self, prompt_id: str) -> list[PromptVersion]:
        return [version_from_item(i) for i in self.query_raw_items(prompt_id, VERSION_SK_PREFIX)]

    def list_labels(self, prompt_id: str) -> list[LabelState]:
        return [label_from_item(i) for i in self.query_raw_items(prompt_id, LABEL_SK_PREFIX)]

    def list_prompts(self) -> list[PromptSummary]:
        """Every prompt (of this store's namespace, shared and every tenant's) with its latest
        version and labels (a Scan: an admin command, not hot path)."""
        summaries: dict[str, PromptSummary] = {}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "ProjectionExpression": "pk, sk, version, created_at",
            "FilterExpression": "begins_with(pk, :ns)",
            "ExpressionAttributeValues": {":ns": {"S": self._pk_prefix}},
        }
        while True:
            page = self._client.scan(**kwargs)
            for item in page.get("Items", []):
                scoped_id = prompt_id_from_pk(item["pk"]["S"], self._pk_prefix)
                tenant_id, prompt_id = split_scoped_prompt_id(scoped_id)
                summary = summaries.setdefault(scoped_id, PromptSummary(prompt_id, tenant_id=tenant_id))
                sk, number = item["sk"]["S"], int(item["version"]["N"])
                if sk.startswith(LABEL_SK_PREFIX):
                    summary.labels[sk.removeprefix(LABEL_SK_PREFIX)] = number
                elif number > summary.latest_version:
                    summaries[scoped_id] = PromptSummary(
                        prompt_id, number, float(item["created_at"]["N"]), summary.labels, tenant_id
                    )
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(summaries.values(), key=lambda s: (s.tenant_id or "", s.prompt_id))

    def resolve_version(self, ref: PromptRef, tenant_id: str | None = None) -> PromptVersion:
        """Uncached: the version a reference points at now, in exactly one scope (`tenant_id`'s
        own templates, or the shared ones when None). The CLI uses this."""
        subject = scoped_prompt_id(ref.prompt_id, tenant_id)
        if ref.version is not None:
            found = self.get_version(subject, ref.version)
        else:
            state = self.get_label(subject, str(ref.label))
            found = self.get_version(subject, state.version) if state else None
        if found is None:
            raise PromptNotFoundError(f"No prompt {ref.selector}.", param="prompt")
        return found

    def query_raw_items(self, prompt_id: str, prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
            "ExpressionAttributeValues": {":pk": {"S": self._pk(prompt_id)}, ":p": {"S": prefix}},
            "ConsistentRead": True,
        }
        while True:
            page = self._client.query(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- writes ----------------------------------------------------------------------------------

    def push(self, draft: PromptDraft, now: float) -> PushResult:
        """Stores `draft` as the next version; a draft identical to the latest version is a no-op,
        so re-running a push (e.g. in CI) does not mint versions."""
        problems = draft.problems()
        if problems:
            raise ValueError("; ".join(problems))
        for _ in range(_MAX_WRITE_ATTEMPTS):
            latest = self.latest_version(draft.scoped_id)
            if latest is not None and latest.fingerprint == draft.fingerprint:
                return PushResult(latest, created=False)
            version = draft.to_version((latest.version if latest else 0) + 1, now)
            if not self.put_new_version_item(version_item(version)):
                continue  # someone else took this number: re-read and take the next one
            return PushResult(version, created=True)
        raise RuntimeError(f"could not allocate a version of {draft.scoped_id}: too much contention")

    def set_label(self, prompt_id: str, label: str, version: int, now: float, actor: str = "") -> LabelState:
        """Points `label` at `version` (which must exist), remembering where it pointed before.
        `prompt_id` is the scoped id."""
        validate_scoped_prompt_id(prompt_id)
        validate_label(label)
        if not self.version_exists(prompt_id, version):
            raise PromptNotFoundError(f"No prompt {prompt_id}@{version}.", param="prompt")

        def move(current: LabelState | None) -> LabelState | None:
            if current is not None and current.version == version:
                return None
            history = (*current.history, current.version) if current else ()
            return LabelState(prompt_id, label, version, history[-_MAX_LABEL_HISTORY:], now, actor)

        return self._update_label(prompt_id, label, move)

    def rollback(self, prompt_id: str, label: str, now: float, actor: str = "") -> LabelState:
        """Moves `label` back to the version it pointed at before the last move."""

        def step_back(current: LabelState | None) -> LabelState | None:
            if current is None:
                raise PromptNotFoundError(f"No label {label!r} on prompt {prompt_id}.", param="prompt")
            if not current.history:
                raise ValueError(f"label {label!r} of {prompt_id} has no earlier version to roll back to")
            return LabelState(prompt_id, label, current.history[-1], current.history[:-1], now, actor)

        return self._update_label(prompt_id, label, step_back)

    def _update_label(
        self, prompt_id: str, label: str, change: Callable[[LabelState | None], LabelState | None]
    ) -> LabelState:
        for _ in range(_MAX_WRITE_ATTEMPTS):
            current = self.get_label(prompt_id, label)
            updated = change(current)
            if updated is None:
                assert current is not None
                return current
            condition: dict[str, Any]
            if current is None:
                condition = {"ConditionExpression": "attribute_not_exists(sk)"}
            else:
                condition = {
                    "ConditionExpression": "version = :v AND size(history) = :n",
                    "ExpressionAttributeValues": {
                        ":v": {"N": str(current.version)},
                        ":n": {"N": str(len(current.history))},
                    },
                }
            try:
                self._client.put_item(TableName=self._table, Item=label_item(updated, self._pk_prefix), **condition)
            except ClientError as exc:
                if _conditional_failure(exc):
                    continue  # moved under us: re-read and re-apply the change
                raise
            return updated
        raise RuntimeError(f"could not move label {label} of {prompt_id}: too much contention")


class CachedPromptResolver:
    """The gateway's view of the registry: `resolve(ref, tenant_id)` -> (version, rendered messages).

    A reference resolves in the tenant's own scope when the tenant has a template of that id, else
    in the shared scope; another tenant's templates are never read, so they answer exactly as a
    missing one does. Versions are immutable, so they are cached without expiry (bounded, least
    recently used out). Labels, whether a tenant has its own template of an id, and lookups that
    found nothing, are cached for `ttl_s`. If the table is unreachable when a label or scope entry
    expires, the stale entry keeps serving and the next call retries.
    """

    def __init__(
        self,
        source: PromptSource,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_versions: int = 512,
    ) -> None:
        self._source = source
        self._ttl_s = ttl_s
        self._clock = clock
        self._max_versions = max_versions
        self._lock = threading.Lock()
        self._versions: OrderedDict[tuple[str, int], PromptVersion] = OrderedDict()
        self._labels: dict[tuple[str, str], tuple[float, LabelState | None]] = {}
        self._missing_versions: dict[tuple[str, int], float] = {}
        self._owned: dict[str, tuple[float, bool]] = {}  # scoped id -> (read at, has versions)

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
        now = self._clock()
        with self._lock:
            cached = self._owned.get(own)
        if cached is not None and now - cached[0] < self._ttl_s:
            return own if cached[1] else prompt_id
        try:
            owned = self._source.has_versions(own)
        except Exception:
            if cached is None:
                raise
            owned = cached[1]
        with self._lock:
            if len(self._owned) >= _MAX_NEGATIVE_AND_LABEL_ENTRIES:
                self._owned.clear()  # made-up ids must not grow memory forever
            self._owned[own] = (now, owned)
        return own if owned else prompt_id

    def _label_version(self, prompt_id: str, label: str) -> int | None:
        key = (prompt_id, label)
        now = self._clock()
        with self._lock:
            cached = self._labels.get(key)
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1].version if cached[1] else None
        try:
            state = self._source.get_label(prompt_id, label)
        except Exception:
            # A stale label beats an outage; with nothing cached the caller gets the error.
            if cached is None:
                raise
            state = cached[1]
        with self._lock:
            if len(self._labels) >= _MAX_NEGATIVE_AND_LABEL_ENTRIES:
                self._labels.clear()  # references to made-up labels must not grow memory forever
            self._labels[key] = (now, state)
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
