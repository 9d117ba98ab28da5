"""Prompt-injection and jailbreak scoring: weighted signals combined by a logistic function.

Each signal is a family of phrasings (instruction override, system-prompt extraction, DAN-style
personas, fake chat-template role tags, delimiter tricks...) with a weight in logit units. The
score is ``sigmoid(BIAS + sum(weights of the distinct signals that fired))``: no signal gives
~0.02, one weak signal stays below the flag threshold (0.5), one strong signal crosses the block
threshold (0.8), and several medium ones together cross it too. Text hidden in base64, hex, rot13
or leetspeak is decoded and scored with the same signals; hiding itself adds weight.

Signals run on a lower-cased copy of the (already Unicode-folded) text and each has cheap substring
pre-checks, so benign text pays for a few ``in`` tests and a handful of regex scans.

Where each part lives:

* `signal_table`: the signals themselves, as data (``signals.json``), checked and loaded at import;
* `decoding`: finding and undoing base64, hex, rot13 and leetspeak;
* `scorer`: `InjectionScorer`, which runs the signals and combines their weights.
"""

from __future__ import annotations

from llmops.domain.guard.injection.scorer import InjectionAssessment, InjectionScorer
from llmops.domain.guard.injection.signal_table import BIAS, SIGNALS, Signal
from llmops.domain.guard.safe_regex import LazyPattern

__all__ = ["BIAS", "SIGNALS", "InjectionAssessment", "InjectionScorer", "LazyPattern", "Signal"]
