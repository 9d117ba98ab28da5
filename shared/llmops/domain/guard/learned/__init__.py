"""The learned guard layer: content categories and prompt attacks scored by a small linear model.

Beside the heuristics (`llmops.domain.guard.injection`), which catch what their phrasings name, a
hashed n-gram logistic regression (one-vs-rest) gives each category its own score:

* ``prompt_attack``: jailbreaks, injections, instruction extraction;
* harmful content: ``violence_weapons``, ``self_harm``, ``sexual``, ``sexual_minors`` (always
  blocked, whatever the policy says), ``hate_harassment``, ``criminal_instructions``;
* ``adversarial_suffix``: a character-LM score for optimizer-made token soup, weighed with the
  harm scores into ``prompt_attack`` (see `model.SUFFIX_FLOOR`).

Where each part lives: `features` (the hashed features, shared with the trainer), `suffix_lm` (the
character trigram model), `model` (file format, loading, scoring). The weights are package data
(``guard_model.bin``, about 1 MB), trained offline by ``llmops guard train`` and described in
docs/guard-model-card.md. Pure Python: no numpy in the Lambda.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Final

from llmops.domain.guard.learned.model import (
    CATEGORIES,
    HARM_CATEGORIES,
    SUFFIX_SCORE,
    LearnedAssessment,
    LearnedGuard,
    LearnedModelError,
    decode_model,
    encode_model,
)

__all__ = [
    "CATEGORIES",
    "HARM_CATEGORIES",
    "MODEL_FILE",
    "SUFFIX_SCORE",
    "LearnedAssessment",
    "LearnedGuard",
    "LearnedModelError",
    "decode_model",
    "default_model",
    "encode_model",
    "load_model",
    "model_path",
]

MODEL_FILE: Final = "guard_model.bin"


def model_path() -> str:
    """Where the shipped weights live (inside the package, so the Lambda layer carries them)."""
    # os.path, as the injection signal table does: importlib.resources costs cold-start imports.
    return os.path.join(os.path.dirname(__file__), MODEL_FILE)


def load_model(path: str) -> LearnedGuard:
    """Read and verify a model file; a missing or corrupt one is a `LearnedModelError`."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise LearnedModelError(
            f"guard model {path!r} cannot be read ({exc.strerror}); it is package data written by `llmops guard train`"
        ) from exc
    return decode_model(data, source=path)


@cache
def default_model() -> LearnedGuard:
    """The shipped model, loaded once per process."""
    return load_model(model_path())
