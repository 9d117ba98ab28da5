"""Local Amazon Comprehend DetectPiiEntities and Bedrock Runtime ApplyGuardrail, for unchanged clients.

moto 5.2.5 answers DetectPiiEntities with one canned response whatever the text (offsets that do
not point into it) and does not implement ApplyGuardrail, so the pluggable guard detectors are
tested against this instead. Detection is deterministic and regex based: names after an honorific,
a self-introduction or a common first name; US-style street addresses; e-mail, phone, SSN, card
numbers and IPv4. It is a wire-protocol stand-in, not a model.

Routes:

* Comprehend (JSON 1.1): ``POST /`` with ``X-Amz-Target: Comprehend_20171127.DetectPiiEntities``.
  Errors: ``TextSizeLimitExceededException`` over 100 KB of UTF-8, ``UnsupportedLanguageException``
  for languages other than en/es, ``InvalidRequestException`` for a malformed body.
* Bedrock Runtime (rest-json): ``POST /guardrail/{id}/version/{v}/apply``. Each guardrail is an
  :class:`EmulatedGuardrail` (PII actions, denied topics, blocked words, prompt-attack filter);
  with ``guardrails=None`` every id gets the default one, otherwise unknown ids answer
  ``ResourceNotFoundException``.

The same guardrail logic serves Converse's ``guardrailConfig`` (`guard_converse_input`,
`guard_converse_output`, which the Bedrock Runtime emulator calls): one `apply_emulated_guardrail`.

Everything else goes to ``fallback`` when one is given, so this can wrap the Bedrock Runtime
emulator and share its port (``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``); point
``AWS_ENDPOINT_URL_COMPREHEND`` at the same URL. Faults and latency use the base emulator's admin
routes with the keys ``comprehend`` and ``guardrail:<id>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from llmops.local.emulators.base import EmulatorApp, json_response
from llmops.local.emulators.faults import FaultPlan, Outcome

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = [
    "ConverseGuardrail",
    "EmulatedGuardrail",
    "GuardrailServicesEmulator",
    "PiiMatch",
    "apply_emulated_guardrail",
    "detect_pii",
    "find_guardrail",
]

_COMPREHEND_TARGET: Final = "Comprehend_20171127."
_MAX_COMPREHEND_BYTES: Final = 100_000
_COMPREHEND_LANGUAGES: Final = frozenset({"en", "es"})

_FIRST_NAMES = (
    "James|John|Robert|Michael|William|David|Richard|Joseph|Thomas|Charles|Daniel|Matthew|"
    "Mary|Patricia|Jennifer|Linda|Elizabeth|Barbara|Susan|Jessica|Sarah|Karen|Emma|Olivia|"
    "Maria|Anna|Alice|Bob|Carlos|Sofia|Wei|Priya|Ahmed|Fatima|Jane|Peter|Paul|Laura"
)
_CAPITALIZED = r"[A-Z][a-z]+(?:[-'][A-Z][a-z]+)?"
_STREET_KIND = r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace)"

# (Comprehend type, score, pattern, capture group holding the entity). Earlier rules win overlaps.
_RULES: Final[tuple[tuple[str, float, re.Pattern[str], int], ...]] = (
    ("EMAIL", 0.99, re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), 0),
    ("SSN", 0.99, re.compile(r"\b\d{3}-\d{2}-\d{4}\b"), 0),
    ("CREDIT_DEBIT_NUMBER", 0.99, re.compile(r"\b(?:\d{4}[- ]?){3}\d{4}\b"), 0),
    ("PHONE", 0.98, re.compile(r"(?:\+1[ .-]?)?(?:\(\d{3}\)\s?|\b\d{3}[ .-])\d{3}[ .-]\d{4}\b"), 0),
    ("IP_ADDRESS", 0.97, re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b"), 0),
    (
        "ADDRESS",
        0.9,
        re.compile(
            rf"\b\d{{1,5}}\s+(?:{_CAPITALIZED}\s+){{1,3}}{_STREET_KIND}\b\.?"
            rf"(?:,\s*{_CAPITALIZED}(?:\s{_CAPITALIZED})?)?(?:,\s*[A-Z]{{2}}\s+\d{{5}})?"
        ),
        0,
    ),
    ("NAME", 0.95, re.compile(rf"\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?\s+({_CAPITALIZED}(?:\s+{_CAPITALIZED})?)"), 1),
    (
        "NAME",
        0.9,
        re.compile(rf"(?i:\bmy name is|\bi am|\bi'm|\bthis is|\bname:)\s+({_CAPITALIZED}(?:\s+{_CAPITALIZED}){{0,2}})"),
        1,
    ),
    ("NAME", 0.85, re.compile(rf"\b((?:{_FIRST_NAMES})(?:\s+{_CAPITALIZED})?)\b"), 1),
)

# Comprehend's names -> Bedrock guardrails' names for the same entity.
_BEDROCK_PII_NAMES: Final = {
    "NAME": "NAME",
    "ADDRESS": "ADDRESS",
    "EMAIL": "EMAIL",
    "PHONE": "PHONE",
    "SSN": "US_SOCIAL_SECURITY_NUMBER",
    "CREDIT_DEBIT_NUMBER": "CREDIT_DEBIT_CARD_NUMBER",
    "IP_ADDRESS": "IP_ADDRESS",
}
_PROMPT_ATTACK = re.compile(
    r"(?i)\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+)?(?:the\s+|your\s+)?(?:previous|prior|above|earlier)\s+"
    r"(?:instructions|rules|prompts?)\b|\bdeveloper mode\b|\bDAN\b|\bjailbreak"
)


@dataclass(frozen=True, slots=True)
class PiiMatch:
    type: str  # Comprehend's name
    start: int
    end: int
    score: float


def detect_pii(text: str) -> list[PiiMatch]:
    """Deterministic PII matches, non-overlapping (earlier rules, then earlier starts, win)."""
    taken: list[PiiMatch] = []
    for kind, score, pattern, group in _RULES:
        for match in pattern.finditer(text):
            start, end = match.span(group)
            if start < 0 or any(start < t.end and t.start < end for t in taken):
                continue
            taken.append(PiiMatch(kind, start, end, score))
    return sorted(taken, key=lambda m: (m.start, m.end))


@dataclass(frozen=True)
class EmulatedGuardrail:
    """What one emulated guardrail does. Actions use the CreateGuardrail spelling (BLOCK/ANONYMIZE)."""

    pii_entities: Mapping[str, str] = field(
        default_factory=lambda: {
            "NAME": "ANONYMIZE",
            "ADDRESS": "ANONYMIZE",
            "EMAIL": "ANONYMIZE",
            "PHONE": "ANONYMIZE",
            "US_SOCIAL_SECURITY_NUMBER": "BLOCK",
            "CREDIT_DEBIT_CARD_NUMBER": "BLOCK",
        }
    )
    denied_topics: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # topic -> trigger phrases
    blocked_words: tuple[str, ...] = ()
    prompt_attack_filter: bool = True  # applied to INPUT only, as Bedrock does
    blocked_message: str = "Sorry, the model cannot answer this question."
    versions: frozenset[str] | None = None  # the versions that exist (DRAFT, "1", ...); None: any


_PAST_TENSE = {"BLOCK": "BLOCKED", "ANONYMIZE": "ANONYMIZED", "NONE": "NONE"}


class _InvalidRequestError(Exception):
    pass


def _text_blocks(doc: Mapping[str, Any]) -> list[str]:
    content = doc.get("content")
    if not isinstance(content, list) or not content:
        raise _InvalidRequestError("content must be a non-empty list")
    texts: list[str] = []
    for block in content:
        text = block.get("text", {}).get("text") if isinstance(block, dict) else None
        if not isinstance(text, str):
            raise _InvalidRequestError("only text content blocks are supported")
        texts.append(text)
    return texts


def _occurrences(text: str, phrase: str) -> Iterable[re.Match[str]]:
    return re.finditer(rf"(?i)\b{re.escape(phrase)}\b", text)


def _assess(guardrail: EmulatedGuardrail, text: str, source: str) -> tuple[dict[str, Any], str, bool, bool]:
    """(assessment, anonymized text, any block, any intervention) for one text block."""
    assessment: dict[str, Any] = {}
    blocked = False
    pii_entries: list[dict[str, Any]] = []
    replacements: list[tuple[int, int, str]] = []
    for match in detect_pii(text):
        name = _BEDROCK_PII_NAMES.get(match.type)
        configured = guardrail.pii_entities.get(name or "")
        if name is None or configured is None:
            continue
        action = _PAST_TENSE.get(configured, "NONE")
        pii_entries.append({"match": text[match.start : match.end], "type": name, "action": action, "detected": True})
        blocked = blocked or action == "BLOCKED"
        if action == "ANONYMIZED":
            replacements.append((match.start, match.end, "{" + name + "}"))
    if pii_entries:
        assessment["sensitiveInformationPolicy"] = {"piiEntities": pii_entries}
    topics = [
        {"name": topic, "type": "DENY", "action": "BLOCKED", "detected": True}
        for topic, phrases in guardrail.denied_topics.items()
        if any(next(iter(_occurrences(text, p)), None) for p in phrases)
    ]
    if topics:
        assessment["topicPolicy"] = {"topics": topics}
        blocked = True
    words = [
        {"match": m.group(0), "action": "BLOCKED", "detected": True}
        for word in guardrail.blocked_words
        for m in _occurrences(text, word)
    ]
    if words:
        assessment["wordPolicy"] = {"customWords": words}
        blocked = True
    if guardrail.prompt_attack_filter and source == "INPUT" and _PROMPT_ATTACK.search(text):
        assessment["contentPolicy"] = {
            "filters": [
                {
                    "type": "PROMPT_ATTACK",
                    "confidence": "HIGH",
                    "filterStrength": "HIGH",
                    "action": "BLOCKED",
                    "detected": True,
                }
            ]
        }
        blocked = True
    anonymized = text
    for start, end, token in sorted(replacements, reverse=True):
        anonymized = anonymized[:start] + token + anonymized[end:]
    return assessment, anonymized, blocked, bool(assessment)


def find_guardrail(
    guardrails: Mapping[str, EmulatedGuardrail] | None, identifier: str, version: str
) -> EmulatedGuardrail | None:
    """The emulated guardrail an id or ARN (`...:guardrail/<id>`) and version name, if it exists;
    `guardrails` None: every id is the default guardrail."""
    if guardrails is None:
        return EmulatedGuardrail()
    guardrail = guardrails.get(identifier) or guardrails.get(identifier.rsplit("/", 1)[-1])
    if guardrail is None or (guardrail.versions is not None and version not in guardrail.versions):
        return None
    return guardrail


def apply_emulated_guardrail(guardrail: EmulatedGuardrail, texts: list[str], source: str) -> dict[str, Any]:
    """ApplyGuardrail's answer for `texts` (one text block each): one assessment and, when the
    guardrail intervened, one anonymized output per block, or the blocked message alone."""
    assessments: list[dict[str, Any]] = []
    outputs: list[dict[str, str]] = []
    blocked = intervened = False
    for text in texts:
        assessment, anonymized, text_blocked, text_intervened = _assess(guardrail, text, source)
        assessments.append(assessment)
        outputs.append({"text": anonymized})
        blocked, intervened = blocked or text_blocked, intervened or text_intervened
    if blocked:
        outputs = [{"text": guardrail.blocked_message}]
    characters = sum(len(t) for t in texts)
    units = max(1, -(-characters // 1000))  # one text unit per started 1000 characters
    return {
        "usage": {
            "topicPolicyUnits": units,
            "contentPolicyUnits": units,
            "wordPolicyUnits": units,
            "sensitiveInformationPolicyUnits": units,
            "sensitiveInformationPolicyFreeUnits": 0,
            "contextualGroundingPolicyUnits": 0,
        },
        "action": "GUARDRAIL_INTERVENED" if intervened else "NONE",
        "actionReason": "Guardrail blocked." if blocked else ("Guardrail masked." if intervened else ""),
        "outputs": outputs if intervened else [],
        "assessments": assessments,
        "guardrailCoverage": {"textCharacters": {"guarded": characters, "total": characters}},
    }


def _merged(assessments: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-block assessments as the one assessment a Converse trace gives per guardrail."""
    merged: dict[str, dict[str, list[Any]]] = {}
    for assessment in assessments:
        for policy, lists in assessment.items():
            for key, entries in lists.items():
                merged.setdefault(policy, {}).setdefault(key, []).extend(entries)
    return merged


def _blocked(response: Mapping[str, Any]) -> bool:
    """Whether any entry of the answer's assessments is BLOCKED (else it masked, or let through)."""
    return any(
        entry.get("action") == "BLOCKED"
        for assessment in response["assessments"]
        for lists in assessment.values()
        for entries in lists.values()
        for entry in entries
    )


def _converse_texts(messages: Iterable[Mapping[str, Any]]) -> list[str]:
    """What a Converse guardrail reads of the messages: their `guardContent` blocks if there are
    any, else every text block."""
    blocks = [b for m in messages for b in m.get("content") or () if isinstance(b, Mapping)]
    guarded = [str(b["guardContent"]["text"]["text"]) for b in blocks if "guardContent" in b]
    return guarded or [str(b["text"]) for b in blocks if "text" in b]


@dataclass
class ConverseGuardrail:
    """Converse's `guardrailConfig` applied as Bedrock applies it: the input first (a block stops
    the call: the answer is the blocked message and stopReason ``guardrail_intervened``; a mask is
    reported, not applied to what the emulated model reads), then the answer's text blocks (a block
    replaces them with the blocked message, a mask masks them; either is ``guardrail_intervened``).
    `trace` is Converse's ``trace.guardrail`` when the config asks for one (None otherwise)."""

    guardrail: EmulatedGuardrail
    identifier: str
    tracing: bool
    input_assessment: dict[str, Any] = field(default_factory=dict)
    output_assessments: list[dict[str, Any]] = field(default_factory=list)
    action_reason: str = ""

    @classmethod
    def of(
        cls, guardrails: Mapping[str, EmulatedGuardrail] | None, config: Mapping[str, Any] | None
    ) -> ConverseGuardrail | None:
        """None without a config; raises `LookupError` for a guardrail that is not emulated."""
        if config is None:
            return None
        identifier = str(config["guardrailIdentifier"])
        guardrail = find_guardrail(guardrails, identifier, str(config["guardrailVersion"]))
        if guardrail is None:
            raise LookupError(identifier)
        return cls(guardrail, identifier, config.get("trace") in ("enabled", "enabled_full"))

    def blocked_input(self, messages: Iterable[Mapping[str, Any]]) -> str | None:
        """The blocked message when the input is blocked, else None."""
        response = apply_emulated_guardrail(self.guardrail, _converse_texts(messages) or [""], "INPUT")
        self.input_assessment = _merged(response["assessments"])
        self.action_reason = str(response["actionReason"]) or self.action_reason
        return self.guardrail.blocked_message if _blocked(response) else None

    def guarded_output(self, content: tuple[Mapping[str, Any], ...]) -> tuple[Mapping[str, Any], ...] | None:
        """The answer's content as the guardrail lets it out, or None when it did not intervene."""
        texts = [str(b["text"]) for b in content if "text" in b]
        if not texts:
            return None
        response = apply_emulated_guardrail(self.guardrail, texts, "OUTPUT")
        self.output_assessments = [_merged(response["assessments"])]
        if response["action"] != "GUARDRAIL_INTERVENED":
            return None
        self.action_reason = str(response["actionReason"])
        if _blocked(response):
            return ({"text": self.guardrail.blocked_message},)
        masked = iter(str(o["text"]) for o in response["outputs"])
        return tuple({"text": next(masked)} if "text" in b else b for b in content)

    def trace(self) -> dict[str, Any] | None:
        if not self.tracing:
            return None
        key = self.identifier.rsplit("/", 1)[-1]
        doc: dict[str, Any] = {"inputAssessment": {key: self.input_assessment}}
        if self.output_assessments:
            doc["outputAssessments"] = {key: self.output_assessments}
        if self.action_reason:
            doc["actionReason"] = self.action_reason
        return {"guardrail": doc}


class GuardrailServicesEmulator(EmulatorApp):
    def __init__(
        self,
        *,
        guardrails: Mapping[str, EmulatedGuardrail] | None = None,
        fallback: WSGIApplication | None = None,
        faults: FaultPlan | None = None,
    ) -> None:
        super().__init__(faults=faults)
        self.guardrails = dict(guardrails) if guardrails is not None else None
        self.fallback = fallback
        self._routes = Map(
            [Rule("/guardrail/<path:guardrail_id>/version/<version>/apply", methods=["POST"], endpoint="apply")]
        )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self.fallback is not None and not self._is_ours(environ):
            return self.fallback(environ, start_response)
        return super().__call__(environ, start_response)

    def release_waiters(self) -> None:
        super().release_waiters()
        release = getattr(self.fallback, "release_waiters", None)
        if callable(release):
            release()

    @staticmethod
    def _is_ours(environ: WSGIEnvironment) -> bool:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        return target.startswith(_COMPREHEND_TARGET) or str(environ.get("PATH_INFO", "")).startswith("/guardrail/")

    def handle(self, request: Request) -> Response:
        target = request.headers.get("X-Amz-Target", "")
        if target.startswith(_COMPREHEND_TARGET):
            return self._comprehend(target[len(_COMPREHEND_TARGET) :], request)
        _, args = self._routes.bind_to_environ(request.environ).match()
        return self._apply_guardrail(str(args["guardrail_id"]), str(args["version"]), request)

    # -- Comprehend -------------------------------------------------------------------------------

    @staticmethod
    def _comprehend_error(status: int, code: str, message: str) -> Response:
        response = Response(
            json.dumps({"__type": f"com.amazonaws.comprehend#{code}", "Message": message}),
            status=status,
            mimetype="application/x-amz-json-1.1",
        )
        response.headers["x-amzn-RequestId"] = "emulated"
        return response

    def _comprehend(self, operation: str, request: Request) -> Response:
        if operation != "DetectPiiEntities":
            return self._comprehend_error(400, "UnknownOperationException", f"{operation} is not emulated")
        decision = self.apply_faults(["comprehend"])
        if decision.outcome is Outcome.THROTTLED:
            return self._comprehend_error(400, "TooManyRequestsException", "Rate exceeded")
        if decision.outcome is Outcome.ERROR:
            return self._comprehend_error(500, "InternalServerException", "Emulated internal error")
        try:
            doc = json.loads(request.get_data() or b"{}")
        except ValueError:
            return self._comprehend_error(400, "InvalidRequestException", "body is not JSON")
        text, language = doc.get("Text"), doc.get("LanguageCode")
        if not isinstance(text, str) or not text:
            return self._comprehend_error(400, "InvalidRequestException", "Text must be a non-empty string")
        if language not in _COMPREHEND_LANGUAGES:
            return self._comprehend_error(400, "UnsupportedLanguageException", f"{language} is not supported")
        if len(text.encode("utf-8", errors="surrogatepass")) > _MAX_COMPREHEND_BYTES:
            return self._comprehend_error(400, "TextSizeLimitExceededException", "Input text size exceeds limit")
        entities = [
            {"Score": m.score, "Type": m.type, "BeginOffset": m.start, "EndOffset": m.end} for m in detect_pii(text)
        ]
        response = Response(json.dumps({"Entities": entities}), mimetype="application/x-amz-json-1.1")
        response.headers["x-amzn-RequestId"] = "emulated"
        return response

    # -- Bedrock ApplyGuardrail ---------------------------------------------------------------------

    def _apply_guardrail(self, guardrail_id: str, version: str, request: Request) -> Response:
        guardrail = find_guardrail(self.guardrails, guardrail_id, version)
        if guardrail is None:
            return self.service_error(404, "ResourceNotFoundException", f"Guardrail {guardrail_id} was not found.")
        decision = self.apply_faults([f"guardrail:{guardrail_id}"])
        if decision.outcome is Outcome.THROTTLED:
            return self.service_error(429, "ThrottlingException", "Too many requests, please wait before trying again.")
        if decision.outcome is Outcome.ERROR:
            return self.service_error(500, "InternalServerException", "Emulated internal error")
        try:
            doc = json.loads(request.get_data() or b"{}")
            source = doc.get("source")
            if source not in {"INPUT", "OUTPUT"}:
                raise _InvalidRequestError("source must be INPUT or OUTPUT")
            texts = _text_blocks(doc)
        except (ValueError, _InvalidRequestError) as exc:
            return self.service_error(400, "ValidationException", str(exc))
        return json_response(apply_emulated_guardrail(guardrail, texts, source))
