"""The versioned-label registry on the Prompts table, for any kind of versioned document.

One store, parameterised by the kind (`llmops.domain.registry.RegistryKind`: how messages name a
subject, how a subject is validated, which not-found error is raised) and by the codec
(`registry_items.RegistryCodec`: the partition-key scheme and how a version's document maps to
attributes). `DynamoPromptStore` and `DynamoGuardPolicyStore` are this store with their kind's.

Writes are conditional so concurrent admins cannot corrupt the registry:
- a version is put with `attribute_not_exists(sk)`: versions are immutable and two pushes racing
  for the same number cannot both win (the loser re-reads and takes the next number);
- a label moves only if it still holds what the writer read (`version` and `size(history)`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from botocore.exceptions import ClientError

from llmops.adapters.dynamodb.registry_items import (
    LABEL_SK_PREFIX,
    VERSION_SK_PREFIX,
    Item,
    RegistryCodec,
    label_from_item,
)
from llmops.adapters.dynamodb.store_errors import error_code
from llmops.config.tables import label_sk, version_sk
from llmops.domain.registry import (
    LabelState,
    PushResult,
    RegistryDraft,
    RegistryKind,
    RegistryVersion,
    Selector,
    SubjectSummary,
    move_label,
    next_version,
    validate_label,
)

__all__ = ["DynamoRegistryStore"]

V = TypeVar("V", bound=RegistryVersion)

_MAX_WRITE_ATTEMPTS = 5
_CONDITION_FAILED = "ConditionalCheckFailedException"


class DynamoRegistryStore(Generic[V]):
    """`client` is a boto3 DynamoDB client (standard retries); `table` the Prompts table name."""

    def __init__(self, client: Any, table: str, kind: RegistryKind, codec: RegistryCodec[V]) -> None:
        self._client = client
        self._table = table
        self.kind = kind
        self._codec = codec

    # -- reads -----------------------------------------------------------------------------------

    def get_version(self, subject: str, version: int) -> V | None:
        item = self._get_item(subject, version_sk(version))
        return self._codec.version_from_item(item) if item else None

    def version_exists(self, subject: str, version: int) -> bool:
        return self._get_item(subject, version_sk(version), projection="pk") is not None

    def has_versions(self, subject: str) -> bool:
        return self._latest_item(subject) is not None

    def get_label(self, subject: str, label: str) -> LabelState | None:
        item = self._get_item(subject, label_sk(label))
        return label_from_item(item) if item else None

    def latest_version(self, subject: str) -> V | None:
        item = self._latest_item(subject)
        return self._codec.version_from_item(item) if item else None

    def resolve(self, subject: str, selector: Selector) -> V | None:
        """The version a number or a label names now (None: no such version or label)."""
        if isinstance(selector, int):
            return self.get_version(subject, selector)
        state = self.get_label(subject, selector)
        return self.get_version(subject, state.version) if state else None

    def list_versions(self, subject: str) -> list[V]:
        return [self._codec.version_from_item(i) for i in self._query(subject, VERSION_SK_PREFIX)]

    def list_labels(self, subject: str) -> list[LabelState]:
        return [label_from_item(i) for i in self._query(subject, LABEL_SK_PREFIX)]

    def list_subjects(self) -> list[SubjectSummary]:
        """Every subject of this kind with its latest version and labels, by subject (a Scan: an
        admin command, not hot path)."""
        summaries: dict[str, SubjectSummary] = {}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "ProjectionExpression": "pk, sk, version, created_at",
            "FilterExpression": "begins_with(pk, :ns)",
            "ExpressionAttributeValues": {":ns": {"S": self._codec.pk_prefix}},
        }
        while True:
            page = self._client.scan(**kwargs)
            for item in page.get("Items", []):
                subject = self._codec.subject_of(item["pk"]["S"])
                summary = summaries.setdefault(subject, SubjectSummary(subject))
                sk, number = item["sk"]["S"], int(item["version"]["N"])
                if sk.startswith(LABEL_SK_PREFIX):
                    summary.labels[sk.removeprefix(LABEL_SK_PREFIX)] = number
                elif number > summary.latest_version:
                    summaries[subject] = SubjectSummary(subject, number, float(item["created_at"]["N"]), summary.labels)
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(summaries.values(), key=lambda s: s.subject)

    # -- writes ----------------------------------------------------------------------------------

    def push(self, draft: RegistryDraft[V], now: float) -> PushResult[V]:
        """Stores `draft` as the next version; a draft identical to the latest version is a no-op,
        so re-running a push (e.g. in CI) does not mint versions."""
        problems = draft.problems()
        if problems:
            raise ValueError("; ".join(problems))
        for _ in range(_MAX_WRITE_ATTEMPTS):
            latest = self.latest_version(draft.subject)
            version = next_version(draft, latest, now)
            if version is None:
                assert latest is not None
                return PushResult(latest, created=False)
            if self._put(self._codec.version_item(version), "attribute_not_exists(sk)"):
                return PushResult(version, created=True)
            # Someone else took this number: re-read and take the next one.
        raise RuntimeError(f"could not allocate a version of {self.kind.noun} {draft.subject}: too much contention")

    def set_label(self, subject: str, label: str, version: int, now: float, actor: str = "") -> LabelState:
        """Points `label` at `version` (which must exist), remembering where it pointed before."""
        self.kind.validate_subject(subject)
        validate_label(label)
        if not self.version_exists(subject, version):
            raise self.kind.missing(f"No {self.kind.noun} {subject}@{version}.")
        return self._update_label(
            subject, label, lambda current: move_label(current, subject, label, version, now, actor)
        )

    def rollback(self, subject: str, label: str, now: float, actor: str = "") -> LabelState:
        """Moves `label` back to the version it pointed at before the last move."""

        def step_back(current: LabelState | None) -> LabelState:
            if current is None:
                raise self.kind.missing(f"No label {label!r} on {self.kind.noun} {subject}.")
            return current.rolled_back(now, actor)

        return self._update_label(subject, label, step_back)

    # -- DynamoDB --------------------------------------------------------------------------------

    def _get_item(self, subject: str, sk: str, projection: str | None = None) -> Item | None:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"pk": {"S": self._codec.pk(subject)}, "sk": {"S": sk}},
            "ConsistentRead": True,
        }
        if projection is not None:
            kwargs["ProjectionExpression"] = projection
        item: Item | None = self._client.get_item(**kwargs).get("Item")
        return item

    def _latest_item(self, subject: str) -> Item | None:
        items: list[Item] = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :v)",
            ExpressionAttributeValues={":pk": {"S": self._codec.pk(subject)}, ":v": {"S": VERSION_SK_PREFIX}},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        ).get("Items", [])
        return items[0] if items else None

    def _query(self, subject: str, sk_prefix: str) -> list[Item]:
        items: list[Item] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
            "ExpressionAttributeValues": {":pk": {"S": self._codec.pk(subject)}, ":p": {"S": sk_prefix}},
            "ConsistentRead": True,
        }
        while True:
            page = self._client.query(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _put(self, item: Item, condition: str, values: dict[str, Any] | None = None) -> bool:
        """Puts `item` if `condition` holds (False: it did not, someone else wrote first)."""
        kwargs: dict[str, Any] = {"TableName": self._table, "Item": item, "ConditionExpression": condition}
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            self._client.put_item(**kwargs)
        except ClientError as exc:
            if error_code(exc) == _CONDITION_FAILED:
                return False
            raise
        return True

    def _update_label(
        self, subject: str, label: str, change: Callable[[LabelState | None], LabelState | None]
    ) -> LabelState:
        for _ in range(_MAX_WRITE_ATTEMPTS):
            current = self.get_label(subject, label)
            updated = change(current)
            if updated is None:
                assert current is not None
                return current
            if current is None:
                written = self._put(self._codec.label_item(updated), "attribute_not_exists(sk)")
            else:
                written = self._put(
                    self._codec.label_item(updated),
                    "version = :v AND size(history) = :n",
                    {":v": {"N": str(current.version)}, ":n": {"N": str(len(current.history))}},
                )
            if written:
                return updated
            # Moved under us: re-read and re-apply the change.
        raise RuntimeError(f"could not move label {label} of {subject}: too much contention")
