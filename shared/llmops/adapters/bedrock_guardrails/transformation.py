"""Amazon Bedrock ApplyGuardrail: request building and assessment -> findings, with no network.

ApplyGuardrail reports *what* matched, not where: sensitive-information and word matches carry the
matched string, which we locate in the text we sent (every occurrence: the same value elsewhere in
the text is the same PII). Policy-level verdicts become findings about the whole text:

* ``sensitiveInformationPolicy.piiEntities`` -> our PII types (NAME -> PERSON, ADDRESS -> ADDRESS, ...)
* ``sensitiveInformationPolicy.regexes``     -> the regex's name, upper-cased (``employee id`` -> ``EMPLOYEE_ID``)
* ``wordPolicy`` custom words / managed lists -> ``DENIED_WORD`` at each occurrence
* ``topicPolicy`` denied topics               -> ``DENIED_TOPIC`` (detector ``bedrock_guardrail:topic:<name>``)
* ``contentPolicy`` PROMPT_ATTACK            -> ``PROMPT_INJECTION`` (score from the confidence)
* ``contentPolicy`` other filters            -> ``DENIED_TOPIC`` (detector ``bedrock_guardrail:content:<type>``)

`detection_from_response` also carries the guardrail's own verdict on each finding, which the
engine honours over the tenant's actions: an entry the guardrail masked (``ANONYMIZED``) is
redacted, one it blocked (``BLOCKED``) blocks, one it only detected (``NONE``) is logged. A masked
or blocked match that cannot be found in the text (the guardrail normalized it) blocks the whole
text rather than let it through unmasked. Contextual grounding is not mapped: the detector sends no
grounding source.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final, Literal

from llmops.domain.guard import Action, Finding, FindingType, safe_regex
from llmops.domain.guard.service_detectors import Detection

__all__ = [
    "BEDROCK_PII_TO_FINDING_TYPE",
    "CONFIDENCE_SCORES",
    "DETECTOR_NAME",
    "GUARDRAIL_ACTIONS",
    "GuardrailSource",
    "detection_from_response",
    "findings_from_response",
    "locate",
    "to_apply_guardrail_request",
]

DETECTOR_NAME: Final = "bedrock_guardrail"
GuardrailSource = Literal["INPUT", "OUTPUT"]

BEDROCK_PII_TO_FINDING_TYPE: Mapping[str, str] = {
    "NAME": "PERSON",
    "ADDRESS": "ADDRESS",
    "EMAIL": "EMAIL",
    "PHONE": "PHONE_NUMBER",
    "US_SOCIAL_SECURITY_NUMBER": "US_SSN",
    "CREDIT_DEBIT_CARD_NUMBER": "CREDIT_CARD",
    "CREDIT_DEBIT_CARD_CVV": "CREDIT_CARD_CVV",
    "CREDIT_DEBIT_CARD_EXPIRY": "CREDIT_CARD_EXPIRY",
    "INTERNATIONAL_BANK_ACCOUNT_NUMBER": "IBAN_CODE",
    "IP_ADDRESS": "IP_ADDRESS",
    "MAC_ADDRESS": "MAC_ADDRESS",
    "US_PASSPORT_NUMBER": "US_PASSPORT",
    "DRIVER_ID": "US_DRIVER_LICENSE",
    "UK_NATIONAL_INSURANCE_NUMBER": "UK_NINO",
    "UK_NATIONAL_HEALTH_SERVICE_NUMBER": "UK_NHS",
    "AWS_ACCESS_KEY": "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY": "AWS_SECRET_KEY",
    "PASSWORD": "GENERIC_SECRET",
    "US_BANK_ACCOUNT_NUMBER": "US_BANK_NUMBER",
    "US_BANK_ROUTING_NUMBER": "ABA_ROUTING_NUMBER",
    "US_INDIVIDUAL_TAX_IDENTIFICATION_NUMBER": "US_ITIN",
}

# An assessment entry's `action` -> what the gateway does with its finding.
GUARDRAIL_ACTIONS: Mapping[str, Action] = {
    "ANONYMIZED": Action.REDACT,
    "BLOCKED": Action.BLOCK,
    "NONE": Action.LOG_ONLY,
}
# Content filters report a confidence bucket, not a number.
CONFIDENCE_SCORES: Mapping[str, float] = {"NONE": 0.0, "LOW": 0.4, "MEDIUM": 0.7, "HIGH": 0.95}
_NOT_A_NAME = safe_regex.compile(r"[^A-Za-z0-9]+")


def to_apply_guardrail_request(
    text: str, *, guardrail_id: str, version: str, source: GuardrailSource
) -> dict[str, Any]:
    return {
        "guardrailIdentifier": guardrail_id,
        "guardrailVersion": version,
        "source": source,
        "content": [{"text": {"text": text}}],
        # Only what intervened; we never use the guardrail's rewritten output.
        "outputScope": "INTERVENTIONS",
    }


def locate(text: str, match: str) -> list[tuple[int, int]]:
    """Every non-overlapping occurrence of `match` in `text`, case-sensitive first, then ignoring case."""
    if not match:
        return []
    for haystack, needle in ((text, match), (text.casefold(), match.casefold())):
        if len(haystack) != len(text):
            continue  # casefold changed lengths (e.g. 'ß'): its offsets would not be ours
        spans: list[tuple[int, int]] = []
        start = haystack.find(needle)
        while start >= 0:
            spans.append((start, start + len(needle)))
            start = haystack.find(needle, start + len(needle))
        if spans:
            return spans
    return []


def _reported(entry: Mapping[str, Any]) -> bool:
    """An assessment entry counts when the guardrail acted on it or (detect mode) says it detected it."""
    detected = entry.get("detected")
    if detected is not None:
        return bool(detected)
    return bool(entry.get("action", "NONE") != "NONE")


def _regex_type(name: str) -> str:
    return _NOT_A_NAME.sub("_", name).strip("_").upper() or "CUSTOM_REGEX"


_Hit = tuple[Finding, str]  # a finding and the action the guardrail reported for it


def _entry_action(entry: Mapping[str, Any]) -> str:
    return str(entry.get("action") or "NONE")


def _spans(text: str, entries: Iterable[Mapping[str, Any]], kind_of: Any) -> Iterator[_Hit]:
    for entry in entries:
        match = entry.get("match")
        if not _reported(entry) or not isinstance(match, str):
            continue
        kind, detector = kind_of(entry)
        action = _entry_action(entry)
        spans = locate(text, match)
        if not spans and GUARDRAIL_ACTIONS.get(action, Action.BLOCK) is not Action.LOG_ONLY:
            # Acted on but not found in what we sent: fail safe, the whole text is refused.
            yield Finding(kind, 0, len(text), 1.0, detector), "BLOCKED"
        for start, end in spans:
            yield Finding(kind, start, end, 1.0, detector), action


def _assessment_hits(text: str, assessment: Mapping[str, Any]) -> Iterator[_Hit]:
    sensitive = assessment.get("sensitiveInformationPolicy") or {}
    yield from _spans(
        text,
        sensitive.get("piiEntities") or (),
        lambda e: (BEDROCK_PII_TO_FINDING_TYPE.get(str(e.get("type")), str(e.get("type"))), DETECTOR_NAME),
    )
    yield from _spans(
        text, sensitive.get("regexes") or (), lambda e: (_regex_type(str(e.get("name", ""))), DETECTOR_NAME)
    )
    words = assessment.get("wordPolicy") or {}
    yield from _spans(
        text, words.get("customWords") or (), lambda e: (FindingType.DENIED_WORD, f"{DETECTOR_NAME}:word")
    )
    yield from _spans(
        text,
        words.get("managedWordLists") or (),
        lambda e: (FindingType.DENIED_WORD, f"{DETECTOR_NAME}:{str(e.get('type', 'managed')).lower()}"),
    )
    whole = (0, len(text))
    for topic in (assessment.get("topicPolicy") or {}).get("topics") or ():
        if _reported(topic):
            finding = Finding(FindingType.DENIED_TOPIC, *whole, 1.0, f"{DETECTOR_NAME}:topic:{topic.get('name', '')}")
            yield finding, _entry_action(topic)
    for content in (assessment.get("contentPolicy") or {}).get("filters") or ():
        score = CONFIDENCE_SCORES.get(str(content.get("confidence", "NONE")), 0.0)
        if not _reported(content) or score == 0.0:
            continue
        kind = str(content.get("type", ""))
        if kind == "PROMPT_ATTACK":
            finding = Finding(FindingType.PROMPT_INJECTION, *whole, score, DETECTOR_NAME)
        else:
            finding = Finding(FindingType.DENIED_TOPIC, *whole, score, f"{DETECTOR_NAME}:content:{kind.lower()}")
        yield finding, _entry_action(content)


def _assessment_findings(text: str, assessment: Mapping[str, Any]) -> Iterator[Finding]:
    for finding, _ in _assessment_hits(text, assessment):
        yield finding


def findings_from_response(text: str, response: Mapping[str, Any]) -> list[Finding]:
    """Findings for `text` (what was sent) from an ApplyGuardrail response, deduplicated and sorted."""
    found: set[Finding] = set()
    for assessment in response.get("assessments") or ():
        found.update(_assessment_findings(text, assessment))
    return sorted(found, key=lambda f: (f.start, f.end, f.type, f.detector))


def detection_from_response(text: str, response: Mapping[str, Any]) -> Detection:
    """The findings of `findings_from_response` with the guardrail's verdict on each (see the module
    docstring); where one span was reported twice, the stricter action wins."""
    actions: dict[Finding, Action] = {}
    for assessment in response.get("assessments") or ():
        for finding, reported in _assessment_hits(text, assessment):
            action = GUARDRAIL_ACTIONS.get(reported, Action.BLOCK)  # an action we do not know: fail safe
            if finding not in actions or action.severity > actions[finding].severity:
                actions[finding] = action
    findings = tuple(sorted(actions, key=lambda f: (f.start, f.end, f.type, f.detector)))
    return Detection(findings, actions)
