"""Guard policy: per-type actions by direction, thresholds, deny lists, limits and enabled detectors.

A tenant policy is stored as JSON and read with :meth:`GuardPolicy.from_mapping`, which layers it on
top of the product default (so a tenant only writes what it changes) and reports every problem at
once. See the package docstring for the format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from llmops.domain.guard import safe_regex
from llmops.domain.guard.findings import CATEGORY_TYPES, PII_TYPES, SECRET_TYPES, Action, Direction, FindingType
from llmops.domain.guard.service_detectors import (
    BEDROCK_GUARDRAIL,
    COMPREHEND,
    SERVICE_DETECTORS,
    ServiceSettings,
    parse_service_settings,
)
from llmops.domain.images import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_IMAGES

__all__ = [
    "BUILTIN_DETECTORS",
    "CATEGORY_THRESHOLDS",
    "DEFAULT_DETECTORS",
    "GATEWAY_DETECTORS",
    "PASSTHROUGH_FIELDS",
    "PLUGGABLE_DETECTORS",
    "ContentPolicy",
    "EmbeddingsInputGuard",
    "GuardPolicy",
    "PolicyError",
]

BUILTIN_DETECTORS: Final = frozenset({"secrets", "pii", "injection", "deny_list", "grounding", "classifier"})
# Off by default: service calls (llmops.domain.guard.service_detectors), configured by the
# policy's `bedrock_guardrail` / `comprehend` objects; the gateway builds their adapters per policy.
PLUGGABLE_DETECTORS: Final = SERVICE_DETECTORS
DEFAULT_DETECTORS: Final = BUILTIN_DETECTORS
# What the gateway's engines can run: every known detector (application/guard_detectors.py builds
# the service detectors a policy names).
GATEWAY_DETECTORS: Final = BUILTIN_DETECTORS | PLUGGABLE_DETECTORS
# Findings about the text as a whole: masking their span would not help, so only these actions fit.
_UNMASKABLE = frozenset(
    {
        FindingType.PROMPT_INJECTION,
        FindingType.GROUNDING,
        FindingType.RELEVANCE,
        FindingType.INPUT_TOO_LARGE,
        FindingType.OUTPUT_TOO_LARGE,
        FindingType.DETECTOR_UNAVAILABLE,
        *CATEGORY_TYPES.values(),
    }
)
# The learned layer's default thresholds per category (score at or above: reported with the
# category's action), tuned on dev data only: the largest of 0.5, the score 99.5% of the benign dev
# sets of the evaluation stay under, the trainer's suggestion (99.5% of the training corpora's
# benign dev texts, reports/guard-model/training.json), and the second-highest score on the dev half of the public
# benign prompts (so each category flags at most one of those), rounded up to two decimals. See
# docs/guard-model-card.md.
CATEGORY_THRESHOLDS: Final = MappingProxyType(
    {
        "prompt_attack": 0.9,
        "violence_weapons": 0.69,
        "self_harm": 0.5,
        "sexual": 0.5,
        "sexual_minors": 0.5,
        "hate_harassment": 0.5,
        "criminal_instructions": 0.54,
    }
)
# Sexual content involving minors is blocked whatever a tenant writes: its action cannot be
# changed and its threshold can only be lowered (stricter), never raised.
_ALWAYS_BLOCKED: Final = FindingType.SEXUAL_MINORS
_TYPE_NAME = safe_regex.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_TOPIC_NAME = safe_regex.compile(r"[A-Za-z0-9_.-]{1,64}")
_KEYS = frozenset(
    {
        "actions",
        "input_actions",
        "output_actions",
        "default_action",
        "thresholds",
        "denied_words",
        "denied_topics",
        "max_input_chars",
        "max_output_chars",
        "embeddings_input_guard",
        "detectors",
        "system_prompt_leak_check",
        "content",
        BEDROCK_GUARDRAIL,
        COMPREHEND,
    }
)
_THRESHOLDS = {
    "injection_block": "injection_block_threshold",
    "injection_flag": "injection_flag_threshold",
    "grounding": "grounding_threshold",
    "relevance": "relevance_threshold",
    "system_prompt_leak": "system_prompt_leak_threshold",
}


class EmbeddingsInputGuard(StrEnum):
    """How the input guard treats the texts of `POST /v1/embeddings` (policy `embeddings_input_guard`).

    An embedded text is stored as a vector in someone's index, usually for good, so the tenant
    chooses: `redact` (the default) runs the input guard as on a chat message, so values the policy
    masks are embedded as their placeholders (`[EMAIL_1]`) and what it blocks (prompt injection,
    denied words, oversized input) refuses the request; `block` refuses any request in which the
    guard would mask something, so no vector of altered text is made; `off` embeds the texts as sent
    (a tenant's own, already cleaned corpus), and the audit record says the guard was off.
    """

    REDACT = "redact"
    BLOCK = "block"
    OFF = "off"


class PolicyError(ValueError):
    """A tenant policy that cannot be used; `errors` lists every problem, each naming its field."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = tuple(errors)
        super().__init__("invalid guard policy: " + "; ".join(self.errors))


# Provider request fields a caller may send at the top level of a chat request (the OpenAI SDKs'
# `extra_body`) for Bedrock to receive as they are, each only where the tenant's policy lists it.
PASSTHROUGH_FIELDS: Final = frozenset(
    {"guardrailConfig", "serviceTier", "performanceConfig", "additionalModelRequestFields"}
)
# Upper bounds a policy may set: above them a provider refuses anyway (Bedrock Converse takes at most
# 20 images, OpenAI 128 tools) or a request could hold a Lambda for too long.
_MAX_IMAGES_BOUND = 100
_MAX_IMAGE_BYTES_BOUND = 26_214_400  # 25 MiB
_MAX_TOOLS_BOUND = 128
_MAX_REMOTE_TIMEOUT_S = 30.0
_CONTENT_KEYS = frozenset(
    {
        "allow_images",
        "max_images",
        "max_image_bytes",
        "allow_remote_image_urls",
        "remote_image_timeout_s",
        "allowed_passthrough_fields",
        "max_tools",
    }
)


@dataclass(frozen=True, slots=True)
class ContentPolicy:
    """What a tenant's requests may carry besides text: images, remote image URLs, tools and
    provider pass-through fields (the `content` object of a guard policy)."""

    allow_images: bool = True
    max_images: int = DEFAULT_MAX_IMAGES  # per request, every message together (Bedrock Converse's limit)
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES  # per decoded image: 3.75 MB, Bedrock's limit for Claude
    # Remote http(s) image URLs are fetched by the gateway (public addresses only) when true.
    allow_remote_image_urls: bool = False
    remote_image_timeout_s: float = 5.0  # for all the remote images of one request together
    allowed_passthrough_fields: frozenset[str] = frozenset()  # a subset of PASSTHROUGH_FIELDS
    max_tools: int = 128

    @classmethod
    def from_mapping(cls, data: Any, base: ContentPolicy, errors: list[str]) -> ContentPolicy:
        """`data` (the policy's `content` object) over `base`; problems are appended to `errors`."""
        if not isinstance(data, Mapping):
            errors.append("content: must be an object")
            return base
        unknown = sorted(set(data) - _CONTENT_KEYS, key=str)
        if unknown:
            listed = ", ".join(f"'{key}'" for key in unknown)
            errors.append(f"content: unknown field {listed} (allowed: {', '.join(sorted(_CONTENT_KEYS))})")
        values: dict[str, Any] = {}
        for key in ("allow_images", "allow_remote_image_urls"):
            if key in data:
                if isinstance(data[key], bool):
                    values[key] = data[key]
                else:
                    errors.append(f"content.{key}: must be true or false, got {data[key]!r}")
        for key, bound in (
            ("max_images", _MAX_IMAGES_BOUND),
            ("max_image_bytes", _MAX_IMAGE_BYTES_BOUND),
            ("max_tools", _MAX_TOOLS_BOUND),
        ):
            if key in data:
                value = data[key]
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= bound:
                    errors.append(f"content.{key}: must be an integer from 1 to {bound}, got {value!r}")
                else:
                    values[key] = value
        if "remote_image_timeout_s" in data:
            value = data["remote_image_timeout_s"]
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= _MAX_REMOTE_TIMEOUT_S:
                errors.append(
                    f"content.remote_image_timeout_s: must be a number of seconds above 0 and at most "
                    f"{_MAX_REMOTE_TIMEOUT_S:g}, got {value!r}"
                )
            else:
                values["remote_image_timeout_s"] = float(value)
        if "allowed_passthrough_fields" in data:
            names = _strings(data["allowed_passthrough_fields"], "content.allowed_passthrough_fields", errors)
            unknown_fields = sorted(set(names) - PASSTHROUGH_FIELDS)
            if unknown_fields:
                errors.append(
                    f"content.allowed_passthrough_fields: unknown {', '.join(unknown_fields)} "
                    f"(known: {', '.join(sorted(PASSTHROUGH_FIELDS))})"
                )
            else:
                values["allowed_passthrough_fields"] = frozenset(names)
        merged = {name: getattr(base, name) for name in base.__dataclass_fields__}
        merged.update(values)
        return cls(**merged)

    def to_mapping(self) -> dict[str, Any]:
        return {
            "allow_images": self.allow_images,
            "max_images": self.max_images,
            "max_image_bytes": self.max_image_bytes,
            "allow_remote_image_urls": self.allow_remote_image_urls,
            "remote_image_timeout_s": self.remote_image_timeout_s,
            "allowed_passthrough_fields": sorted(self.allowed_passthrough_fields),
            "max_tools": self.max_tools,
        }


def _default_actions() -> dict[str, Action]:
    actions: dict[str, Action] = dict.fromkeys(PII_TYPES, Action.REDACT)
    # Secrets are masked both ways: refusing a completion because it contains an example key helps
    # nobody, and the value never reaches the caller either way.
    actions.update(dict.fromkeys(SECRET_TYPES, Action.REDACT))
    actions.update(
        {
            FindingType.PROMPT_INJECTION: Action.BLOCK,
            FindingType.DENIED_WORD: Action.BLOCK,
            FindingType.DENIED_TOPIC: Action.BLOCK,
            FindingType.SYSTEM_PROMPT_LEAK: Action.BLOCK,
            FindingType.INPUT_TOO_LARGE: Action.BLOCK,
            FindingType.OUTPUT_TOO_LARGE: Action.BLOCK,
            # Heuristic grounding is a signal for dashboards first; tenants opt in to blocking.
            FindingType.GROUNDING: Action.LOG_ONLY,
            FindingType.RELEVANCE: Action.LOG_ONLY,
        }
    )
    actions.update(dict.fromkeys(CATEGORY_TYPES.values(), Action.BLOCK))
    return actions


def _frozen(mapping: Mapping[str, Action]) -> Mapping[str, Action]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    input_actions: Mapping[str, Action] = field(default_factory=lambda: _frozen(_default_actions()))
    output_actions: Mapping[str, Action] = field(default_factory=lambda: _frozen(_default_actions()))
    default_action: Action = Action.REDACT  # for types no mapping names (e.g. from pluggable detectors)
    injection_block_threshold: float = 0.8
    injection_flag_threshold: float = 0.5  # at or above: reported as log_only; below: not reported
    grounding_threshold: float = 0.6
    relevance_threshold: float = 0.5
    system_prompt_leak_threshold: float = 0.5
    denied_words: tuple[str, ...] = ()
    denied_topics: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    max_input_chars: int = 100_000
    max_output_chars: int = 200_000
    enabled_detectors: frozenset[str] = DEFAULT_DETECTORS
    system_prompt_leak_check: bool = True
    category_thresholds: Mapping[str, float] = field(default_factory=lambda: CATEGORY_THRESHOLDS)
    embeddings_input_guard: EmbeddingsInputGuard = EmbeddingsInputGuard.REDACT
    content: ContentPolicy = field(default_factory=ContentPolicy)
    # The service detectors' settings by name (`bedrock_guardrail`, `comprehend`): each one here is enabled.
    services: Mapping[str, ServiceSettings] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def default(cls) -> GuardPolicy:
        return cls()

    def action_for(self, finding_type: str, direction: Direction) -> Action:
        actions = self.input_actions if direction is Direction.INPUT else self.output_actions
        return actions.get(finding_type, self.default_action)

    def detector_enabled(self, name: str) -> bool:
        return name in self.enabled_detectors

    def service_settings(self, name: str) -> ServiceSettings | None:
        return self.services.get(name)

    def category_threshold(self, category: str) -> float:
        return self.category_thresholds.get(category, CATEGORY_THRESHOLDS[category])

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any],
        *,
        base: GuardPolicy | None = None,
        runnable_detectors: frozenset[str] | None = None,
    ) -> GuardPolicy:
        """Layer a JSON-shaped tenant policy over `base` (the product default unless given).

        `runnable_detectors` are the detectors the caller will run (None: any known one); a policy
        naming another known detector is refused with its name. The gateway passes
        `GATEWAY_DETECTORS` wherever it accepts a policy.
        """
        base = base or cls.default()
        if not isinstance(data, Mapping):
            raise PolicyError([f"policy must be a JSON object, got {type(data).__name__}"])
        errors: list[str] = [f"unknown field '{key}'" for key in sorted(set(data) - _KEYS, key=str)]
        if errors:
            errors.append("allowed fields: " + ", ".join(sorted(_KEYS)))

        input_actions = dict(base.input_actions)
        output_actions = dict(base.output_actions)
        for key, targets in (
            ("actions", (input_actions, output_actions)),
            ("input_actions", (input_actions,)),
            ("output_actions", (output_actions,)),
        ):
            for finding_type, action in _actions(data.get(key, {}), key, errors).items():
                for target in targets:
                    target[finding_type] = action
        default_action = base.default_action
        if "default_action" in data:
            default_action = _action(data["default_action"], "default_action", errors) or default_action

        values: dict[str, Any] = {
            "input_actions": _frozen(input_actions),
            "output_actions": _frozen(output_actions),
            "default_action": default_action,
        }
        values.update(_thresholds(data.get("thresholds", {}), base, errors))
        values.update(_learned_layer(data, base, input_actions, output_actions, errors))
        if "denied_words" in data:
            values["denied_words"] = _strings(data["denied_words"], "denied_words", errors)
        if "denied_topics" in data:
            values["denied_topics"] = _topics(data["denied_topics"], errors)
        for key in ("max_input_chars", "max_output_chars"):
            if key in data:
                value = data[key]
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    errors.append(f"{key}: must be a positive integer, got {value!r}")
                else:
                    values[key] = value
        if "detectors" in data:
            values["enabled_detectors"] = _detectors(data["detectors"], runnable_detectors, errors)
        if "system_prompt_leak_check" in data:
            flag = data["system_prompt_leak_check"]
            if not isinstance(flag, bool):
                errors.append(f"system_prompt_leak_check: must be true or false, got {flag!r}")
            else:
                values["system_prompt_leak_check"] = flag
        if "embeddings_input_guard" in data:
            mode = data["embeddings_input_guard"]
            try:
                values["embeddings_input_guard"] = EmbeddingsInputGuard(mode)
            except ValueError:
                choices = ", ".join(m.value for m in EmbeddingsInputGuard)
                errors.append(f"embeddings_input_guard: {mode!r} is not one of {choices}")
        if "content" in data:
            values["content"] = ContentPolicy.from_mapping(data["content"], base.content, errors)
        values.update(_services(data, base, values.get("enabled_detectors", base.enabled_detectors), errors))

        merged = {name: getattr(base, name) for name in base.__dataclass_fields__}
        merged.update(values)
        if merged["injection_flag_threshold"] > merged["injection_block_threshold"]:
            errors.append("thresholds: injection_flag must not exceed injection_block")
        if errors:
            raise PolicyError(errors)
        return cls(**merged)

    def to_mapping(self) -> dict[str, Any]:
        """The full policy in the `from_mapping` format (for storing or showing a resolved policy)."""
        return {
            "input_actions": {k: v.value for k, v in sorted(self.input_actions.items())},
            "output_actions": {k: v.value for k, v in sorted(self.output_actions.items())},
            "default_action": self.default_action.value,
            "thresholds": {
                **{short: getattr(self, name) for short, name in _THRESHOLDS.items()},
                **dict(sorted(self.category_thresholds.items())),
            },
            "denied_words": list(self.denied_words),
            "denied_topics": {k: list(v) for k, v in sorted(self.denied_topics.items())},
            "max_input_chars": self.max_input_chars,
            "max_output_chars": self.max_output_chars,
            "detectors": sorted(self.enabled_detectors),
            "system_prompt_leak_check": self.system_prompt_leak_check,
            "embeddings_input_guard": self.embeddings_input_guard.value,
            "content": self.content.to_mapping(),
            **{name: settings.to_mapping() for name, settings in sorted(self.services.items())},
        }


def _detectors(value: Any, runnable_detectors: frozenset[str] | None, errors: list[str]) -> frozenset[str]:
    names = _strings(value, "detectors", errors)
    unknown = sorted(set(names) - BUILTIN_DETECTORS - PLUGGABLE_DETECTORS)
    if unknown:
        known = ", ".join(sorted(BUILTIN_DETECTORS | PLUGGABLE_DETECTORS))
        errors.append(f"detectors: unknown {', '.join(unknown)} (known: {known})")
    if runnable_detectors is not None:
        for name in sorted((set(names) & PLUGGABLE_DETECTORS) - runnable_detectors):
            errors.append(f"detectors: the '{name}' detector cannot run here; remove it from the policy")
    return frozenset(names)


def _services(data: Mapping[str, Any], base: GuardPolicy, enabled: frozenset[str], errors: list[str]) -> dict[str, Any]:
    """The service detectors' settings: an object (`bedrock_guardrail: {...}`) configures and enables
    one; `comprehend` named in `detectors` alone runs with its defaults; a guardrail needs its id."""
    services = dict(base.services)
    services.update(parse_service_settings(data, errors))
    if COMPREHEND in enabled and COMPREHEND not in services:
        services[COMPREHEND] = parse_service_settings({COMPREHEND: {}}, errors)[COMPREHEND]
    if BEDROCK_GUARDRAIL in enabled and BEDROCK_GUARDRAIL not in services and BEDROCK_GUARDRAIL not in data:
        errors.append(
            f"detectors: '{BEDROCK_GUARDRAIL}' needs a '{BEDROCK_GUARDRAIL}' object with its guardrail_id and version"
        )
    if services == dict(base.services):
        return {}
    return {"services": MappingProxyType(services), "enabled_detectors": enabled | frozenset(services)}


def _action(value: Any, where: str, errors: list[str]) -> Action | None:
    try:
        return Action(value)
    except ValueError:
        choices = ", ".join(a.value for a in Action)
        errors.append(f"{where}: {value!r} is not one of {choices}")
        return None


def _actions(value: Any, where: str, errors: list[str]) -> dict[str, Action]:
    if not isinstance(value, Mapping):
        errors.append(f"{where}: must be an object of finding type -> action")
        return {}
    out: dict[str, Action] = {}
    for finding_type, raw in value.items():
        path = f"{where}.{finding_type}"
        if not isinstance(finding_type, str) or not _TYPE_NAME.match(finding_type):
            errors.append(f"{path}: finding types are UPPER_SNAKE_CASE names such as EMAIL")
            continue
        action = _action(raw, path, errors)
        if action is None:
            continue
        if finding_type in _UNMASKABLE and action in (Action.REDACT, Action.PSEUDONYMIZE):
            errors.append(f"{path}: {finding_type} is about the whole text; use allow, log_only or block")
            continue
        out[finding_type] = action
    return out


def _thresholds(value: Any, base: GuardPolicy, errors: list[str]) -> dict[str, float]:
    if not isinstance(value, Mapping):
        errors.append("thresholds: must be an object")
        return {}
    out: dict[str, float] = {}
    for key, raw in value.items():
        name = _THRESHOLDS.get(key)
        if key in CATEGORY_THRESHOLDS:
            continue  # `_category_thresholds` reads these
        if name is None:
            known = ", ".join(sorted([*_THRESHOLDS, *CATEGORY_THRESHOLDS]))
            errors.append(f"thresholds.{key}: unknown (known: {known})")
        elif isinstance(raw, bool) or not isinstance(raw, int | float) or not 0.0 <= raw <= 1.0:
            errors.append(f"thresholds.{key}: must be a number between 0 and 1, got {raw!r}")
        else:
            out[name] = float(raw)
    return out


def _learned_layer(
    data: Mapping[str, Any],
    base: GuardPolicy,
    input_actions: Mapping[str, Action],
    output_actions: Mapping[str, Action],
    errors: list[str],
) -> dict[str, Any]:
    """The learned layer's part of a policy: per-category thresholds, and SEXUAL_MINORS kept a block."""
    values: dict[str, Any] = {}
    categories = _category_thresholds(data.get("thresholds", {}), errors)
    if categories:
        values["category_thresholds"] = MappingProxyType({**base.category_thresholds, **categories})
    for where, mapping in (("input_actions", input_actions), ("output_actions", output_actions)):
        if mapping.get(_ALWAYS_BLOCKED, Action.BLOCK) is not Action.BLOCK:
            errors.append(f"{where}.{_ALWAYS_BLOCKED}: sexual content involving minors is always blocked")
    return values


def _category_thresholds(value: Any, errors: list[str]) -> dict[str, float]:
    """The learned layer's per-category thresholds among `thresholds` (`_thresholds` reports the rest)."""
    if not isinstance(value, Mapping):
        return {}  # `_thresholds` has reported it
    out: dict[str, float] = {}
    for key, raw in value.items():
        if key not in CATEGORY_THRESHOLDS:
            continue
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0.0 <= raw <= 1.0:
            errors.append(f"thresholds.{key}: must be a number between 0 and 1, got {raw!r}")
        elif key == "sexual_minors" and raw > CATEGORY_THRESHOLDS[key]:
            errors.append(
                f"thresholds.sexual_minors: may only be lowered (stricter), not raised above {CATEGORY_THRESHOLDS[key]}"
            )
        else:
            out[key] = float(raw)
    return out


def _strings(value: Any, where: str, errors: list[str]) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v.strip() for v in value):
        errors.append(f"{where}: must be a list of non-empty strings")
        return ()
    return tuple(value)


def _topics(value: Any, errors: list[str]) -> Mapping[str, tuple[str, ...]]:
    if not isinstance(value, Mapping):
        errors.append("denied_topics: must be an object of topic name -> list of keywords")
        return MappingProxyType({})
    out: dict[str, tuple[str, ...]] = {}
    for name, keywords in value.items():
        if not isinstance(name, str) or not _TOPIC_NAME.fullmatch(name):
            errors.append(f"denied_topics: topic names are 1-64 letters, digits, '_', '.' or '-': {name!r}")
            continue
        out[name] = _strings(keywords, f"denied_topics.{name}", errors)
    return MappingProxyType(out)
