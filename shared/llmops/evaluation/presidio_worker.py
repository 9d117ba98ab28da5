"""Runs INSIDE the evaluation's cache virtualenv (presidio-evaluator and presidio-analyzer installed).

It is executed as a script (``<cache>/venv/bin/python presidio_worker.py ...``) and must therefore
import nothing from ``llmops`` and nothing outside the standard library at module level: the
project's own environment has no Presidio, and Presidio's environment has no ``llmops``.

Two sub-commands, JSON in and out:

* ``generate --samples N --seed S --out FILE``: PII-bearing sentences from presidio-evaluator's
  ``PresidioSentenceFaker`` (its templates and fake-person records), with the gold spans.
* ``analyze --texts FILE --repeat R --out FILE``: Microsoft Presidio's *pattern* recognizers
  (no NLP engine, no spaCy model: context enhancement is therefore off) on every text, with the
  per-text wall time of one full pass over all recognizers.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

__all__ = ["PRESIDIO_RECOGNIZERS", "main"]

# Presidio recognizer class -> the entities it reports; all are regex/checksum based.
PRESIDIO_RECOGNIZERS: dict[str, tuple[str, ...]] = {
    "EmailRecognizer": ("EMAIL_ADDRESS",),
    "PhoneRecognizer": ("PHONE_NUMBER",),
    "CreditCardRecognizer": ("CREDIT_CARD",),
    "UsSsnRecognizer": ("US_SSN",),
    "IbanRecognizer": ("IBAN_CODE",),
    "IpRecognizer": ("IP_ADDRESS",),
    "MacAddressRecognizer": ("MAC_ADDRESS",),
    "UsPassportRecognizer": ("US_PASSPORT",),
    "UsLicenseRecognizer": ("US_DRIVER_LICENSE",),
    "UkNinoRecognizer": ("UK_NINO",),
    "NhsRecognizer": ("UK_NHS",),
}


def _generate(samples: int, seed: int, out: Path) -> None:
    random.seed(seed)
    data_generator = importlib.import_module("presidio_evaluator.data_generator")
    faker = data_generator.PresidioSentenceFaker("en_US", lower_case_ratio=0.0, random_seed=seed)
    generated = faker.generate_new_fake_sentences(num_samples=samples)
    docs = [
        {
            "text": sample.full_text,
            "template_id": getattr(sample, "template_id", None),
            "spans": [
                {"type": span.entity_type, "start": span.start_position, "end": span.end_position}
                for span in sample.spans
            ],
        }
        for sample in generated
    ]
    out.write_text(json.dumps({"seed": seed, "samples": docs}), encoding="utf-8")


def _offline_tldextract() -> None:
    # EmailRecognizer validates the domain with tldextract, whose default extractor downloads the
    # public suffix list; the snapshot bundled in the wheel is enough and keeps the run offline.
    tldextract = importlib.import_module("tldextract")
    offline = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    setattr(tldextract, "extract", offline)  # noqa: B010 - a module attribute, typed as ModuleType


def _recognizers() -> list[tuple[Any, tuple[str, ...]]]:
    _offline_tldextract()
    predefined = importlib.import_module("presidio_analyzer.predefined_recognizers")
    return [(getattr(predefined, name)(), entities) for name, entities in PRESIDIO_RECOGNIZERS.items()]


def _scan(recognizers: list[tuple[Any, tuple[str, ...]]], remove_duplicates: Any, text: str) -> list[Any]:
    results: list[Any] = []
    for recognizer, entities in recognizers:
        results.extend(recognizer.analyze(text, list(entities), None) or [])
    # What AnalyzerEngine does after the recognizers (score_threshold 0 is its default).
    return list(remove_duplicates(results))


def _analyze(texts_file: Path, repeat: int, out: Path) -> None:
    texts: list[str] = json.loads(texts_file.read_text(encoding="utf-8"))["texts"]
    recognizers = _recognizers()
    remove_duplicates = importlib.import_module("presidio_analyzer").EntityRecognizer.remove_duplicates
    for text in texts[:20]:  # warm-up: compiled regexes, phonenumbers metadata
        _scan(recognizers, remove_duplicates, text)
    predictions: list[list[dict[str, Any]]] = []
    timings: list[list[int]] = []
    for text in texts:
        runs: list[int] = []
        found: list[Any] = []
        for _ in range(max(1, repeat)):
            started = time.perf_counter_ns()
            found = _scan(recognizers, remove_duplicates, text)
            runs.append(time.perf_counter_ns() - started)
        timings.append(runs)
        predictions.append(
            [{"type": r.entity_type, "start": r.start, "end": r.end, "score": float(r.score)} for r in found]
        )
    out.write_text(
        json.dumps(
            {"presidio_version": version("presidio-analyzer"), "predictions": predictions, "timings_ns": timings}
        ),
        encoding="utf-8",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate")
    generate.add_argument("--samples", type=int, required=True)
    generate.add_argument("--seed", type=int, required=True)
    generate.add_argument("--out", type=Path, required=True)
    analyze = commands.add_parser("analyze")
    analyze.add_argument("--texts", type=Path, required=True)
    analyze.add_argument("--repeat", type=int, default=1)
    analyze.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "generate":
        _generate(args.samples, args.seed, args.out)
    else:
        _analyze(args.texts, args.repeat, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
