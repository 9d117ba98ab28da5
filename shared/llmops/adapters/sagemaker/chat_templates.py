"""Prompt rendering for text-generation containers that take a raw prompt (TGI `inputs`).

These are the published chat formats written as plain string building: a Lambda must not pull in
jinja2 or transformers to apply a tokenizer's template. BOS tokens (`<|begin_of_text|>`, `<s>`) are
left out because TGI's tokenizer adds them itself; sending them would double them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

from llmops.domain.chat import Message, Role

__all__ = ["TEMPLATES", "UnknownChatTemplateError", "render_prompt"]


class UnknownChatTemplateError(ValueError):
    """The target names a template we do not know: a configuration error, not the caller's."""


def _chatml(messages: Sequence[Message]) -> str:
    turns = "".join(f"<|im_start|>{m.role.value}\n{m.content}<|im_end|>\n" for m in messages)
    return f"{turns}<|im_start|>assistant\n"


def _llama3(messages: Sequence[Message]) -> str:
    turns = "".join(
        f"<|start_header_id|>{m.role.value}<|end_header_id|>\n\n{m.content.strip()}<|eot_id|>" for m in messages
    )
    return f"{turns}<|start_header_id|>assistant<|end_header_id|>\n\n"


def _mistral(messages: Sequence[Message]) -> str:
    # Mistral Instruct has no system role and requires user/assistant alternation: system text is
    # prepended to the first user turn and consecutive same-role turns are joined.
    system = "\n\n".join(m.content for m in messages if m.role is Role.SYSTEM and m.content.strip())
    turns: list[tuple[Role, str]] = []
    for m in messages:
        if m.role is Role.SYSTEM or not m.content.strip():
            continue
        if turns and turns[-1][0] is m.role:
            turns[-1] = (m.role, f"{turns[-1][1]}\n\n{m.content}")
        else:
            turns.append((m.role, m.content))
    if system:
        first_user = next((i for i, (role, _) in enumerate(turns) if role is Role.USER), None)
        if first_user is None:
            turns.append((Role.USER, system))
        else:
            turns[first_user] = (Role.USER, f"{system}\n\n{turns[first_user][1]}")
    return "".join(
        f"[INST] {text.strip()} [/INST]" if role is Role.USER else f"{text.strip()}</s>" for role, text in turns
    )


TEMPLATES: Mapping[str, Callable[[Sequence[Message]], str]] = MappingProxyType(
    {"chatml": _chatml, "llama3": _llama3, "mistral": _mistral}
)


def render_prompt(template: str, messages: Sequence[Message]) -> str:
    renderer = TEMPLATES.get(template)
    if renderer is None:
        raise UnknownChatTemplateError(f"unknown chat template {template!r}; known: {', '.join(TEMPLATES)}")
    return renderer(messages)
