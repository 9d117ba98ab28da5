"""The Converse dialect as Bedrock Runtime speaks it: request validation, deterministic answers, the
wire documents and stream events, prompt caching, and the mapping to and from an OpenAI-compatible
upstream for forwarding.

`parse_converse` validates a body the way Bedrock does, with Bedrock's ValidationException messages
(never quoting the request): roles alternate from a user turn; blocks are one of the known kinds;
images are base64 on the JSON wire, png/jpeg/gif/webp, at most 3.75 MB decoded and 20 a request;
`toolUse` only in assistant turns and `toolResult` only in user turns, each result answering a call
of the assistant turn just before it (and, for Claude, every call answered); a `toolConfig` whenever
tool blocks appear; `toolChoice` naming an offered tool; signed reasoning blocks carried back
unchanged (a tampered block is refused, as Claude refuses it); Claude's thinking rules (budget at
least 1024 and below maxTokens, no forced tool, no temperature but 1). A model without a feature
(routes.json `capabilities`) refuses it as Bedrock refuses it.

`emulate` answers deterministically. With tools offered and the last turn the user's text (or a
forced choice), the answer is a `toolUse` (one per tool the text names, in parallel, or the first
tool) whose input is an instance of the tool's schema
(`schema_instances.instance_for`) and the stop reason `tool_use`; after tool results the answer is
text that quotes them; `outputConfig.textFormat` is answered with a schema instance as text;
thinking adds a `reasoningContent` block signed with an HMAC over its text.

`PromptCache` is the cachePoint accounting: the prefix before each checkpoint (tools, then system,
then messages) is written on first sight (`cacheWriteInputTokens`) and read when seen again within
its 5-minute TTL, which each hit resets (`cacheReadInputTokens`); `inputTokens` excludes both.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from llmops.domain.chat import Capability
from llmops.domain.model_ids import ModelFamily
from llmops.local.emulators.answers import EmulatedFinish, Generation, estimate_tokens, generate_answer, word_tokens
from llmops.local.emulators.schema_instances import instance_for

__all__ = [
    "ConverseAnswer",
    "ConverseCall",
    "ConverseError",
    "ConverseItems",
    "ModelTraits",
    "PromptCache",
    "ThinkingSigner",
    "answer_from_openai",
    "emulate",
    "openai_body",
    "openai_stream_items",
    "parse_converse",
    "prompt_text",
    "stream_items",
    "usage",
    "with_cache",
]

MAX_IMAGE_BYTES = 3_750_000  # 3.75 MB per image, decoded
MAX_IMAGES = 20
# A vision encoder's cost of one image, as prompt tokens (Claude: width*height/750, ~1.6k at 1092px).
IMAGE_TOKENS = 1600
MIN_THINKING_BUDGET = 1024
# Bedrock ignores a checkpoint whose prefix is shorter than the model's minimum (1,024 for most).
MIN_CACHE_TOKENS = 1024
CACHE_TTL_S = 300.0

_IMAGE_MAGIC = {
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpeg": (b"\xff\xd8\xff",),
    "gif": (b"GIF87a", b"GIF89a"),
}
_BLOCK_KINDS = frozenset(
    {"text", "image", "document", "video", "toolUse", "toolResult", "guardContent", "cachePoint", "reasoningContent"}
)
_STOP_REASONS = {
    EmulatedFinish.END: "end_turn",
    EmulatedFinish.LENGTH: "max_tokens",
    EmulatedFinish.STOP_SEQUENCE: "stop_sequence",
}

_MALFORMED = "Malformed input request, please reformat your input and try again."
_STARTS_WITH_USER = (
    "A conversation must start with a user message. Try again with a conversation that starts with a user message."
)
_ALTERNATE = (
    "A conversation must alternate between user and assistant roles. "
    "Make sure the conversation alternates between user and assistant roles and try again."
)
_TOOL_CONFIG_NEEDED = "The toolConfig field must be defined when using toolUse and toolResult content blocks."
_NO_TOOLS = "This model doesn't support tool use."
_NO_IMAGES = "This model doesn't support the image content block that you provided."
_NO_CACHING = "You invoked an unsupported model or your request did not allow prompt caching."
_NO_REASONING = "The model returned the following errors: thinking: Extra inputs are not permitted"


class ConverseError(Exception):
    """A request Bedrock would reject with ValidationException (the message is Bedrock's own)."""


_GUARDRAIL_ID = re.compile(r"[a-z0-9]+|arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:guardrail/[a-z0-9]+")
_GUARDRAIL_VERSION = re.compile(r"[1-9][0-9]{0,7}|DRAFT")
_GUARDRAIL_CHOICES: Mapping[str, tuple[str, ...]] = {
    "trace": ("enabled", "disabled", "enabled_full"),
    "streamProcessingMode": ("sync", "async"),
}


def check_guardrail_config(value: Any, *, streaming: bool) -> None:
    """`guardrailConfig` as Bedrock checks it: an identifier (id or ARN) and version in Bedrock's
    patterns, `trace` on both operations and `streamProcessingMode` only on ConverseStream. The
    emulator then applies it (`guardrail_services.ConverseGuardrail`)."""
    if value is None:
        return
    allowed = {"guardrailIdentifier", "guardrailVersion", "trace"} | ({"streamProcessingMode"} if streaming else set())
    if not isinstance(value, dict) or not {"guardrailIdentifier", "guardrailVersion"} <= set(value) <= allowed:
        raise ConverseError(
            f"guardrailConfig must have guardrailIdentifier and guardrailVersion and only {', '.join(sorted(allowed))}."
        )
    identifier, version = value["guardrailIdentifier"], value["guardrailVersion"]
    if not isinstance(identifier, str) or not _GUARDRAIL_ID.fullmatch(identifier):
        raise ConverseError(
            "1 validation error detected: Value at 'guardrailConfig.guardrailIdentifier' failed to "
            "satisfy constraint: Member must satisfy regular expression pattern"
        )
    if not isinstance(version, str) or not _GUARDRAIL_VERSION.fullmatch(version):
        raise ConverseError(
            "1 validation error detected: Value at 'guardrailConfig.guardrailVersion' failed to "
            "satisfy constraint: Member must satisfy regular expression pattern"
        )
    for key, choices in _GUARDRAIL_CHOICES.items():
        if key in value and value[key] not in choices:
            raise ConverseError(f"guardrailConfig.{key} must be one of {', '.join(choices)}.")


@dataclass(frozen=True, slots=True)
class ModelTraits:
    """What the emulated model is: its family (whose rules apply) and what it supports (None: all)."""

    family: ModelFamily = ModelFamily.OTHER
    features: frozenset[Capability] | None = None

    def can(self, capability: Capability) -> bool:
        return self.features is None or capability in self.features


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    schema: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ConverseCall:
    """A validated Converse request, with what answering it needs."""

    model_id: str
    body: Mapping[str, Any]
    traits: ModelTraits
    tools: tuple[Tool, ...] = ()
    tool_choice: str = "auto"  # auto | any | tool
    tool_name: str | None = None
    thinking: bool = False  # the family's reasoning is on (Claude thinking, Nova 2, gpt-oss, R1)
    output_schema: Mapping[str, Any] | None = None  # outputConfig.textFormat's schema
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    images: int = 0


@dataclass(frozen=True, slots=True)
class ConverseAnswer(Generation):
    """A `Generation` with Converse's output: its content blocks (as JSON on the wire: blobs as
    base64) and stop reason, and the prompt-cache counts. Being a `Generation`, it ends an item
    stream the way every emulated stream ends (`EmulatorApp.pace` relies on that)."""

    content: tuple[Mapping[str, Any], ...] = ()
    stop_reason: str = "end_turn"
    cache_read: int = 0
    cache_write: int = 0
    caching: bool = False  # the request had checkpoints: the cache counts are reported


# A streamed answer: (event type, payload) for contentBlockStart/contentBlockDelta events, then the answer.
ConverseItems = Iterator[tuple[str, dict[str, Any]] | Generation]


class ThinkingSigner:
    """Signs reasoning blocks so a block sent back altered is refused, as Claude's signatures make it."""

    def __init__(self, key: bytes = b"llmops-local-bedrock-thinking") -> None:
        self._key = key

    def sign(self, text: str) -> str:
        return base64.b64encode(hmac.new(self._key, text.encode(), hashlib.sha256).digest()).decode()

    def verify(self, text: str, signature: str) -> bool:
        return hmac.compare_digest(self.sign(text), signature)


# --- validation ------------------------------------------------------------------------------------


def parse_converse(raw: bytes, model_id: str, traits: ModelTraits, signer: ThinkingSigner) -> ConverseCall:
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        raise ConverseError(_MALFORMED) from exc
    if not isinstance(body, dict):
        raise ConverseError(_MALFORMED)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ConverseError(_STARTS_WITH_USER)
    images, tool_blocks, caching = _check_messages(messages, traits, signer)
    caching = _check_system(body.get("system")) or caching
    tools, choice, tool_name, tools_cached = _tool_config(body.get("toolConfig"), traits)
    caching = caching or tools_cached
    if tool_blocks and body.get("toolConfig") is None:
        raise ConverseError(_TOOL_CONFIG_NEEDED)
    if caching and not traits.can(Capability.PROMPT_CACHING):
        raise ConverseError(_NO_CACHING)
    config = body.get("inferenceConfig") or {}
    if not isinstance(config, dict):
        raise ConverseError(_MALFORMED)
    max_tokens = config.get("maxTokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise ConverseError("The maximum tokens you requested exceeds the model limit or is below 1.")
    for name in ("temperature", "topP"):
        value = config.get(name)
        if value is not None and (not isinstance(value, int | float) or not 0 <= float(value) <= 1):
            raise ConverseError(f"{name} must be between 0 and 1.")
    thinking = _check_reasoning_fields(body, traits, config, choice, messages)
    return ConverseCall(
        model_id=model_id,
        body=body,
        traits=traits,
        tools=tools,
        tool_choice=choice,
        tool_name=tool_name,
        thinking=thinking,
        output_schema=_output_schema(body.get("outputConfig")),
        max_tokens=max_tokens,
        stop=tuple(str(s) for s in config.get("stopSequences", [])),
        images=images,
    )


def _check_messages(messages: list[Any], traits: ModelTraits, signer: ThinkingSigner) -> tuple[int, bool, bool]:
    """Validates the turns; returns how many images, whether tool blocks, whether checkpoints."""
    claude = traits.family is ModelFamily.ANTHROPIC_CLAUDE
    images, tool_blocks, caching = 0, False, False
    previous_role: str | None = None
    previous_calls: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise ConverseError(
                f"Value at 'messages.{i + 1}.member.role' failed to satisfy constraint: "
                "Member must satisfy enum value set: [user, assistant]"
            )
        if i == 0 and role != "user":
            raise ConverseError(_STARTS_WITH_USER)
        if role == previous_role:
            raise ConverseError(_ALTERNATE)
        previous_role = role
        content = message.get("content")
        if not isinstance(content, list) or not content:
            raise ConverseError(
                f"The content field in the Message object at messages.{i} is empty. "
                "Add a ContentBlock object to the content field and try again."
            )
        calls: set[str] = set()
        answered: set[str] = set()
        for j, block in enumerate(content):
            kind = _block_kind(block, f"messages.{i + 1}.member.content.{j + 1}")
            where = f"messages.{i}.content.{j}"
            if kind == "text" and not str(block["text"]).strip():
                raise ConverseError(
                    f"The text field in the ContentBlock object at {where} is blank. "
                    "Add text to the text field, and try again."
                )
            if kind == "image":
                if not traits.can(Capability.IMAGES):
                    raise ConverseError(_NO_IMAGES)
                _check_image(block["image"], where)
                images += 1
            elif kind == "toolUse":
                tool_blocks = True
                calls.add(_check_tool_use(block["toolUse"], role, where))
            elif kind == "toolResult":
                tool_blocks = True
                answered.add(_check_tool_result(block["toolResult"], role, where, previous_calls))
            elif kind == "cachePoint":
                caching = True
                _check_cache_point(block["cachePoint"], where)
            elif kind == "reasoningContent":
                _check_reasoning(block["reasoningContent"], role, where, claude=claude, signer=signer)
        if claude and role == "user" and previous_calls - answered:
            raise ConverseError(
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after. "
                "Each `tool_use` block must have a corresponding `tool_result` block in the next message."
            )
        previous_calls = calls
    if images > MAX_IMAGES:
        raise ConverseError(f"Too many images were provided in the request. The maximum is {MAX_IMAGES}.")
    return images, tool_blocks, caching


def _check_system(system: Any) -> bool:
    """Validates the system blocks; returns whether they hold a checkpoint."""
    caching = False
    for k, block in enumerate(system or []):
        if not isinstance(block, dict) or not block:
            raise ConverseError(_MALFORMED)
        if "cachePoint" in block:
            caching = True
            _check_cache_point(block["cachePoint"], f"system.{k}")
        elif "text" in block and not str(block["text"]).strip():
            raise ConverseError(f"The text field in the SystemContentBlock at system.{k} is blank.")
    return caching


def _block_kind(block: Any, where: str) -> str:
    kinds = [k for k in block if k in _BLOCK_KINDS] if isinstance(block, dict) else []
    if len(kinds) != 1 or len(block) != 1:
        raise ConverseError(f"Value at '{where}' failed to satisfy constraint: a ContentBlock has exactly one member.")
    return str(kinds[0])


def _decode_blob(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise ConverseError(_MALFORMED)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConverseError(f"Invalid base64 data at {where}.") from exc


def _check_image(image: Any, where: str) -> None:
    if not isinstance(image, dict) or not isinstance(image.get("source"), dict):
        raise ConverseError(_MALFORMED)
    fmt = image.get("format")
    if fmt not in ("png", "jpeg", "gif", "webp"):
        raise ConverseError(
            f"Value at '{where}.image.format' failed to satisfy constraint: "
            "Member must satisfy enum value set: [png, jpeg, gif, webp]"
        )
    data = _decode_blob(image["source"].get("bytes"), where)
    if not data:
        raise ConverseError(f"The image at {where} is empty.")
    if len(data) > MAX_IMAGE_BYTES:
        raise ConverseError(f"The image at {where} exceeds the maximum size of 3.75 MB.")
    magics = _IMAGE_MAGIC.get(fmt)
    webp = fmt == "webp" and data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    if not webp and not (magics and data.startswith(magics)):
        raise ConverseError(f"Could not process the image at {where}: the bytes are not a valid {fmt} image.")


def _check_tool_use(use: Any, role: str, where: str) -> str:
    if role != "assistant":
        raise ConverseError(f"A toolUse block can only be in an assistant message ({where}).")
    if not isinstance(use, dict) or not use.get("toolUseId") or not use.get("name") or "input" not in use:
        raise ConverseError(_MALFORMED)
    if not isinstance(use["input"], dict):
        raise ConverseError(f"The toolUse input at {where} must be a JSON object.")
    return str(use["toolUseId"])


def _check_tool_result(result: Any, role: str, where: str, calls: set[str]) -> str:
    if role != "user":
        raise ConverseError(f"A toolResult block can only be in a user message ({where}).")
    if not isinstance(result, dict) or not result.get("toolUseId") or not isinstance(result.get("content"), list):
        raise ConverseError(_MALFORMED)
    use_id = str(result["toolUseId"])
    if use_id not in calls:
        raise ConverseError(
            f"The toolResult block at {where} has a toolUseId that doesn't match any toolUse block in the "
            "previous assistant message."
        )
    if result.get("status") not in (None, "success", "error"):
        raise ConverseError(_MALFORMED)
    for item in result["content"]:
        if (
            not isinstance(item, dict)
            or len(item) != 1
            or next(iter(item)) not in ("text", "json", "image", "document")
        ):
            raise ConverseError(_MALFORMED)
    return use_id


def _check_cache_point(point: Any, where: str) -> None:
    if not isinstance(point, dict) or point.get("type") != "default" or point.get("ttl") not in (None, "5m", "1h"):
        raise ConverseError(f"Value at '{where}.cachePoint.type' failed to satisfy constraint: [default]")


def _check_reasoning(block: Any, role: str, where: str, *, claude: bool, signer: ThinkingSigner) -> None:
    if role != "assistant":
        raise ConverseError(f"A reasoningContent block can only be in an assistant message ({where}).")
    if not isinstance(block, dict) or len(block) != 1:
        raise ConverseError(_MALFORMED)
    if "redactedContent" in block:
        _decode_blob(block["redactedContent"], where)
        return
    text = block.get("reasoningText")
    if not isinstance(text, dict) or not isinstance(text.get("text"), str):
        raise ConverseError(_MALFORMED)
    signature = text.get("signature")
    if claude:
        # Bedrock passes Claude's refusal through, prefixed as every model error is.
        if not isinstance(signature, str):
            raise ConverseError(f"The model returned the following errors: {where}.thinking.signature: Field required")
        if not signer.verify(text["text"], signature):
            raise ConverseError(
                f"The model returned the following errors: {where}: Invalid `signature` in `thinking` block"
            )


def _tool_config(raw: Any, traits: ModelTraits) -> tuple[tuple[Tool, ...], str, str | None, bool]:
    if raw is None:
        return (), "auto", None, False
    if not traits.can(Capability.TOOLS):
        raise ConverseError(_NO_TOOLS)
    if not isinstance(raw, dict) or not isinstance(raw.get("tools"), list) or not raw["tools"]:
        raise ConverseError("The toolConfig field must contain at least one tool.")
    tools: list[Tool] = []
    cached = False
    for k, entry in enumerate(raw["tools"]):
        if isinstance(entry, dict) and "cachePoint" in entry:
            _check_cache_point(entry["cachePoint"], f"toolConfig.tools.{k}")
            cached = True
            continue
        spec = entry.get("toolSpec") if isinstance(entry, dict) else None
        name = spec.get("name") if isinstance(spec, dict) else None
        schema = (spec.get("inputSchema") or {}).get("json") if isinstance(spec, dict) else None
        if (
            not isinstance(name, str)
            or not name
            or len(name) > 64
            or not name.replace("_", "").replace("-", "").isalnum()
        ):
            raise ConverseError(
                f"Value at 'toolConfig.tools.{k + 1}.member.toolSpec.name' failed to satisfy constraint."
            )
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise ConverseError(f"The input schema of tool {k} must be a JSON Schema object with type object.")
        if any(t.name == name for t in tools):
            raise ConverseError("The toolConfig field contains tools with duplicate names.")
        tools.append(Tool(name, schema))
    choice = raw.get("toolChoice") or {"auto": {}}
    if not isinstance(choice, dict) or len(choice) != 1 or next(iter(choice)) not in ("auto", "any", "tool"):
        raise ConverseError(_MALFORMED)
    mode = next(iter(choice))
    name = None
    if mode == "tool":
        name = (choice["tool"] or {}).get("name")
        if not any(t.name == name for t in tools):
            raise ConverseError("The tool named in toolChoice isn't in the toolConfig's tools.")
    return tuple(tools), mode, name, cached


def _check_reasoning_fields(
    body: Mapping[str, Any], traits: ModelTraits, config: Mapping[str, Any], choice: str, messages: Sequence[Any]
) -> bool:
    fields = body.get("additionalModelRequestFields") or {}
    if not isinstance(fields, dict):
        raise ConverseError(_MALFORMED)
    family = traits.family
    if family is ModelFamily.DEEPSEEK_R1:
        return True
    if family is ModelFamily.AMAZON_NOVA_2:
        reasoning = fields.get("reasoningConfig")
        return isinstance(reasoning, dict) and reasoning.get("type") == "enabled"
    if family is ModelFamily.OPENAI_GPT_OSS:
        return fields.get("reasoning_effort") is not None
    thinking = fields.get("thinking")
    if family is not ModelFamily.ANTHROPIC_CLAUDE or not isinstance(thinking, dict):
        return False
    if thinking.get("type") != "enabled":
        return False
    if not traits.can(Capability.REASONING):
        raise ConverseError(_NO_REASONING)
    budget = thinking.get("budget_tokens")
    prefix = "The model returned the following errors: "
    if not isinstance(budget, int) or budget < MIN_THINKING_BUDGET:
        raise ConverseError(f"{prefix}thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
    max_tokens = config.get("maxTokens")
    if max_tokens is None or max_tokens <= budget:
        raise ConverseError(f"{prefix}`max_tokens` must be greater than `thinking.budget_tokens`.")
    if config.get("temperature") not in (None, 1, 1.0):
        raise ConverseError(f"{prefix}`temperature` may only be set to 1 when thinking is enabled.")
    if config.get("topP") is not None and float(config["topP"]) < 0.95:
        raise ConverseError(f"{prefix}`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled.")
    if choice in ("any", "tool"):
        raise ConverseError(f"{prefix}Thinking may not be enabled when tool_choice forces tool use.")
    last_assistant = next((m for m in reversed(messages) if m.get("role") == "assistant"), None)
    if (
        last_assistant is not None
        and messages[-1].get("role") == "user"
        and any("toolResult" in b for b in messages[-1]["content"])
        and "reasoningContent" not in last_assistant["content"][0]
    ):
        # Claude needs its reasoning before the calls it made while thinking, when their results come back.
        raise ConverseError(
            f"{prefix}messages.{len(messages) - 2}.content.0.type: Expected `thinking` or `redacted_thinking`, "
            "but found `tool_use`. When `thinking` is enabled, a final `assistant` message must start with a "
            "thinking block."
        )
    return True


def _output_schema(raw: Any) -> Mapping[str, Any] | None:
    if raw is None:
        return None
    fmt = raw.get("textFormat") if isinstance(raw, dict) else None
    if fmt is None:
        return None
    try:
        if fmt["type"] != "json_schema":
            raise ConverseError(_MALFORMED)
        schema = json.loads(fmt["structure"]["jsonSchema"]["schema"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConverseError("The outputConfig.textFormat schema is not a valid JSON schema.") from exc
    if not isinstance(schema, dict):
        raise ConverseError("The outputConfig.textFormat schema is not a valid JSON schema.")
    return schema


# --- prompt text and the prompt cache ---------------------------------------------------------------


def _block_text(block: Mapping[str, Any]) -> str:
    """What a block costs as prompt text (images are counted apart, as IMAGE_TOKENS)."""
    if "text" in block:
        return str(block["text"])
    if "toolUse" in block:
        use = block["toolUse"]
        return f"{use.get('name')}{json.dumps(use.get('input'), sort_keys=True)}"
    if "toolResult" in block:
        return "".join(str(c.get("text", json.dumps(c.get("json")))) for c in block["toolResult"]["content"])
    if "reasoningContent" in block:
        return str((block["reasoningContent"].get("reasoningText") or {}).get("text", ""))
    return ""


def _segments(body: Mapping[str, Any]) -> list[tuple[str, int, bool]]:
    """The prompt in Bedrock's cache order (tools, system, messages) as (text, images, is_checkpoint)."""
    out: list[tuple[str, int, bool]] = []
    for entry in (body.get("toolConfig") or {}).get("tools") or []:
        out.append(("", 0, True) if "cachePoint" in entry else (json.dumps(entry, sort_keys=True), 0, False))
    system = [b for b in body.get("system") or [] if "text" in b or "cachePoint" in b]
    for k, block in enumerate(system):
        if "cachePoint" in block:
            out.append(("", 0, True))
        else:
            joiner = "\n\n" if k and "text" in system[k - 1] else ""
            out.append((joiner + str(block["text"]), 0, False))
    for message in body["messages"]:
        previous_text = False
        for block in message["content"]:
            if "cachePoint" in block:
                out.append(("", 0, True))
                continue
            text = _block_text(block)
            out.append((("\n\n" if previous_text and "text" in block else "") + text, int("image" in block), False))
            previous_text = "text" in block
    return out


def _prompt_tokens(segments: Sequence[tuple[str, int, bool]]) -> int:
    return estimate_tokens("".join(s[0] for s in segments)) + IMAGE_TOKENS * sum(s[1] for s in segments)


class PromptCache:
    """The prefix cache behind cachePoint: prefix digest -> expiry, per model, with Bedrock's TTL."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, ttl_s: float = CACHE_TTL_S) -> None:
        self._clock = clock
        self._ttl_s = ttl_s
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def account(self, model_id: str, body: Mapping[str, Any]) -> tuple[int, int] | None:
        """(cache read, cache write) tokens of this request, updating the cache as Bedrock does: the
        longest cached prefix is read (its TTL reset), the rest up to the last checkpoint written.
        None when the request has no checkpoints (then Bedrock reports no cache counts)."""
        segments = _segments(body)
        if not any(s[2] for s in segments):
            return None
        checkpoints: list[tuple[str, int]] = []
        digest = hashlib.sha256(model_id.encode())
        for k, (text, images, is_point) in enumerate(segments):
            digest.update(f"{text}\x00{images}\x00".encode())
            if is_point:
                tokens = _prompt_tokens(segments[:k])
                if tokens >= MIN_CACHE_TOKENS:
                    checkpoints.append((digest.copy().hexdigest(), tokens))
        if not checkpoints:
            return 0, 0
        now = self._clock()
        with self._lock:
            hits = [tokens for key, tokens in checkpoints if self._expiry.get(key, 0.0) > now]
            read = max(hits, default=0)
            for key, _ in checkpoints:
                self._expiry[key] = now + self._ttl_s
            for key in [k for k, expiry in self._expiry.items() if expiry <= now]:
                del self._expiry[key]
        return read, checkpoints[-1][1] - read


# --- emulated answers -------------------------------------------------------------------------------


def prompt_text(call: ConverseCall) -> str:
    """The prompt as text, system first (what the deterministic answer is a function of)."""
    return "".join(s[0] for s in _segments(call.body))


def _last_user(call: ConverseCall) -> Mapping[str, Any]:
    last: Mapping[str, Any] = call.body["messages"][-1]
    return last


def _tools_to_call(call: ConverseCall) -> tuple[Tool, ...]:
    """The tools this answer calls: the forced one; else those the user's last text names, in the
    order named (Claude calls independent tools in parallel), or the first tool; none after tool
    results unless a call is forced."""
    if not call.tools:
        return ()
    if call.tool_choice == "tool":
        return tuple(t for t in call.tools if t.name == call.tool_name)
    last = _last_user(call)
    after_results = last["role"] == "user" and any("toolResult" in b for b in last["content"])
    if last["role"] != "user" or (call.tool_choice == "auto" and after_results):
        return ()  # after tool results the model answers with text
    if after_results:
        # Forced to call again after results: a tool not called yet (the structured-output tool
        # beside the caller's tools is how a final structured answer is given).
        called = {b["toolUse"]["name"] for m in call.body["messages"] for b in m["content"] if "toolUse" in b}
        return (next((t for t in call.tools if t.name not in called), call.tools[0]),)
    asked = " ".join(str(b.get("text", "")) for b in last["content"]).lower()
    named = sorted((asked.find(t.name.lower()), k) for k, t in enumerate(call.tools) if t.name.lower() in asked)
    return tuple(call.tools[k] for _, k in named) or call.tools[:1]


def _subject(call: ConverseCall) -> str:
    """What the answer speaks about: the tool results if the last turn carries them, else the user's text."""
    last = _last_user(call)
    results = [b["toolResult"] for b in last["content"] if "toolResult" in b]
    if results:
        texts = [str(c.get("text", json.dumps(c.get("json")))) for r in results for c in r["content"]]
        return "Tool results: " + " ".join(texts)
    subject = " ".join(str(b["text"]) for b in last["content"] if "text" in b)
    if call.images:
        subject += f" [{call.images} image{'s' if call.images > 1 else ''}]"
    return subject


def _reasoning_block(call: ConverseCall, signer: ThinkingSigner, text_seed: str) -> dict[str, Any]:
    words = generate_answer(model=call.model_id, last_user_text="", prompt_text=text_seed, max_tokens=None).text
    text = "Thinking it through: " + words.split("|", 1)[-1].strip()
    if call.traits.family is ModelFamily.AMAZON_NOVA_2:
        return {"reasoningContent": {"reasoningText": {"text": "[REDACTED]"}}}  # Nova 2 withholds its reasoning
    reasoning: dict[str, Any] = {"text": text}
    if call.traits.family is ModelFamily.ANTHROPIC_CLAUDE:
        reasoning["signature"] = signer.sign(text)
    return {"reasoningContent": {"reasoningText": reasoning}}


def emulate(call: ConverseCall, signer: ThinkingSigner) -> ConverseAnswer:
    """The deterministic answer: a pure function of the model id and everything in the prompt."""
    text_of_prompt = prompt_text(call)
    input_tokens = _prompt_tokens(_segments(call.body))
    content: list[dict[str, Any]] = []
    used = 0
    if call.thinking:
        content.append(_reasoning_block(call, signer, text_of_prompt))
        used += len(word_tokens(_block_text(content[0])))
    tools = _tools_to_call(call)
    if tools:
        for position, tool in enumerate(tools):
            seed = f"{call.model_id}\n{text_of_prompt}\n{position}"
            digest = hashlib.sha256(seed.encode()).digest()[:16]
            use_id = "tooluse_" + base64.urlsafe_b64encode(digest).decode().rstrip("=").replace("-", "_")
            arguments = instance_for(tool.schema, seed)
            content.append({"toolUse": {"toolUseId": use_id, "name": tool.name, "input": arguments}})
            used += 1 + len(word_tokens(json.dumps(arguments)))
        return ConverseAnswer(
            text="", finish=EmulatedFinish.END, input_tokens=input_tokens, output_tokens=used,
            content=tuple(content), stop_reason="tool_use",
        )  # fmt: skip
    if call.output_schema is not None:
        words = word_tokens(json.dumps(instance_for(call.output_schema, f"{call.model_id}\n{text_of_prompt}")))
        finish = EmulatedFinish.END
        if call.max_tokens is not None and len(words) > call.max_tokens:
            words, finish = words[: call.max_tokens], EmulatedFinish.LENGTH
        generation = Generation("".join(words), finish, input_tokens, len(words))
    else:
        generation = generate_answer(
            model=call.model_id,
            last_user_text=_subject(call),
            prompt_text=text_of_prompt,
            max_tokens=call.max_tokens,
            stop=call.stop,
        )
    if generation.text:
        content.append({"text": generation.text})
    return ConverseAnswer(
        text=generation.text,
        finish=generation.finish,
        input_tokens=input_tokens,
        output_tokens=used + generation.output_tokens,
        stop_sequence=generation.stop_sequence,
        content=tuple(content),
        stop_reason=_STOP_REASONS[generation.finish],
    )


def with_cache(answer: Generation, counts: tuple[int, int] | None) -> ConverseAnswer:
    """`answer` with the request's prompt-cache counts (`PromptCache.account`): the cache is
    Bedrock's, so it applies to forwarded answers too."""
    answer = answer if isinstance(answer, ConverseAnswer) else _as_converse(answer)
    if counts is None:
        return answer
    # A forwarded upstream's own prompt count may be below the emulator's estimate of the prefix.
    read = min(counts[0], answer.input_tokens)
    write = min(counts[1], answer.input_tokens - read)
    return replace(answer, cache_read=read, cache_write=write, caching=True)


def _as_converse(generation: Generation) -> ConverseAnswer:
    return ConverseAnswer(
        text=generation.text,
        finish=generation.finish,
        input_tokens=generation.input_tokens,
        output_tokens=generation.output_tokens,
        stop_sequence=generation.stop_sequence,
        content=({"text": generation.text},) if generation.text else (),
        stop_reason=_STOP_REASONS.get(generation.finish, "end_turn"),
    )


def usage(answer: Generation) -> dict[str, int]:
    """Converse's usage: `inputTokens` without the cached tokens, which are reported apart."""
    read = answer.cache_read if isinstance(answer, ConverseAnswer) else 0
    write = answer.cache_write if isinstance(answer, ConverseAnswer) else 0
    doc = {
        "inputTokens": answer.input_tokens - read - write,
        "outputTokens": answer.output_tokens,
        "totalTokens": answer.input_tokens + answer.output_tokens,
    }
    if isinstance(answer, ConverseAnswer) and answer.caching:
        doc["cacheReadInputTokens"] = read
        doc["cacheWriteInputTokens"] = write
    return doc


def stream_items(answer: ConverseAnswer) -> ConverseItems:
    """The answer as ConverseStream sends it: per block, its deltas (a toolUse opened by a
    contentBlockStart carrying id and name, its input in JSON pieces; reasoning text, then its
    signature), each with the block's contentBlockIndex; then the answer itself."""
    for index, block in enumerate(answer.content):
        if "text" in block:
            for piece in word_tokens(str(block["text"])):
                yield "contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}}
        elif "toolUse" in block:
            use = block["toolUse"]
            start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
            yield "contentBlockStart", {"contentBlockIndex": index, "start": start}
            for piece in word_tokens(json.dumps(use["input"])) or ["{}"]:
                yield "contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": piece}}}
        elif "reasoningContent" in block:
            reasoning = block["reasoningContent"]
            if "redactedContent" in reasoning:
                delta: dict[str, Any] = {"redactedContent": reasoning["redactedContent"]}
                yield "contentBlockDelta", {"contentBlockIndex": index, "delta": {"reasoningContent": delta}}
                continue
            text = reasoning.get("reasoningText") or {}
            for piece in word_tokens(str(text.get("text", ""))):
                yield "contentBlockDelta", {"contentBlockIndex": index, "delta": {"reasoningContent": {"text": piece}}}
            if text.get("signature") is not None:
                delta = {"reasoningContent": {"signature": text["signature"]}}
                yield "contentBlockDelta", {"contentBlockIndex": index, "delta": delta}
    yield answer


# --- forwarding to an OpenAI-compatible upstream ----------------------------------------------------


def _data_url(image: Mapping[str, Any]) -> str:
    media = "image/jpeg" if image["format"] == "jpeg" else f"image/{image['format']}"
    return f"data:{media};base64,{image['source']['bytes']}"


def openai_body(call: ConverseCall) -> dict[str, Any]:
    """The chat.completions body for `call`: system blocks as a system message, text and images as
    content parts, toolUse as assistant tool_calls, each toolResult as a tool message, toolConfig as
    tools and tool_choice, outputConfig as response_format, inferenceConfig as sampling fields, and
    the family's reasoning fields as reasoning_effort."""
    body = call.body
    messages: list[dict[str, Any]] = []
    system = "\n\n".join(str(b["text"]) for b in body.get("system") or [] if "text" in b)
    if system:
        messages.append({"role": "system", "content": system})
    for message in body["messages"]:
        parts: list[dict[str, Any]] = []
        calls: list[dict[str, Any]] = []
        for block in message["content"]:
            if "text" in block:
                parts.append({"type": "text", "text": str(block["text"])})
            elif "image" in block:
                parts.append({"type": "image_url", "image_url": {"url": _data_url(block["image"])}})
            elif "toolUse" in block:
                use = block["toolUse"]
                function = {"name": use["name"], "arguments": json.dumps(use["input"])}
                calls.append({"id": use["toolUseId"], "type": "function", "function": function})
            elif "toolResult" in block:
                result = block["toolResult"]
                text = "".join(str(c.get("text", json.dumps(c.get("json")))) for c in result["content"])
                messages.append({"role": "tool", "tool_call_id": result["toolUseId"], "content": text})
        if message["role"] == "assistant":
            assistant: dict[str, Any] = {
                "role": "assistant",
                "content": "".join(p.get("text", "") for p in parts) or None,
            }
            if calls:
                assistant["tool_calls"] = calls
            messages.append(assistant)
        elif parts:
            plain = all(p["type"] == "text" for p in parts)
            messages.append({"role": "user", "content": "\n\n".join(p["text"] for p in parts) if plain else parts})
    out: dict[str, Any] = {"messages": messages}
    config = body.get("inferenceConfig") or {}
    for wire, name in (("maxTokens", "max_tokens"), ("temperature", "temperature"), ("topP", "top_p")):
        if config.get(wire) is not None:
            out[name] = config[wire]
    if config.get("stopSequences"):
        out["stop"] = list(config["stopSequences"])
    if call.tools:
        out["tools"] = [
            {"type": "function", "function": {"name": t.name, "parameters": dict(t.schema)}} for t in call.tools
        ]
        if call.tool_choice == "any":
            out["tool_choice"] = "required"
        elif call.tool_choice == "tool":
            out["tool_choice"] = {"type": "function", "function": {"name": call.tool_name}}
    effort = _reasoning_effort(body.get("additionalModelRequestFields") or {}) if call.thinking else None
    if effort is not None:
        out["reasoning_effort"] = effort
    if call.output_schema is not None:
        out["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": dict(call.output_schema), "strict": True},
        }
    return out


def _reasoning_effort(fields: Mapping[str, Any]) -> str | None:
    """The family's reasoning fields as OpenAI's `reasoning_effort`, for a reasoning upstream."""
    if isinstance(fields.get("reasoning_effort"), str):
        return str(fields["reasoning_effort"])
    nova = fields.get("reasoningConfig")
    if isinstance(nova, Mapping) and isinstance(nova.get("maxReasoningEffort"), str):
        return str(nova["maxReasoningEffort"])
    thinking = fields.get("thinking")
    if isinstance(thinking, Mapping) and isinstance(thinking.get("budget_tokens"), int):
        budget = int(thinking["budget_tokens"])
        return "low" if budget <= 1024 else "medium" if budget <= 4096 else "high"
    return None


def _tool_input(arguments: Any) -> dict[str, Any]:
    try:
        value = json.loads(arguments) if isinstance(arguments, str) and arguments.strip() else arguments or {}
    except ValueError:
        value = None
    # Bedrock answers `malformed_tool_use` for unparsable arguments; an object keeps the document valid.
    return value if isinstance(value, dict) else {}


def _tool_use_id(call_id: Any, index: int) -> str:
    raw = str(call_id or f"call_{index}")
    return "".join(c if c.isalnum() or c in "_.:-" else "_" for c in raw)[:64]


_OPENAI_STOPS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "content_filtered",
}


def answer_from_openai(call: ConverseCall, doc: Any) -> ConverseAnswer:
    """A chat.completion document as the Converse answer (raises KeyError/TypeError/ValueError if malformed)."""
    choice = doc["choices"][0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if reasoning:
        content.append({"reasoningContent": {"reasoningText": {"text": str(reasoning)}}})
    text = str(message.get("content") or "")
    if text:
        content.append({"text": text})
    for index, tool_call in enumerate(message.get("tool_calls") or []):
        function = tool_call.get("function") or {}
        use = {
            "toolUseId": _tool_use_id(tool_call.get("id"), index),
            "name": str(function.get("name")),
            "input": _tool_input(function.get("arguments")),
        }
        content.append({"toolUse": use})
    stop = _OPENAI_STOPS.get(str(choice.get("finish_reason")), "end_turn")
    if any("toolUse" in b for b in content):
        stop = "tool_use"  # some servers say "stop" for a forced call; Converse always says tool_use
    reported = doc.get("usage") or {}
    return ConverseAnswer(
        text=text,
        finish=EmulatedFinish.LENGTH if stop == "max_tokens" else EmulatedFinish.END,
        input_tokens=int(reported.get("prompt_tokens") or estimate_tokens(prompt_text(call))),
        output_tokens=int(reported.get("completion_tokens") or len(text.split())),
        content=tuple(content),
        stop_reason=stop,
    )


@dataclass(slots=True)
class _Assembly:
    """Converse blocks being built from the upstream's chunks (indices as Converse numbers blocks)."""

    next_index: int = 0
    reasoning: int | None = None
    text: int | None = None
    tools: dict[int, int] = field(default_factory=dict)  # OpenAI tool_calls index -> block index
    texts: list[str] = field(default_factory=list)
    arguments: dict[int, list[str]] = field(default_factory=dict)
    names: dict[int, tuple[str, str]] = field(default_factory=dict)
    reasoning_text: list[str] = field(default_factory=list)

    def block(self, current: int | None) -> tuple[int, bool]:
        if current is not None:
            return current, False
        self.next_index += 1
        return self.next_index - 1, True


def openai_stream_items(call: ConverseCall, chunks: Iterator[Mapping[str, Any]]) -> ConverseItems:
    """The upstream's chat.completion.chunk objects as Converse stream items, then the answer."""
    state = _Assembly()
    finish: Any = None
    reported: Mapping[str, Any] = {}
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                state.reasoning, _ = state.block(state.reasoning)
                state.reasoning_text.append(str(reasoning))
                piece = {"reasoningContent": {"text": str(reasoning)}}
                yield "contentBlockDelta", {"contentBlockIndex": state.reasoning, "delta": piece}
            if delta.get("content"):
                state.text, _ = state.block(state.text)
                state.texts.append(str(delta["content"]))
                yield "contentBlockDelta", {"contentBlockIndex": state.text, "delta": {"text": str(delta["content"])}}
            for tool_call in delta.get("tool_calls") or []:
                position = int(tool_call.get("index", 0))
                function = tool_call.get("function") or {}
                if position not in state.tools:
                    state.tools[position], _ = state.block(None)
                    use_id, name = _tool_use_id(tool_call.get("id"), position), str(function.get("name"))
                    state.names[position] = (use_id, name)
                    start = {"toolUse": {"toolUseId": use_id, "name": name}}
                    yield "contentBlockStart", {"contentBlockIndex": state.tools[position], "start": start}
                if function.get("arguments"):
                    state.arguments.setdefault(position, []).append(str(function["arguments"]))
                    piece = {"toolUse": {"input": str(function["arguments"])}}
                    yield "contentBlockDelta", {"contentBlockIndex": state.tools[position], "delta": piece}
            finish = choice.get("finish_reason") or finish
        reported = chunk.get("usage") or reported
    content: list[tuple[int, dict[str, Any]]] = []
    if state.reasoning is not None:
        content.append(
            (state.reasoning, {"reasoningContent": {"reasoningText": {"text": "".join(state.reasoning_text)}}})
        )
    if state.text is not None:
        content.append((state.text, {"text": "".join(state.texts)}))
    for position, index in state.tools.items():
        use_id, name = state.names[position]
        use = {"toolUseId": use_id, "name": name, "input": _tool_input("".join(state.arguments.get(position, [])))}
        content.append((index, {"toolUse": use}))
    text = "".join(state.texts)
    stop = "tool_use" if state.tools else _OPENAI_STOPS.get(str(finish), "end_turn")
    yield ConverseAnswer(
        text=text,
        finish=EmulatedFinish.LENGTH if stop == "max_tokens" else EmulatedFinish.END,
        input_tokens=int(reported.get("prompt_tokens") or estimate_tokens(prompt_text(call))),
        output_tokens=int(reported.get("completion_tokens") or len(text.split())),
        content=tuple(block for _, block in sorted(content, key=lambda pair: pair[0])),
        stop_reason=stop,
    )
