"""Obfuscated PII for the evaluation: generated rewrites of the generator's values, and near misses.

Two generated sets, both seeded and built here (nothing is copied from a corpus):

* :func:`obfuscate_samples` rewrites every card number, SSN, e-mail address and IBAN of a
  presidio-evaluator sentence the way people hide them when they type ("4111.1111.1111.1111",
  "536/22/1234", "john.doe [at] example [dot] com", "gb82-west-..."). Gold spans follow the rewrite,
  and each rewritten span remembers its obfuscation family so recall is reported per family.
* :func:`near_miss_sentences` builds sentences full of numbers that look like those values and are
  not: dates, version strings, IPs, decimals, paths, phone numbers, card- and SSN-shaped numbers
  that fail their checksum or validity rules, and English that says "at" and "dot". Any card, SSN,
  e-mail or IBAN found there is a false positive.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from llmops.domain.guard.checksums import iban_valid
from llmops.evaluation.pii_data import PiiSample, Span

__all__ = [
    "OBFUSCATED_ENTITIES",
    "ObfuscatedSample",
    "near_miss_sentences",
    "obfuscate_samples",
    "obfuscate_value",
]

# The entities whose written forms are rewritten; the others keep their plain form.
OBFUSCATED_ENTITIES: tuple[str, ...] = ("CREDIT_CARD", "US_SSN", "EMAIL", "IBAN_CODE")

_CARD_SEPARATORS: dict[str, str] = {
    "dots": ".",
    "slashes": "/",
    "underscores": "_",
    "newlines": "\n",
    "tabs": "\t",
    "spaced dashes": " - ",
}
_SSN_SEPARATORS: dict[str, tuple[str, str]] = {
    "dots": (".", "."),
    "slashes": ("/", "/"),
    "dash then space": ("-", " "),
    "space then dash": (" ", "-"),
}
# (at, dot) spellings; "words" is plain English "at" / "dot", which the guard only accepts when
# the local part could not be an English word (see README, Guardrails).
_EMAIL_SPELLINGS: dict[str, tuple[str, str]] = {
    "[at] [dot]": (" [at] ", " [dot] "),
    "(at) (dot)": (" (at) ", " (dot) "),
    "{at} {dot}": ("{at}", "{dot}"),
    "[AT] [DOT]": (" [AT] ", " [DOT] "),
    "spaced @ and .": (" @ ", " . "),
    "@ and [.]": ("@", "[.]"),
    "words at dot": (" at ", " dot "),
}
_IBAN_FORMS: tuple[str, ...] = ("lower case", "dashes", "lower case, dashes")


@dataclass(frozen=True, slots=True)
class ObfuscatedSample:
    """A sentence whose PII values were rewritten; `families` maps each rewritten gold span to its family."""

    sample: PiiSample
    families: tuple[tuple[Span, str], ...]


def _card_groups(digits: str) -> list[str]:
    if len(digits) == 15:
        return [digits[:4], digits[4:10], digits[10:]]  # Amex: 4-6-5
    return [digits[i : i + 4] for i in range(0, len(digits), 4)]


def _card(value: str, rng: random.Random) -> tuple[str, str] | None:
    digits = "".join(c for c in value if c.isdigit())
    if not 12 <= len(digits) <= 19:
        return None
    family = rng.choice(list(_CARD_SEPARATORS))
    return _CARD_SEPARATORS[family].join(_card_groups(digits)), family


def _ssn(value: str, rng: random.Random) -> tuple[str, str] | None:
    digits = "".join(c for c in value if c.isdigit())
    if len(digits) != 9:
        return None
    family = rng.choice(list(_SSN_SEPARATORS))
    first, second = _SSN_SEPARATORS[family]
    return f"{digits[:3]}{first}{digits[3:5]}{second}{digits[5:]}", family


def _email(value: str, rng: random.Random) -> tuple[str, str] | None:
    local, at, domain = value.partition("@")
    if not at or "." not in domain:
        return None
    family = rng.choice(list(_EMAIL_SPELLINGS))
    at_spelling, dot_spelling = _EMAIL_SPELLINGS[family]
    if family == "spaced @ and .":
        local = local.replace(".", " . ")
    return local + at_spelling + domain.replace(".", dot_spelling), family


def _iban(value: str, rng: random.Random) -> tuple[str, str] | None:
    compact = "".join(c for c in value if c.isalnum())
    if len(compact) < 15:
        return None
    family = rng.choice(_IBAN_FORMS)
    groups = [compact[i : i + 4] for i in range(0, len(compact), 4)]
    text = ("-" if "dashes" in family else " ").join(groups)
    return (text.lower() if "lower" in family else text), family


_REWRITERS: dict[str, Callable[[str, random.Random], tuple[str, str] | None]] = {
    "CREDIT_CARD": _card,
    "US_SSN": _ssn,
    "EMAIL": _email,
    "IBAN_CODE": _iban,
}


def obfuscate_value(entity: str, value: str, rng: random.Random) -> tuple[str, str] | None:
    """(rewritten value, family) for one gold value, or None if the value has no usable shape."""
    rewrite = _REWRITERS.get(entity)
    return None if rewrite is None else rewrite(value, rng)


def obfuscate_samples(samples: Sequence[PiiSample], seed: int) -> list[ObfuscatedSample]:
    """Every sample with a value of `OBFUSCATED_ENTITIES`, each such value rewritten (spans shifted)."""
    rng = random.Random(seed)
    rewritten: list[ObfuscatedSample] = []
    for sample in samples:
        if not any(s.type in OBFUSCATED_ENTITIES for s in sample.spans):
            continue
        pieces: list[str] = []
        spans: list[Span] = []
        families: list[tuple[Span, str]] = []
        position = 0
        shift = 0
        for span in sorted(sample.spans):
            if span.start < position:  # overlapping gold spans: keep the text as it is
                spans.append(Span(span.start + shift, span.end + shift, span.type))
                continue
            value = sample.text[span.start : span.end]
            result = obfuscate_value(span.type, value, rng)
            pieces.append(sample.text[position : span.start])
            new_start = span.start + shift
            if result is None:
                pieces.append(value)
                spans.append(Span(new_start, new_start + len(value), span.type))
            else:
                new_value, family = result
                pieces.append(new_value)
                new_span = Span(new_start, new_start + len(new_value), span.type)
                spans.append(new_span)
                families.append((new_span, family))
                shift += len(new_value) - len(value)
            position = span.end
        pieces.append(sample.text[position:])
        if families:
            text = "".join(pieces)
            rewritten.append(ObfuscatedSample(PiiSample(text, tuple(spans), sample.template_id), tuple(families)))
    return rewritten


# -- near misses ---------------------------------------------------------------------------------


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(count))


def _luhn_check_digit(body: str) -> str:
    total = 0
    for index, char in enumerate(reversed(body)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def _card_failing_luhn(rng: random.Random) -> str:
    body = "4" + _digits(rng, 14)
    wrong = (int(_luhn_check_digit(body)) + rng.randint(1, 9)) % 10
    return body + str(wrong)


def _invalid_ssn(rng: random.Random) -> str:
    kind = rng.randrange(4)
    area = rng.choice(["000", "666", "9" + _digits(rng, 2)]) if kind == 0 else str(rng.randint(100, 665))
    group = "00" if kind == 1 else f"{rng.randint(1, 99):02d}"
    serial = "0000" if kind == 2 else f"{rng.randint(1, 9999):04d}"
    if kind == 3:
        area = rng.choice(["000", "666"])
    return area + group + serial


def _failing_iban_check(bban: str, rng: random.Random) -> str:
    """Check digits that make "GB<check><bban>" fail mod-97: a random pair passes one time in 97."""
    while True:
        check = f"{rng.randint(2, 98):02d}"
        if not iban_valid(f"GB{check}{bban.upper()}"):
            return check


def _dotted(rng: random.Random, *ranges: tuple[int, int]) -> str:
    return ".".join(str(rng.randint(low, high)) for low, high in ranges)


def _near_miss(rng: random.Random) -> str:
    kind = rng.randrange(16)
    year, month, day = rng.randint(1990, 2030), rng.randint(1, 12), rng.randint(1, 28)
    if kind == 0:
        return f"The release went out on {year}.{month:02d}.{day:02d} after review."
    if kind == 1:
        return f"Upgrade to version {_dotted(rng, (1, 9), (0, 20), (0, 9), (0, 99))}."
    if kind == 2:
        return f"The host at {_dotted(rng, (1, 254), (0, 255), (0, 255), (1, 254))} is up."
    if kind == 3:
        return f"The ratio came to {rng.randint(0, 9999)}.{_digits(rng, rng.randint(2, 8))} on average."
    if kind == 4:
        return f"Logs are under /var/{_digits(rng, 4)}/{_digits(rng, 4)}/{_digits(rng, 4)}/{_digits(rng, 4)}/app.log"
    if kind == 5:
        area, exchange, line = rng.randint(201, 989), rng.randint(200, 999), _digits(rng, 4)
        return f"Call the office on {area}.{exchange}.{line} or {area}/{exchange}/{line}."
    if kind == 6:
        card = _card_failing_luhn(rng)
        separator = rng.choice([".", "/", "_", "\n", "\t"])
        return f"Reference {separator.join(card[i : i + 4] for i in range(0, 16, 4))} is not a card."
    if kind == 7:
        ssn = _invalid_ssn(rng)
        separator = rng.choice([".", "/"])
        return f"Ticket {ssn[:3]}{separator}{ssn[3:5]}{separator}{ssn[5:]} was closed."
    if kind == 8:
        return f"Dated {day:02d}/{month:02d}/{year} and {month:02d}.{day:02d}.{year % 100:02d}."
    if kind == 9:
        return rng.choice(
            [
                "Look at example dot com for the details.",
                "We met at noon. Dot the i's and cross the t's.",
                "Compute the dot product at each step, then look at the norm.",
                "I'm at home dot then out at work.",
                "Send it to the team at the office, dot point three.",
            ]
        )
    if kind == 10:
        rows = [str(rng.randint(1000, 9999)) for _ in range(rng.choice([3, 5]))]
        return "Totals:\n" + "\n".join(rows)
    if kind == 11:
        return f"Order {_digits(rng, 4)}/{_digits(rng, 2)}/{_digits(rng, 4)} shipped {year}/{month:02d}/{day:02d}."
    if kind == 12:
        bban = "".join(rng.choice(string.ascii_lowercase) for _ in range(4)) + _digits(rng, 14)
        check = _failing_iban_check(bban, rng)
        return f"Wire ref gb{check} {bban[:4]} {bban[4:8]} {bban[8:12]} {bban[12:16]} {bban[16:]} (not an IBAN)."
    if kind == 13:
        return f"Build {rng.randint(1, 9)}.{_digits(rng, 3)}.{_digits(rng, 2)}.{_digits(rng, 4)} passed in {year}."
    if kind == 14:
        job = f"{_digits(rng, 2)}_{_digits(rng, 3)}_{_digits(rng, 4)}"
        return f"At {rng.randint(1, 12)}.{rng.randint(10, 59)} pm job {job} ran."
    return f"Coordinates {rng.randint(0, 89)}.{_digits(rng, 6)}, {rng.randint(0, 179)}.{_digits(rng, 6)} at sea level."


def near_miss_sentences(count: int, seed: int) -> list[str]:
    """`count` sentences with card-, SSN-, e-mail- and IBAN-like text that is none of them."""
    rng = random.Random(seed * 7919 + 1)
    return [_near_miss(rng) for _ in range(count)]
