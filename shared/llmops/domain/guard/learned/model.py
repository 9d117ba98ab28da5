"""The learned guard: one-vs-rest logistic regression per category plus the adversarial-suffix LM.

Weights ship as package data (``guard_model.bin``, written by ``llmops guard train``) and are never
downloaded at run time. The file is::

    MAGIC (13 bytes) | header length (4 bytes, big-endian) | header (JSON) | zlib(payload)

The payload lists the hash buckets with a non-zero weight in some category (uint32, little-endian),
then their weights (one signed byte per category, in `CATEGORIES` order, bucket by bucket), then
the suffix model's trigram table. The header names the categories, their biases and quantisation scales, the
suffix model's parameters, the payload's SHA-256 and how the model was trained (for the model
card). A missing, truncated or altered file raises `LearnedModelError` naming what is wrong.

Scoring is pure and deterministic: the same text gives the same scores in every process.
``logit_c = bias_c + scale_c * sum(weight_c[i] for i in features) / sqrt(max(len(features), 24))``. Each
bucket's weights are packed into one integer, a 24-bit lane per category holding ``weight + 128``,
so one ``sum`` over a text's buckets adds every category at once (no lane can carry: 255 times the
at most ~1,000 buckets of a window is far below 2**24). That is seven times fewer additions than a
vector per category, and it is what keeps the layer under its per-KB budget without numpy.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import sys
import zlib
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Final

from llmops.domain.guard.learned.features import DIM_BITS, hashed_features, norm, windows
from llmops.domain.guard.learned.suffix_lm import ALPHABET_SIZE, CharTrigramModel, tokens

__all__ = [
    "CATEGORIES",
    "HARM_CATEGORIES",
    "MAGIC",
    "LearnedAssessment",
    "LearnedGuard",
    "LearnedModelError",
    "decode_model",
    "encode_model",
]

MAGIC: Final = b"LLMOPS-GUARD\x01"
# 2: the suffix table holds log-likelihood ratios (soup over benign), not surprisals
FORMAT: Final = 2
# The order is part of the file format: the trainer writes the weights in this order.
CATEGORIES: Final = (
    "prompt_attack",
    "violence_weapons",
    "self_harm",
    "sexual",
    "sexual_minors",
    "hate_harassment",
    "criminal_instructions",
)
HARM_CATEGORIES: Final = CATEGORIES[1:]
SUFFIX_SCORE: Final = "adversarial_suffix"
# Token soup alone is weak evidence (a benign text can hold one odd stretch); soup on a request the
# content model finds harmful is the adversarial-suffix attack. prompt_attack therefore takes
# `min(1, 2 * suffix) * (SUFFIX_FLOOR + (1 - SUFFIX_FLOOR) * worst harm score)` when that is larger:
# soup alone reaches at most SUFFIX_FLOOR (under the default prompt_attack threshold, 0.9), soup
# (suffix >= 0.5) on a request with a harm score of 0.68 reaches 0.904, although 0.68 alone is under
# the violence threshold (0.69): a harmful ask plus soup is blocked. When the soup is found, the request
# before it is also scored on its own (soup dilutes a linear score).
SUFFIX_FLOOR: Final = 0.7


_LANE_BITS: Final = 24
_LANE_MASK: Final = (1 << _LANE_BITS) - 1
_OFFSET: Final = 128
_LANE_BYTES: Final = _LANE_BITS // 8
_UNSIGNED: Final = bytes((b + _OFFSET) & 0xFF for b in range(256))  # signed byte -> weight + 128


class LearnedModelError(RuntimeError):
    """The model file is missing, truncated, corrupt or of another format; the message says which."""


def _sigmoid(logit: float) -> float:
    if logit < -60:
        return 0.0
    return 1.0 / (1.0 + math.exp(-logit))


@dataclass(frozen=True, slots=True)
class LearnedAssessment:
    """Per-category scores in [0, 1] (`CATEGORIES`, plus `adversarial_suffix`)."""

    scores: dict[str, float]


@dataclass(frozen=True, slots=True)
class LearnedGuard:
    """Stateless after construction; safe to share across requests and threads."""

    categories: tuple[str, ...]
    biases: tuple[float, ...]
    scales: tuple[float, ...]
    rows: list[int]  # per hash bucket, its categories' weights packed in 24-bit lanes (see module doc)
    suffix: CharTrigramModel
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (len(self.biases) == len(self.scales) == len(self.categories)):
            raise LearnedModelError("categories, biases and scales differ in length")
        if len(self.rows) != 1 << DIM_BITS:
            raise LearnedModelError(f"the weight table must have {1 << DIM_BITS} rows")

    def logits(self, text: str) -> list[float]:
        """Per category, the worst (largest) logit over the text's windows."""
        worst = [-math.inf] * len(self.categories)
        for window in windows(text):
            features = hashed_features(window)
            if not features:
                continue
            picked = itemgetter(*features)(self.rows)
            total = picked if isinstance(picked, int) else sum(picked)
            offset = _OFFSET * len(features)
            scale = norm(len(features))
            for index in range(len(self.categories)):
                lane = ((total >> (_LANE_BITS * index)) & _LANE_MASK) - offset
                worst[index] = max(worst[index], self.biases[index] + self.scales[index] * lane * scale)
        return [b if math.isinf(w) else w for w, b in zip(worst, self.biases, strict=True)]

    def assess(self, text: str, *, suffix: bool = True) -> LearnedAssessment:
        """Scores for `text`; `suffix` False skips the suffix LM (output text is not a prompt)."""
        scores = {name: _sigmoid(logit) for name, logit in zip(self.categories, self.logits(text), strict=True)}
        if suffix:
            found = self.suffix.worst_window(text)
            soup = 0.0 if found is None else self.suffix.score_bits(found[0])
            scores[SUFFIX_SCORE] = soup
            if found is not None and soup >= 0.5 and found[1] > 0:
                # soup dilutes a linear score (it adds words); the request before it is scored alone
                request = b" ".join(tokens(text)[: found[1]]).decode("utf-8", "surrogatepass")
                for name, logit in zip(self.categories, self.logits(request), strict=True):
                    if name in HARM_CATEGORIES:
                        scores[name] = max(scores[name], _sigmoid(logit))
            harm = max((scores[c] for c in HARM_CATEGORIES if c in scores), default=0.0)
            weighed = min(1.0, 2.0 * soup) * (SUFFIX_FLOOR + (1.0 - SUFFIX_FLOOR) * harm)
            if "prompt_attack" in scores:
                scores["prompt_attack"] = max(scores["prompt_attack"], weighed)
        return LearnedAssessment(scores)


def encode_model(
    *,
    biases: list[float],
    scales: list[float],
    weights: list[bytes],
    suffix_table: bytes,
    suffix_window: int,
    suffix_center: float,
    suffix_width: float,
    metadata: Mapping[str, Any],
) -> bytes:
    """The model file for `decode_model` (used by the trainer; `weights` are dense signed bytes,
    one string of 2**DIM_BITS per category)."""
    dim = 1 << DIM_BITS
    if len(weights) != len(CATEGORIES) or any(len(w) != dim for w in weights):
        raise LearnedModelError(f"weights must be {len(CATEGORIES)} strings of {dim} signed bytes")
    used = [i for i in range(dim) if any(w[i] for w in weights)]
    index_bytes = array("I", used)
    if index_bytes.itemsize != 4:
        raise LearnedModelError("this platform has no 4-byte unsigned int array")
    if sys.byteorder != "little":
        index_bytes.byteswap()
    rows = bytes(w[i] for i in used for w in weights)
    payload = index_bytes.tobytes() + rows + suffix_table
    header = {
        "format": FORMAT,
        "dim_bits": DIM_BITS,
        "categories": list(CATEGORIES),
        "biases": biases,
        "scales": scales,
        "rows": len(used),
        "suffix": {
            "alphabet_size": ALPHABET_SIZE,
            "window": suffix_window,
            "center": suffix_center,
            "width": suffix_width,
        },
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "metadata": dict(metadata),
    }
    encoded = json.dumps(header, sort_keys=True).encode("utf-8")
    return MAGIC + struct.pack(">I", len(encoded)) + encoded + zlib.compress(payload, 9)


def decode_model(data: bytes, source: str = "guard model") -> LearnedGuard:
    """Parse and verify a model file; every failure is a `LearnedModelError` naming `source`."""
    if not data.startswith(MAGIC):
        raise LearnedModelError(f"{source}: not a guard model file (bad magic); retrain with `llmops guard train`")
    try:
        (length,) = struct.unpack(">I", data[len(MAGIC) : len(MAGIC) + 4])
        start = len(MAGIC) + 4
        header = json.loads(data[start : start + length].decode("utf-8"))
        payload = zlib.decompress(data[start + length :])
    except (struct.error, ValueError, zlib.error) as exc:
        raise LearnedModelError(f"{source}: truncated or corrupt ({type(exc).__name__}: {exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("dim_bits") != DIM_BITS:
        raise LearnedModelError(f"{source}: format or hashing differs from this code's (format {FORMAT})")
    if hashlib.sha256(payload).hexdigest() != header.get("payload_sha256"):
        raise LearnedModelError(f"{source}: payload checksum mismatch (corrupt file)")
    categories = tuple(header["categories"])
    if categories != CATEGORIES:
        raise LearnedModelError(f"{source}: categories {categories} differ from {CATEGORIES}")
    dim = 1 << DIM_BITS
    suffix = header["suffix"]
    count = int(header.get("rows", -1))
    table_size = int(suffix["alphabet_size"]) ** 3
    row_size = len(categories)
    if suffix["alphabet_size"] != ALPHABET_SIZE or count < 0 or len(payload) != count * (4 + row_size) + table_size:
        raise LearnedModelError(f"{source}: payload size {len(payload)} does not match the header")
    indexes = array("I")
    indexes.frombytes(payload[: 4 * count])
    if sys.byteorder != "little":
        indexes.byteswap()
    if any(i >= dim for i in indexes):
        raise LearnedModelError(f"{source}: a bucket index is out of range")
    rows = _pack_rows(indexes, payload[4 * count : count * (4 + row_size)], row_size, dim)
    try:
        lm = CharTrigramModel(
            payload[count * (4 + row_size) :], int(suffix["window"]), float(suffix["center"]), float(suffix["width"])
        )
    except ValueError as exc:
        raise LearnedModelError(f"{source}: {exc}") from exc
    return LearnedGuard(
        categories=categories,
        biases=tuple(float(b) for b in header["biases"]),
        scales=tuple(float(s) for s in header["scales"]),
        rows=rows,
        suffix=lm,
        metadata=header.get("metadata", {}),
    )


def _pack_rows(indexes: array[int], weights: bytes, row_size: int, dim: int) -> list[int]:
    """One packed integer per bucket; buckets without weights share the all-zero row's integer."""
    lanes = bytearray(len(indexes) * row_size * _LANE_BYTES)
    stride = row_size * _LANE_BYTES
    unsigned = weights.translate(_UNSIGNED)
    for category in range(row_size):
        # little-endian lanes: the low byte of lane c is byte c * _LANE_BYTES of the row
        lanes[category * _LANE_BYTES :: stride] = unsigned[category::row_size]
    zero = sum(_OFFSET << (_LANE_BITS * c) for c in range(row_size))
    rows = [zero] * dim
    from_bytes = int.from_bytes
    for position, bucket in enumerate(indexes):
        start = position * stride
        rows[bucket] = from_bytes(lanes[start : start + stride], "little")
    return rows
