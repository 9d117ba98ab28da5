"""The canary state machine's input, validated before any traffic moves.

`CanaryInput` is what an operator (or the model-approval rule) asks for; `to_execution_input()`
is what `canary.asl.json` reads. The expansion happens here because ASL can add but not subtract:
each step carries both weights, and the gate poll interval is clamped so a bake of N seconds is
polled at least once.

Weights are integers that sum to 100 for each step: route weights are relative and the SageMaker
variant weights are too, so percent and weight coincide for a two-target split.

A canary may carry a release bundle (`prompt`): a prompt label that moves from the baseline to the
candidate version together with the model. Prompts cannot be split by weight, so the label moves
once, when the candidate reaches 100%, and moves back on every rollback path. The Prompts table
keys travel precomputed in the execution input so the key layout stays defined in one place
(`llmops.config.tables`, next to the table's definition, which the adapters' item mapping uses too).

The bundle may also carry a guard policy (`guard_policy`): a label of a versioned guard policy
(the `guard#` namespace of the same table, same label items), moved at 100% and restored on
rollback by the very same states as the prompt's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from llmops.config.tables import guard_policy_pk, label_sk, prompt_pk, version_sk
from llmops.domain.guard import safe_regex
from llmops.domain.guard_policy_registry import validate_policy_name
from llmops.domain.keys import validate_tenant_id
from llmops.domain.prompts import scoped_prompt_id, validate_label, validate_prompt_id

__all__ = [
    "DEFAULT_STEPS",
    "CanaryInput",
    "GuardPolicyBundle",
    "PromptBundle",
    "TargetRef",
    "canary_input_for_targets",
    "execution_name",
]

DEFAULT_STEPS: tuple[int, ...] = (5, 25, 50, 100)
_MAX_GATES = 100  # DescribeAlarms takes at most 100 alarm names
_DAY_S = 86_400

AliasName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
TargetId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
AlarmName = Annotated[str, StringConstraints(min_length=1, max_length=255)]
VariantName = Annotated[str, StringConstraints(pattern=r"^([a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})?$")]
EndpointName = Annotated[str, StringConstraints(pattern=r"^([a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})?$")]


class TargetRef(BaseModel):
    """A route target id and, for a SageMaker canary, its production variant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: TargetId
    variant: VariantName = ""


class PromptBundle(BaseModel):
    """A prompt label moved with the model: `label` of prompt `id` goes from `baseline_version`
    (where it points when the canary starts) to `candidate_version` at 100%, and back on rollback.
    `tenant` names the owning tenant of a tenant's own template; without it the bundle moves the
    shared template of that id.

    Whether both versions exist, and where the label points, can only be checked against the
    Prompts table: the CLI does that before starting, and the state machine checks again before
    moving any traffic.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    label: str
    baseline_version: int = Field(ge=1)
    candidate_version: int = Field(ge=1)
    tenant: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return validate_prompt_id(value)

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, value: str | None) -> str | None:
        return None if value is None else validate_tenant_id(value)

    @property
    def scoped_id(self) -> str:
        """The registry's name of the template (`tenant/id`, or `id` when shared)."""
        return scoped_prompt_id(self.id, self.tenant)

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        return validate_label(value)

    @model_validator(mode="after")
    def _moves(self) -> PromptBundle:
        if self.baseline_version == self.candidate_version:
            raise ValueError("the prompt's baseline and candidate versions must differ")
        return self

    def to_execution_input(self) -> dict[str, Any]:
        pk = {"S": prompt_pk(self.scoped_id)}
        document: dict[str, Any] = {
            "id": self.id,
            "label": self.label,
            "baseline_version": self.baseline_version,
            "candidate_version": self.candidate_version,
            # DynamoDB keys of the label item and the candidate version item, as the ASL passes them:
            # the state machine never builds a key itself, so it moves scoped templates unchanged.
            "label_key": {"pk": pk, "sk": {"S": label_sk(self.label)}},
            "candidate_key": {"pk": pk, "sk": {"S": version_sk(self.candidate_version)}},
        }
        if self.tenant is not None:
            document["tenant"] = self.tenant
        return document

    @classmethod
    def from_execution_input(cls, document: Mapping[str, Any]) -> PromptBundle:
        return cls(
            id=document["id"],
            label=document["label"],
            baseline_version=int(document["baseline_version"]),
            candidate_version=int(document["candidate_version"]),
            tenant=document.get("tenant"),
        )


class GuardPolicyBundle(BaseModel):
    """A guard policy label moved with the model, exactly like `PromptBundle`: `label` of policy
    `name` goes from `baseline_version` to `candidate_version` at 100%, and back on rollback."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    label: str
    baseline_version: int = Field(ge=1)
    candidate_version: int = Field(ge=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return validate_policy_name(value)

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        return validate_label(value)

    @model_validator(mode="after")
    def _moves(self) -> GuardPolicyBundle:
        if self.baseline_version == self.candidate_version:
            raise ValueError("the guard policy's baseline and candidate versions must differ")
        return self

    def to_execution_input(self) -> dict[str, Any]:
        pk = {"S": guard_policy_pk(self.name)}
        return {
            "name": self.name,
            "label": self.label,
            "baseline_version": self.baseline_version,
            "candidate_version": self.candidate_version,
            "label_key": {"pk": pk, "sk": {"S": label_sk(self.label)}},
            "candidate_key": {"pk": pk, "sk": {"S": version_sk(self.candidate_version)}},
        }

    @classmethod
    def from_execution_input(cls, document: Mapping[str, Any]) -> GuardPolicyBundle:
        return cls(
            name=document["name"],
            label=document["label"],
            baseline_version=int(document["baseline_version"]),
            candidate_version=int(document["candidate_version"]),
        )


class CanaryInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    alias: AliasName
    baseline: TargetRef
    candidate: TargetRef
    provider: Literal["sagemaker", "routes"] = "routes"
    endpoint_name: EndpointName = ""
    steps: tuple[int, ...] = DEFAULT_STEPS
    bake_seconds: int = Field(default=600, ge=0, le=7 * _DAY_S)
    gate_poll_seconds: int = Field(default=60, ge=1, le=_DAY_S)
    gates: tuple[AlarmName, ...] = Field(default=(), max_length=_MAX_GATES)
    approval: bool = False
    approval_timeout_seconds: int = Field(default=_DAY_S, ge=1, le=30 * _DAY_S)
    baseline_keep_seconds: int = Field(default=0, ge=0, le=30 * _DAY_S)
    prompt: PromptBundle | None = None
    guard_policy: GuardPolicyBundle | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CanaryInput:
        if self.baseline.target == self.candidate.target:
            raise ValueError("baseline and candidate must be different targets")
        if not self.steps:
            raise ValueError("steps must not be empty")
        if any(not 1 <= p <= 100 for p in self.steps):
            raise ValueError("each step is a candidate percentage from 1 to 100")
        if any(b <= a for a, b in zip(self.steps, self.steps[1:], strict=False)):
            raise ValueError("steps must increase strictly")
        if self.steps[-1] != 100:
            raise ValueError("the last step must be 100 (promotion)")
        if len(set(self.gates)) != len(self.gates):
            raise ValueError("gate alarm names must be unique")
        if self.provider == "sagemaker":
            if not self.endpoint_name:
                raise ValueError("a sagemaker canary needs endpoint_name")
            if not self.baseline.variant or not self.candidate.variant:
                raise ValueError("a sagemaker canary needs the baseline and candidate variant names")
            if self.baseline.variant == self.candidate.variant:
                raise ValueError("baseline and candidate must be different variants")
        return self

    def to_execution_input(self) -> dict[str, Any]:
        """The JSON document `canary.asl.json` expects as execution input."""
        document: dict[str, Any] = {
            "alias": self.alias,
            "provider": self.provider,
            "baseline": self.baseline.model_dump(),
            "candidate": self.candidate.model_dump(),
            "endpoint_name": self.endpoint_name,
            "steps": [{"percent": p, "candidate_weight": p, "baseline_weight": 100 - p} for p in self.steps],
            "bake_seconds": self.bake_seconds,
            # Never poll slower than the bake lasts (and not at all for a zero bake).
            "gate_poll_seconds": min(self.gate_poll_seconds, self.bake_seconds),
            "hold_poll_seconds": min(self.gate_poll_seconds, self.baseline_keep_seconds),
            "gates": list(self.gates),
            "approval": self.approval,
            "approval_timeout_seconds": self.approval_timeout_seconds,
            "baseline_keep_seconds": self.baseline_keep_seconds,
        }
        # Absent rather than null: the ASL tests `IsPresent`, and inputs built elsewhere (the
        # approval machine) carry no bundle.
        if self.prompt is not None:
            document["prompt"] = self.prompt.to_execution_input()
        if self.guard_policy is not None:
            document["guard_policy"] = self.guard_policy.to_execution_input()
        return document

    @classmethod
    def from_execution_input(cls, document: Mapping[str, Any]) -> CanaryInput:
        """Reads back what `to_execution_input` wrote (e.g. from DescribeExecution, for abort)."""
        return cls(
            alias=document["alias"],
            baseline=TargetRef.model_validate(document["baseline"]),
            candidate=TargetRef.model_validate(document["candidate"]),
            provider=document.get("provider", "routes"),
            endpoint_name=document.get("endpoint_name", ""),
            steps=tuple(int(s["percent"]) for s in document["steps"]),
            bake_seconds=int(document.get("bake_seconds", 0)),
            gate_poll_seconds=max(1, int(document.get("gate_poll_seconds", 1))),
            gates=tuple(document.get("gates", ())),
            approval=bool(document.get("approval", False)),
            approval_timeout_seconds=int(document.get("approval_timeout_seconds", _DAY_S)),
            baseline_keep_seconds=int(document.get("baseline_keep_seconds", 0)),
            prompt=PromptBundle.from_execution_input(document["prompt"]) if document.get("prompt") else None,
            guard_policy=(
                GuardPolicyBundle.from_execution_input(document["guard_policy"])
                if document.get("guard_policy")
                else None
            ),
        )


def canary_input_for_targets(
    targets: Mapping[str, Mapping[str, Any]],
    alias: str,
    baseline: str,
    candidate: str,
    **options: Any,
) -> CanaryInput:
    """Builds the input from the route document's target specs (routes.json `targets`).

    Two variants of the same SageMaker endpoint make a `sagemaker` canary (the endpoint's own
    weights move as well as the route's); anything else (Bedrock to Bedrock, or mixed) is a
    `routes` canary that only moves route weights.
    """
    missing = [t for t in (baseline, candidate) if t not in targets]
    if missing:
        raise ValueError(f"unknown target(s): {', '.join(missing)}")
    base, cand = targets[baseline], targets[candidate]
    same_endpoint = (
        base.get("provider") == "sagemaker"
        and cand.get("provider") == "sagemaker"
        and base.get("endpoint_name")
        and base.get("endpoint_name") == cand.get("endpoint_name")
        and base.get("variant")
        and cand.get("variant")
    )
    if same_endpoint:
        return CanaryInput(
            alias=alias,
            provider="sagemaker",
            endpoint_name=str(base["endpoint_name"]),
            baseline=TargetRef(target=baseline, variant=str(base["variant"])),
            candidate=TargetRef(target=candidate, variant=str(cand["variant"])),
            **options,
        )
    return CanaryInput(
        alias=alias,
        provider="routes",
        baseline=TargetRef(target=baseline),
        candidate=TargetRef(target=candidate),
        **options,
    )


_NAME_UNSAFE = safe_regex.compile(r"[^A-Za-z0-9_-]+")


def execution_name(kind: str, subject: str, now: datetime | None = None) -> str:
    """A unique, readable Step Functions execution name: `canary-<alias>-20261122T181611Z`.

    Execution names allow 80 characters of [A-Za-z0-9_-]; the subject is squeezed to fit.
    """
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    safe = _NAME_UNSAFE.sub("-", subject).strip("-")[: 80 - len(kind) - len(stamp) - 2] or "run"
    return f"{kind}-{safe}-{stamp}"
