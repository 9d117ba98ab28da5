"""The request every benchmark sends: the same 1 KB prompt, so the numbers compare like with like.

The prompt is ordinary business prose with one email address and one phone number in it, so the
guards do real work (two redactions) without blocking the request.
"""

from __future__ import annotations

import json
from typing import Any, Final

__all__ = [
    "INTENDED_429_FAILURE",
    "MIXED_TEXT_1KB",
    "MODEL_ALIAS",
    "PROMPT_1KB",
    "SYSTEM_PROMPT",
    "chat_request",
    "chat_request_body",
]

MODEL_ALIAS: Final = "chat-default"
# How the load test labels a 429 it provoked on purpose, to tell it apart from real errors.
INTENDED_429_FAILURE: Final = "intended 429"
SYSTEM_PROMPT: Final = "You are a concise assistant for the finance team. Answer in two sentences."

_PROSE = (
    "Please summarise the following notes for the quarterly review. Revenue in the northern region "
    "grew by eleven percent, driven mostly by renewals of the enterprise plan, while the southern "
    "region stayed flat after two large customers delayed their purchase decisions to next year. "
    "Support tickets fell by a fifth once the new onboarding guide shipped, and the median time to "
    "first response is now under two hours. Questions about the figures can go to Jane Doe at "
    "jane.doe@example.com or by phone on +1 415 555 0132 during business hours. The team would "
    "like to hire two more engineers for the data platform and one analyst for the pricing work; "
    "the budget request is attached to the planning document. Marketing plans a spring campaign "
    "focused on the mid-market segment, with webinars every other Thursday and a refreshed case "
    "study library. Risks include slower hiring, a pending vendor contract renewal and currency "
    "movements that could reduce reported growth by about one point. "
)


def _exactly(text: str, size: int) -> str:
    repeated = text * (size // len(text) + 1)
    return repeated[:size]


PROMPT_1KB: Final = _exactly(_PROSE, 1024)

# For the guard engine alone: more kinds of finding per KB than a typical prompt (email, phone,
# card number, IP address, an AWS-style key id), which is the harder case for its latency.
MIXED_TEXT_1KB: Final = _exactly(
    "Customer Maria Rossi (maria.rossi@example.org, +44 20 7946 0958) paid with card 4111 1111 1111 1111 "
    "from 203.0.113.42 yesterday. The deploy script still contains AKIAIOSFODNN7EXAMPLE, rotate it. "
    "Shipping was delayed by the storm, so the order will arrive on Monday; she asked for a discount "
    "on the next renewal and a call with her account manager about the new pricing tiers. ",
    1024,
)


def chat_request(model: str = MODEL_ALIAS, prompt: str = PROMPT_1KB) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}],
        "max_tokens": 64,
        # Not 0: deterministic requests may be answered from the gateway's response cache, and the
        # benchmarks measure the full path to the model.
        "temperature": 0.7,
    }


def chat_request_body(model: str = MODEL_ALIAS, prompt: str = PROMPT_1KB) -> bytes:
    return json.dumps(chat_request(model, prompt)).encode()
