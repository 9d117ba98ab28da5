from __future__ import annotations

import pytest

from llmops.adapters.sagemaker.chat_templates import TEMPLATES, UnknownChatTemplateError, render_prompt
from llmops.domain.chat import Message, Role

CONVERSATION = (
    Message(Role.SYSTEM, "Be brief."),
    Message(Role.USER, "Hi"),
    Message(Role.ASSISTANT, "Hello!"),
    Message(Role.USER, "Capital of France?"),
)


def test_chatml() -> None:
    assert render_prompt("chatml", CONVERSATION) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n"
        "<|im_start|>user\nCapital of France?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_llama3_without_bos_because_tgi_adds_it() -> None:
    prompt = render_prompt("llama3", CONVERSATION)
    assert prompt == (
        "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nCapital of France?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert "<|begin_of_text|>" not in prompt


def test_mistral_folds_system_into_first_user_turn() -> None:
    assert render_prompt("mistral", CONVERSATION) == (
        "[INST] Be brief.\n\nHi [/INST]Hello!</s>[INST] Capital of France? [/INST]"
    )


def test_mistral_merges_consecutive_turns_to_keep_alternation() -> None:
    prompt = render_prompt("mistral", (Message(Role.USER, "a"), Message(Role.USER, "b"), Message(Role.ASSISTANT, " ")))
    assert prompt == "[INST] a\n\nb [/INST]"


def test_mistral_system_only_becomes_a_user_turn() -> None:
    assert render_prompt("mistral", (Message(Role.SYSTEM, "rules"),)) == "[INST] rules [/INST]"


def test_unknown_template_is_rejected() -> None:
    with pytest.raises(UnknownChatTemplateError):
        render_prompt("vicuna", CONVERSATION)
    assert set(TEMPLATES) == {"chatml", "llama3", "mistral"}
