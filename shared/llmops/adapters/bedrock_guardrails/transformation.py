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

A request's texts go to ApplyGuardrail together, one text block each (`plan_calls`,
`to_apply_guardrail_batch`), and `detections_from_batch` maps the answer back to each text:

* The API sets no bound on `content` or on a block's text (botocore's service model has none); what
  bounds one call is the account's ApplyGuardrail text-unit quotas (a text unit is up to 1000
  characters of a block, billed per started unit), so a call carries at most `MAX_UNITS_PER_CALL`
  units and the texts are packed into as few calls as that allows (first fit, largest first; a text
  larger than the bound goes alone, since cutting it would cut the values in it).
* When the answer has one assessment per block (as the emulator gives), each assessment is that
  text's; otherwise each assessment speaks for every text of the call: its matches are looked for
  in each, and its whole-text verdicts (topics, content filters) apply to each.
* When the answer has one output per block and a block's output is the text as sent, the guardrail
  masked nothing there, so a masked value is not redacted in that text.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, Literal

from llmops.domain.guard import Action, Finding, FindingType, safe_regex
from llmops.domain.guard.service_detectors import Detection

__all__ = [
    "BEDROCK_PII_TO_FINDING_TYPE",
    "CONFIDENCE_SCORES",
    "DETECTOR_NAME",
    "GUARDRAIL_ACTIONS",
    "MAX_UNITS_PER_CALL",
    "TEXT_UNIT_CHARS",
    "GuardrailSource",
    "detection_from_response",
    "detections_from_batch",
    "findings_from_response",
    "locate",
    "plan_calls",
    "text_units",
    "to_apply_guardrail_batch",
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
TEXT_UNIT_CHARS: Final = 1000
# The lowest default of the per-second ApplyGuardrail text-unit quotas: a call larger than a quota
# allows in a second would only be throttled, and the detector makes one attempt.
MAX_UNITS_PER_CALL: Final = 25


def text_units(text: str) -> int:
    """ApplyGuardrail text units of one block: one per started 1000 characters."""
    return max(1, -(-len(text) // TEXT_UNIT_CHARS))


def plan_calls(texts: Sequence[str], max_units: int = MAX_UNITS_PER_CALL) -> list[list[int]]:
    """Indices of `texts` grouped into as few ApplyGuardrail calls as `max_units` allows, each group
    in text order: first fit over the texts largest first (ties in text order), so the plan is the
    same for the same texts. A text over the bound is a call of its own."""
    order = sorted(range(len(texts)), key=lambda i: (-text_units(texts[i]), i))
    calls: list[list[int]] = []
    room: list[int] = []
    for index in order:
        units = text_units(texts[index])
        slot = next((c for c, left in enumerate(room) if units <= left), None)
        if slot is None:
            calls.append([index])
            room.append(max_units - units)
        else:
            calls[slot].append(index)
            room[slot] -= units
    return sorted((sorted(call) for call in calls), key=lambda call: call[0])


def to_apply_guardrail_batch(
    texts: Sequence[str], *, guardrail_id: str, version: str, source: GuardrailSource
) -> dict[str, Any]:
    """One ApplyGuardrail request for `texts`, one text block each, in order."""
    return {
        "guardrailIdentifier": guardrail_id,
        "guardrailVersion": version,
        "source": source,
        "content": [{"text": {"text": text}} for text in texts],
        # Only what intervened; the outputs serve only to tell which texts were masked.
        "outputScope": "INTERVENTIONS",
    }


def to_apply_guardrail_request(
    text: str, *, guardrail_id: str, version: str, source: GuardrailSource
) -> dict[str, Any]:
    return to_apply_guardrail_batch([text], guardrail_id=guardrail_id, version=version, source=source)


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


def _spans(text: str, entries: Iterable[Mapping[str, Any]], kind_of: Any, others: Sequence[str] = ()) -> Iterator[_Hit]:
    """`others`: the call's other texts the entry may be about (it is unlocated only if in none)."""
    for entry in entries:
        match = entry.get("match")
        if not _reported(entry) or not isinstance(match, str):
            continue
        kind, detector = kind_of(entry)
        action = _entry_action(entry)
        spans = locate(text, match)
        if (
            not spans
            and GUARDRAIL_ACTIONS.get(action, Action.BLOCK) is not Action.LOG_ONLY
            and not any(locate(other, match) for other in others)
        ):
            # Acted on but not found in what we sent: fail safe, the whole text is refused.
            yield Finding(kind, 0, len(text), 1.0, detector), "BLOCKED"
        for start, end in spans:
            yield Finding(kind, start, end, 1.0, detector), action


def _assessment_hits(text: str, assessment: Mapping[str, Any], others: Sequence[str] = ()) -> Iterator[_Hit]:
    sensitive = assessment.get("sensitiveInformationPolicy") or {}
    yield from _spans(
        text,
        sensitive.get("piiEntities") or (),
        lambda e: (BEDROCK_PII_TO_FINDING_TYPE.get(str(e.get("type")), str(e.get("type"))), DETECTOR_NAME),
        others,
    )
    yield from _spans(
        text, sensitive.get("regexes") or (), lambda e: (_regex_type(str(e.get("name", ""))), DETECTOR_NAME), others
    )
    words = assessment.get("wordPolicy") or {}
    yield from _spans(
        text, words.get("customWords") or (), lambda e: (FindingType.DENIED_WORD, f"{DETECTOR_NAME}:word"), others
    )
    yield from _spans(
        text,
        words.get("managedWordLists") or (),
        lambda e: (FindingType.DENIED_WORD, f"{DETECTOR_NAME}:{str(e.get('type', 'managed')).lower()}"),
        others,
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


def _detection(
    text: str, assessments: Iterable[Mapping[str, Any]], *, others: Sequence[str] = (), masked: bool = True
) -> Detection:
    """`others`: the call's other texts the assessments also speak for; `masked`: False when the
    guardrail's output shows it masked nothing in `text`."""
    actions: dict[Finding, Action] = {}
    for assessment in assessments:
        for finding, reported in _assessment_hits(text, assessment, others):
            action = GUARDRAIL_ACTIONS.get(reported, Action.BLOCK)  # an action we do not know: fail safe
            if action is Action.REDACT and not masked:
                continue
            if finding not in actions or action.severity > actions[finding].severity:
                actions[finding] = action
    findings = tuple(sorted(actions, key=lambda f: (f.start, f.end, f.type, f.detector)))
    return Detection(findings, actions)


def detection_from_response(text: str, response: Mapping[str, Any]) -> Detection:
    """The findings of `findings_from_response` with the guardrail's verdict on each (see the module
    docstring); where one span was reported twice, the stricter action wins."""
    return _detection(text, response.get("assessments") or ())


def _output_texts(response: Mapping[str, Any]) -> list[str | None]:
    return [o.get("text") if isinstance(o, Mapping) else None for o in response.get("outputs") or ()]


def detections_from_batch(texts: Sequence[str], response: Mapping[str, Any]) -> list[Detection]:
    """One `Detection` per text of a `to_apply_guardrail_batch` call, in order (module docstring:
    which assessment speaks for which text, and what the outputs tell)."""
    assessments = [a for a in response.get("assessments") or () if isinstance(a, Mapping)]
    outputs = _output_texts(response)
    per_block = len(assessments) == len(texts)
    detections: list[Detection] = []
    for index, text in enumerate(texts):
        mine = [assessments[index]] if per_block else assessments
        others = () if per_block else [t for i, t in enumerate(texts) if i != index]
        # An output per block equal to the text: nothing masked there (a blocked call has one output).
        masked = len(outputs) != len(texts) or outputs[index] != text
        detections.append(_detection(text, mine, others=others, masked=masked))
    return detections
