"""Guardrails: PII, secrets, prompt injection, deny lists, system-prompt leaks and grounding.

Pure domain code (stdlib plus ``phonenumbers``), built to run on every request inside a Lambda.

Pipeline
========

``GuardEngine(policy)`` runs, for one text:

1. **Size limit** on the raw length (``max_input_chars`` / ``max_output_chars``): too large is an
   ``INPUT_TOO_LARGE`` (or, for a completion, ``OUTPUT_TOO_LARGE``) finding, blocked by default
   before any other work.
2. **Unicode folding for detection** (:mod:`.normalization`): NFKC, zero-width / bidi / tag
   characters (U+E0000-E007F) and combining marks dropped, accents stripped, Cyrillic and Greek
   look-alikes folded to Latin. Detectors see the folded text; every finding is mapped back to
   offsets in the caller's ORIGINAL text, and redaction edits the original.
3. **Secrets** (:mod:`.secret_detectors`): AWS access key ids and secret keys (by context), PEM
   private keys, JWTs, GitHub, Slack and vendor API keys, high-entropy values assigned to
   password/secret/token/key names, bearer tokens, passwords in URLs.
4. **PII** (:mod:`.pii_detectors`): EMAIL, PHONE_NUMBER (a shape pre-filter on digit clusters, then
   ``phonenumbers`` metadata: valid in the default region US; with a trunk "0", valid in one of a
   set of countries; with "+"/"00", valid or possible for its country code; otherwise only next to
   a phone word, such as "call", "mobile", "fax", "office"), CREDIT_CARD (Luhn + IIN ranges, or
   Luhn next to a card word), US_SSN (SSA validity rules), IBAN_CODE
   (country length + mod 97), IP_ADDRESS (v4/v6 via ``ipaddress``), MAC_ADDRESS, UK_NINO (prefix
   rules), UK_NHS (mod 11), and US_PASSPORT, US_DRIVER_LICENSE, DATE_OF_BIRTH only next to
   context words.
5. **Prompt injection** (input only, :mod:`.injection`): weighted signal families combined by a
   logistic function into ``scores["prompt_injection"]`` in [0, 1]; base64/hex/rot13/leetspeak
   payloads are decoded and rescored. Reported at ``injection_flag`` (log_only) and acted on with
   the policy action at ``injection_block``. The bias (-3.6) puts the default block threshold 0.8
   where no single weak or medium signal blocks and any two of weight >= 2.5 do; it was chosen on
   the dev half of the attack corpora (see docs/guardrails-eval.md), where the FPR is 0%.
6. **Deny list** (:mod:`.deny_list`): tenant words (``DENIED_WORD``) and topics (``DENIED_TOPIC``,
   detector ``deny_list:<topic>``).
7. Output only: **system-prompt leak** (:mod:`.leakage`: canary token, 5-gram overlap) and
   **grounding** when context is given (:mod:`.grounding`: ``GROUNDING`` / ``RELEVANCE`` scores).

Then overlapping value findings (PII, secrets, pluggable types) are resolved deterministically
(higher score, longer span, earlier start, type name), each finding gets its policy action, and
masked spans become placeholders ``[EMAIL_1]``, numbered per type in order of appearance, the same
value keeping the same placeholder within a request. ``block`` on a value also masks it, so a
blocked text's ``redacted_text`` never contains the value. ``pseudonymize`` additionally records
placeholder -> original in a :class:`PseudonymVault` that lives in the request's memory only; the
chat path restores it in the completion *after* the output checks.

Chat path::

    engine = GuardEngine(GuardPolicy.from_mapping(tenant_policy_json))
    verdict = engine.guard_input([m.content for m in messages])
    verdict.raise_if_blocked()                    # GuardrailBlockedError: 400 content_blocked
    canary = engine.system_prompt_canary()
    system = embed_canary(system_prompt, canary)  # send `system` to the model
    ... call the model with verdict.texts ...
    out = engine.guard_output(completion, verdict.vault, system_prompt=system,
                              context=context_docs, query=last_user_message)
    out.raise_if_blocked()                        # or finish_reason=content_filter
    return out.text                               # pseudonyms restored

Policy format (JSON, per tenant; every field optional and layered over ``GuardPolicy.default()``)::

    {
      "actions":        {"EMAIL": "pseudonymize"},          # both directions
      "input_actions":  {"GENERIC_SECRET": "block"},        # per-direction overrides
      "output_actions": {"GROUNDING": "block"},
      "default_action": "redact",                           # types no mapping names
      "thresholds": {"injection_block": 0.8, "injection_flag": 0.5,
                     "grounding": 0.6, "relevance": 0.5, "system_prompt_leak": 0.5},
      "denied_words":  ["project falcon"],
      "denied_topics": {"weapons": ["nerve agent", "bioweapon"]},
      "max_input_chars": 100000, "max_output_chars": 200000,
      "detectors": ["secrets", "pii", "injection", "deny_list", "grounding"],
      "system_prompt_leak_check": true,
      "embeddings_input_guard": "redact",                   # POST /v1/embeddings: redact | block | off
      "content": {"allow_images": true, "max_images": 20, "max_image_bytes": 3932160,
                  "allow_remote_image_urls": false, "remote_image_timeout_s": 5,
                  "allowed_passthrough_fields": [], "max_tools": 128}
    }

``content`` is not a guard but what a request may carry besides text (``ContentPolicy``): image
parts and their limits, remote image URLs (fetched by the gateway, public addresses only), Bedrock
pass-through fields (``guardrailConfig``, ``serviceTier``, ``performanceConfig``,
``additionalModelRequestFields``) and the number of tools; the API layer enforces it when it parses
a request (``application/openai_schema.py``).

Actions are ``allow`` (not reported), ``log_only`` (reported, text untouched), ``redact``,
``pseudonymize`` (input only; on output it acts as redact) and ``block``. Defaults: PII and secrets
redact in both directions; PROMPT_INJECTION, DENIED_WORD, DENIED_TOPIC, SYSTEM_PROMPT_LEAK,
INPUT_TOO_LARGE and OUTPUT_TOO_LARGE block; GROUNDING and RELEVANCE log_only (heuristic scores: opt in to blocking).
``bedrock_guardrail`` (Amazon Bedrock ApplyGuardrail) and ``comprehend`` (Amazon Comprehend
DetectPiiEntities) are service detectors, off by default: an object of that name in the policy
configures and enables one (its stages, ``timeout_s`` and ``fail_mode``; see
:mod:`.service_detectors`), and the gateway builds its adapter per policy
(``llmops.application.guard_detectors``). The guardrail's own verdict decides its findings (masked:
redact, blocked: block); Comprehend's take the policy's actions. A service that fails or times out
gives a ``DETECTOR_UNAVAILABLE`` finding: a block (503 ``guard_unavailable``) when the policy fails
closed, the default, or logged when it fails open. ``extra_detectors`` (the ``Detector`` protocol)
remain for pure detectors a caller hands the engine itself.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmops.domain.guard.engine import (
        GuardEngine,
        GuardrailBlockedError,
        InputVerdict,
        OutputVerdict,
        ScanResult,
    )
    from llmops.domain.guard.findings import (
        ENTITY_TYPES,
        PII_TYPES,
        SECRET_TYPES,
        Action,
        BlockedBy,
        Decision,
        Detector,
        Direction,
        Finding,
        FindingType,
    )
    from llmops.domain.guard.leakage import embed_canary, new_canary
    from llmops.domain.guard.policy import GuardPolicy, PolicyError
    from llmops.domain.guard.redaction import PseudonymVault

# The package's names, imported on first use (PEP 562): `from llmops.domain.guard import safe_regex`
# (a submodule most of the code base uses) then loads no detector, so a Lambda's cold init pays for
# the engine's modules only when it first guards a text.
_EXPORTED_FROM = {
    **dict.fromkeys(("GuardEngine", "GuardrailBlockedError", "InputVerdict", "OutputVerdict", "ScanResult"), "engine"),
    **dict.fromkeys(
        (
            "ENTITY_TYPES",
            "PII_TYPES",
            "SECRET_TYPES",
            "Action",
            "BlockedBy",
            "Decision",
            "Detector",
            "Direction",
            "Finding",
            "FindingType",
        ),
        "findings",
    ),
    **dict.fromkeys(("embed_canary", "new_canary"), "leakage"),
    **dict.fromkeys(("GuardPolicy", "PolicyError"), "policy"),
    "PseudonymVault": "redaction",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTED_FROM.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


__all__ = [
    "ENTITY_TYPES",
    "PII_TYPES",
    "SECRET_TYPES",
    "Action",
    "BlockedBy",
    "Decision",
    "Detector",
    "Direction",
    "Finding",
    "FindingType",
    "GuardEngine",
    "GuardPolicy",
    "GuardrailBlockedError",
    "InputVerdict",
    "OutputVerdict",
    "PolicyError",
    "PseudonymVault",
    "ScanResult",
    "embed_canary",
    "new_canary",
]
