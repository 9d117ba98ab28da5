"""The output guard over every part of an answer: its text, its reasoning and its tool calls' arguments.

All of them reach the caller, so each goes through the same engine and policy as the text, with the
request's pseudonyms restored after the checks (`GuardEngine.guard_output`):

- **Text**: grounding and relevance are judged on it (the `context` documents and the user's query).
- **Reasoning**: checked like text (PII, secrets, deny list, system-prompt leak), without grounding,
  which judges the answer, not the thinking on the way to it. A provider signs a reasoning block over
  its exact text, and the block must come back unchanged in a later turn (Claude with tools), so a
  block keeps its `signature` only if the guard left its text exactly as the model wrote it; one the
  guard changed (a redaction, a restored pseudonym) is returned without it, as a block that cannot be
  carried to another turn, rather than with a signature that no longer covers its text. An encrypted
  (`redacted`) block has no text to check and passes as the provider sent it.
- **Tool-call arguments**: checked like text, as one text (so the detectors see the keys around a
  value, "ssn": ...). Arguments are JSON the caller's code parses, and must stay JSON: a placeholder
  inside a JSON string keeps them valid as it is; one that replaced a JSON number (a phone number
  written as a number, `{"id": 4155550199}`) is quoted, with any digits of the number it left, so the
  value becomes the string "[PHONE_NUMBER_1]" (the type changes, the value is redacted as the policy
  says). If the arguments are still not valid JSON after that, the answer is blocked rather than
  returned broken. Arguments the model itself wrote as invalid JSON are returned as it wrote them,
  guarded. Tool names and call ids are identifiers the caller defined or the provider generated,
  and are returned as they are.

One combined `OutputVerdict` goes to the audit record and metrics: the worst action, every decision,
the redacted texts (the evidence the tenant's policy may keep), the first block.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

from llmops.application.guard_detectors import batched_service_calls
from llmops.domain.chat import Completion, Reasoning, ToolCall
from llmops.domain.guard import GuardEngine
from llmops.domain.guard.engine import OutputVerdict
from llmops.domain.guard.findings import Action, BlockedBy, Decision, Direction
from llmops.domain.guard.redaction import PLACEHOLDER, PseudonymVault

__all__ = [
    "GuardedAnswer",
    "combine_verdicts",
    "guard_answer",
    "guard_reasoning",
    "guard_tool_call",
    "quote_bare_placeholders",
    "signed_if_unchanged",
]

_JSON_DETECTOR = "tool_arguments.json"


@dataclass(frozen=True, slots=True)
class GuardedAnswer:
    """What the caller may see of a completion (every part guarded), and the verdict over all of it."""

    completion: Completion
    verdict: OutputVerdict


def guard_answer(
    engine: GuardEngine,
    completion: Completion,
    vault: PseudonymVault | None = None,
    system_prompt: str = "",
    context: Sequence[str] = (),
    *,
    query: str = "",
) -> GuardedAnswer:
    """Guards every part of `completion` (the module docstring says how); the arguments are `guard_output`'s.

    A service detector that takes several texts at once checks the parts together (`batched_service_calls`)."""
    checked = (b.text for b in completion.reasoning if b.redacted is None and b.text)  # as guard_reasoning
    parts = [completion.text, *checked, *(c.arguments for c in completion.tool_calls)]
    with batched_service_calls(parts, Direction.OUTPUT):
        text = engine.guard_output(completion.text, vault, system_prompt, context, query=query)
        verdicts = [text]
        reasoning: list[Reasoning] = []
        for block in completion.reasoning:
            guarded, verdict = guard_reasoning(engine, block, vault, system_prompt)
            reasoning.append(guarded)
            if verdict is not None:
                verdicts.append(verdict)
        calls: list[ToolCall] = []
        for call in completion.tool_calls:
            guarded_call, verdict = guard_tool_call(engine, call, vault, system_prompt)
            calls.append(guarded_call)
            verdicts.append(verdict)
    combined = combine_verdicts(verdicts) if len(verdicts) > 1 else text
    guarded_completion = replace(completion, text=text.text, reasoning=tuple(reasoning), tool_calls=tuple(calls))
    return GuardedAnswer(guarded_completion, combined)


def guard_reasoning(
    engine: GuardEngine, block: Reasoning, vault: PseudonymVault | None, system_prompt: str
) -> tuple[Reasoning, OutputVerdict | None]:
    """One reasoning block as the caller may see it, and its verdict (None: nothing to check)."""
    if block.redacted is not None or not block.text:
        return block, None
    verdict = engine.guard_output(block.text, vault, system_prompt)
    return signed_if_unchanged(block, verdict.text), verdict


def signed_if_unchanged(block: Reasoning, shown: str) -> Reasoning:
    """`block` with the text the caller sees; its signature only if that is the text the model signed."""
    return Reasoning(shown, block.signature if shown == block.text else None, block.redacted)


def guard_tool_call(
    engine: GuardEngine, call: ToolCall, vault: PseudonymVault | None, system_prompt: str
) -> tuple[ToolCall, OutputVerdict]:
    """One tool call with guarded arguments, and their verdict: a block if redaction broke their JSON."""
    verdict = engine.guard_output(call.arguments, vault, system_prompt)
    if not verdict.blocked and _is_json(call.arguments) and not _is_json(verdict.text):
        quoted = quote_bare_placeholders(verdict.text)
        verdict = replace(verdict, text=quoted) if _is_json(quoted) else _broken_json(verdict)
    return ToolCall(call.id, call.name, verdict.text), verdict


_NUMBER_CHARS = frozenset("0123456789+-.eE")


def quote_bare_placeholders(text: str) -> str:
    """`text` with every placeholder outside a JSON string (where a number was) made a JSON string,
    together with the number characters around it: `{"id": [PHONE_NUMBER_1]}` -> `{"id": "[PHONE_NUMBER_1]"}`."""
    out: list[str] = []
    index, in_string = 0, False
    while index < len(text):
        char = text[index]
        if in_string:
            out.append(text[index : index + 2] if char == "\\" else char)
            index += 2 if char == "\\" else 1
            in_string = char != '"'
            continue
        match = PLACEHOLDER.match(text, index) if char == "[" else None
        if match is None:
            out.append(char)
            in_string = char == '"'
            index += 1
            continue
        start, end = index, match.end()
        while out and out[-1] in _NUMBER_CHARS:  # digits the redaction left before the placeholder
            start -= 1
            out.pop()
        while end < len(text):  # and the digits (or further placeholders) after it
            if text[end] in _NUMBER_CHARS:
                end += 1
                continue
            more = PLACEHOLDER.match(text, end)
            if more is None:
                break
            end = more.end()
        out.append(json.dumps(text[start:end], ensure_ascii=False))
        index = end
    return "".join(out)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _broken_json(verdict: OutputVerdict) -> OutputVerdict:
    """The verdict made a block: named after the finding whose redaction broke the JSON (the first masked)."""
    masked = [d.finding for d in verdict.decisions if d.action in (Action.REDACT, Action.PSEUDONYMIZE)]
    first = masked[0] if masked else None
    # Without a masked finding it was a restored pseudonym that broke the JSON.
    blocked_by = BlockedBy(first.type if first else "PSEUDONYM", _JSON_DETECTOR, Direction.OUTPUT)
    decisions = tuple(Decision(d.finding, Action.BLOCK) if d.finding == first else d for d in verdict.decisions)
    return replace(verdict, action=Action.BLOCK, text="", decisions=decisions, blocked_by=blocked_by)


def combine_verdicts(verdicts: Sequence[OutputVerdict]) -> OutputVerdict:
    """One verdict over several parts: the worst action, all decisions and findings, the highest score
    per kind, the first part's block, and the redacted texts joined (non-empty ones, in part order)."""
    if not verdicts:
        raise ValueError("no verdicts to combine")
    first = verdicts[0]
    scores: dict[str, float] = {}
    for verdict in verdicts:
        for name, value in verdict.scores.items():
            scores[name] = max(value, scores.get(name, 0.0))
    actions = {v.action for v in verdicts}
    action = next((a for a in (Action.BLOCK, Action.REDACT) if a in actions), Action.ALLOW)
    return OutputVerdict(
        action=action,
        text=first.text,
        redacted_text="\n".join(v.redacted_text for v in verdicts if v.redacted_text),
        findings=tuple(f for v in verdicts for f in v.findings),
        decisions=tuple(d for v in verdicts for d in v.decisions),
        scores=scores,
        blocked_by=next((v.blocked_by for v in verdicts if v.blocked_by is not None), None),
    )
