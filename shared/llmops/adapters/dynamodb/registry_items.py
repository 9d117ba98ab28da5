"""Pure mapping between registry versions / labels and Prompts table items (low-level JSON).

The keys are defined with the table (`llmops.config.tables`). Each kind of registry has its own
partition-key scheme, `pk = <prefix><subject>` (`prompt#<scoped id>`, `guard#<name>`), and the
same sort keys beneath it:
- `sk = v#<0000001>`: an immutable version (zero-padded so versions sort numerically; the newest
  is the last item of a descending `begins_with(sk, "v#")` query). Every kind stores `version`,
  `author`, `change_note`, `created_at` and `fingerprint`; its `RegistryCodec` adds the rest.
- `sk = label#<name>`: a label -> version, with the versions it pointed at before (`history`,
  oldest first) so a rollback can step back. Label items are the same for every kind, so label
  moves, rollbacks and the canary's release-bundle states work on all of them unchanged; the
  subject is stored as `prompt_id` (the attribute's name predates guard policies).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

from llmops.config.tables import LABEL_SK_PREFIX, PROMPT_PK_PREFIX, VERSION_SK_PREFIX, label_sk, prompt_pk, version_sk
from llmops.domain.registry import LabelState, RegistryVersion

__all__ = [
    "LABEL_SK_PREFIX",
    "VERSION_SK_PREFIX",
    "AttributeValue",
    "Item",
    "RegistryCodec",
    "float_of",
    "label_from_item",
    "label_item",
    "num",
    "version_fields",
]

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]

V = TypeVar("V", bound=RegistryVersion)


def num(value: float) -> AttributeValue:
    return {"N": str(value) if isinstance(value, int) else str(Decimal(repr(value)))}


def float_of(attr: AttributeValue) -> float:
    return float(attr["N"])


def version_fields(item: Mapping[str, AttributeValue]) -> dict[str, Any]:
    """The attributes every kind's version item has, as the version dataclasses name them."""
    return {
        "version": int(item["version"]["N"]),
        "author": item.get("author", {}).get("S", ""),
        "change_note": item.get("change_note", {}).get("S", ""),
        "created_at": float_of(item["created_at"]) if "created_at" in item else 0.0,
    }


def label_item(state: LabelState, pk_prefix: str = PROMPT_PK_PREFIX) -> Item:
    return {
        "pk": {"S": prompt_pk(state.subject, pk_prefix)},
        "sk": {"S": label_sk(state.label)},
        "prompt_id": {"S": state.subject},
        "label": {"S": state.label},
        "version": num(state.version),
        "history": {"L": [num(v) for v in state.history]},
        "updated_at": num(state.updated_at),
        "updated_by": {"S": state.updated_by},
    }


def label_from_item(item: Mapping[str, AttributeValue]) -> LabelState:
    return LabelState(
        subject=item["prompt_id"]["S"],
        label=item["label"]["S"],
        version=int(item["version"]["N"]),
        history=tuple(int(v["N"]) for v in item.get("history", {}).get("L", [])),
        updated_at=float_of(item["updated_at"]) if "updated_at" in item else 0.0,
        updated_by=item.get("updated_by", {}).get("S", ""),
    )


@dataclass(frozen=True, slots=True)
class RegistryCodec(Generic[V]):
    """How one kind of registry lies in the Prompts table: its partition-key scheme and its
    document codec (the attributes of a version beyond those every kind has, and back)."""

    pk_prefix: str
    document_attributes: Callable[[V], Item]
    version_from_item: Callable[[Mapping[str, AttributeValue]], V]

    def pk(self, subject: str) -> str:
        return prompt_pk(subject, self.pk_prefix)

    def subject_of(self, pk: str) -> str:
        return pk.removeprefix(self.pk_prefix)

    def version_item(self, version: V) -> Item:
        return {
            "pk": {"S": self.pk(version.subject)},
            "sk": {"S": version_sk(version.version)},
            "version": num(version.version),
            **self.document_attributes(version),
            "author": {"S": version.author},
            "change_note": {"S": version.change_note},
            "created_at": num(version.created_at),
            "fingerprint": {"S": version.fingerprint},
        }

    def label_item(self, state: LabelState) -> Item:
        return label_item(state, self.pk_prefix)
